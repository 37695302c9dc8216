"""Signing in to JupyterHub through Keycloak's forms, and using the hub and a bubble as a person would.

:class:`HubBrowser` follows the hub's own login: ``/hub/oauth_login`` redirects to Keycloak (with
the hub's state and PKCE), the browser fills in the password and the one-time code, and Keycloak
redirects back to the hub's callback, which sets the hub's session cookie. Redirects are followed
by hand so that each stop (a Keycloak form, the hub's error page) can be inspected. It reuses the
Keycloak page parsing of :mod:`tests.support.oidc_browser`.

:func:`run_code` executes Python in a bubble's kernel through the Jupyter server's REST and
WebSocket APIs (behind the hub's proxy), as a notebook would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.oidc_browser import KeycloakPage

_TIMEOUT = 30.0


@dataclass
class HubPage:
    """Where a login stopped: a Keycloak form, or a page of the hub (status, URL, text)."""

    url: str
    status: int
    text: str
    keycloak: KeycloakPage | None = None


class HubBrowser:
    """One person's browser (one cookie jar) on the hub."""

    def __init__(self, hub_url: str, keycloak_url: str) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.keycloak_url = keycloak_url.rstrip("/")
        self.session = requests.Session()

    def _follow(self, response: requests.Response) -> HubPage:
        for _ in range(20):
            for cookie in self.session.cookies:  # Keycloak marks its cookies Secure even over http
                cookie.secure = False
            if not response.is_redirect:
                keycloak = KeycloakPage.parse(response) if response.url.startswith(self.keycloak_url) else None
                return HubPage(response.url, response.status_code, response.text, keycloak)
            location = urljoin(response.url, response.headers["Location"])
            response = self.session.get(location, allow_redirects=False, timeout=_TIMEOUT)
        raise AssertionError(f"too many redirects, last at {response.url}")

    def start(self) -> HubPage:
        """Open the hub's login: the Keycloak login form, normally."""
        return self._follow(
            self.session.get(f"{self.hub_url}/hub/oauth_login", allow_redirects=False, timeout=_TIMEOUT)
        )

    def submit(self, page: HubPage, form_id: str, fields: dict[str, str]) -> HubPage:
        """Post a Keycloak form of ``page`` and follow where it leads (the hub, after the last one)."""
        assert page.keycloak is not None, f"not a Keycloak page: {page.url} {page.status}"
        form = page.keycloak.form(form_id)
        action = urljoin(page.url, form.action)
        posted = self.session.post(action, data={**form.inputs, **fields}, allow_redirects=False, timeout=_TIMEOUT)
        return self._follow(posted)

    def login(self, username: str, password: str, otp: str | None) -> HubPage:
        """Password, then the one-time code when asked; returns the page the flow ended on."""
        page = self.submit(self.start(), "kc-form-login", {"username": username, "password": password})
        if otp is not None and page.keycloak is not None and page.keycloak.kind == "otp":
            page = self.submit(page, "kc-otp-login-form", {"otp": otp})
        return page

    def signed_in(self) -> bool:
        """Whether the hub knows this browser as a user now."""
        answer = self.session.get(f"{self.hub_url}/hub/api/user", timeout=_TIMEOUT, headers=self._xsrf())
        return answer.status_code == 200

    def _xsrf(self) -> dict[str, str]:
        token = self.session.cookies.get("_xsrf")
        return {"X-XSRFToken": token} if token else {}

    def api_token(self, username: str) -> str:
        """A hub API token of the signed-in user, made with the session cookie (as the token page does)."""
        self.session.get(f"{self.hub_url}/hub/token", timeout=_TIMEOUT)  # sets the _xsrf cookie
        answer = self.session.post(
            f"{self.hub_url}/hub/api/users/{username}/tokens",
            json={"note": "test", "expires_in": 3600},
            headers=self._xsrf(),
            timeout=_TIMEOUT,
        )
        assert answer.status_code in (200, 201), (answer.status_code, answer.text)
        return str(answer.json()["token"])


class HubApi:
    """The hub's REST API with a user's token."""

    def __init__(self, hub_url: str, token: str) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}
        self.token = token

    def start(self, username: str, server: str) -> requests.Response:
        """Ask for the named server (the bubble of project ``server``)."""
        return requests.post(
            f"{self.hub_url}/hub/api/users/{username}/servers/{server}", headers=self.headers, timeout=_TIMEOUT
        )

    def stop(self, username: str, server: str) -> requests.Response:
        """Stop the named server."""
        return requests.delete(
            f"{self.hub_url}/hub/api/users/{username}/servers/{server}", headers=self.headers, timeout=_TIMEOUT
        )

    def wait_ready(self, username: str, server: str, timeout: float = 120.0) -> dict[str, Any]:
        """The server's model once ready.

        Raises:
            AssertionError: not ready in time, or it stopped.
        """
        deadline = time.monotonic() + timeout
        seen = False
        while time.monotonic() < deadline:
            model = requests.get(f"{self.hub_url}/hub/api/users/{username}", headers=self.headers, timeout=_TIMEOUT)
            state = model.json().get("servers", {}).get(server)
            if state and state.get("ready"):
                return dict(state)
            if state is None and seen:
                raise AssertionError(f"server {server} stopped while starting: {model.json()}")
            seen = seen or state is not None
            time.sleep(0.5)
        raise AssertionError(f"server {server} not ready within {timeout} s")

    def wait_stopped(self, username: str, server: str, timeout: float = 60.0) -> None:
        """Return once the named server is gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = requests.get(f"{self.hub_url}/hub/api/users/{username}", headers=self.headers, timeout=_TIMEOUT)
            if server not in model.json().get("servers", {}):
                return
            time.sleep(0.5)
        raise AssertionError(f"server {server} did not stop within {timeout} s")


def run_code(server_url: str, token: str, code: str, timeout: float = 60.0) -> str:
    """Run ``code`` in a new kernel of the Jupyter server at ``server_url``; return its stdout.

    Raises:
        AssertionError: the code raised, or no reply came in time.
    """
    base = server_url.rstrip("/")
    headers = {"Authorization": f"token {token}"}
    kernel = requests.post(f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=_TIMEOUT)
    assert kernel.status_code == 201, (kernel.status_code, kernel.text)
    kernel_id = kernel.json()["id"]
    try:
        return asyncio.run(_execute(base, kernel_id, token, code, timeout))
    finally:
        requests.delete(f"{base}/api/kernels/{kernel_id}", headers=headers, timeout=_TIMEOUT)


async def _execute(base: str, kernel_id: str, token: str, code: str, timeout: float) -> str:
    url = base.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    message_id = uuid.uuid4().hex
    connection.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": message_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
                "channel": "shell",
            }
        )
    )
    output: list[str] = []
    errors: list[str] = []
    replied = False
    idle = False
    deadline = time.monotonic() + timeout
    try:
        while not (replied and idle):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no reply within {timeout} s; output so far: {''.join(output)}"
            raw = await asyncio.wait_for(connection.read_message(), remaining)
            assert raw is not None, "the kernel's channel closed"
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != message_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                errors.append("\n".join(message["content"]["traceback"]))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
    finally:
        connection.close()
    assert not errors, errors
    return "".join(output)

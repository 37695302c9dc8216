"""The hub's side of a bubble's life: registering it with the service, its environment, revoking it.

The hub calls the service with its own credential: an access token of the ``jupyterhub`` client's
service account (client credentials), fetched from Keycloak and reused until shortly before it
expires. The service answers with the bubble's id and token (given once), and opens the bubble's
session; stopping the bubble revokes the token and closes the session.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from infracalc.errors import InfracalcError


class ServiceRefused(InfracalcError):
    """The service refused or could not be reached; ``status`` is its HTTP status (503 when unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class BubbleRegistration:
    """A bubble the service registered: its id, its project and user, and its token (never logged)."""

    bubble_id: str
    project: str
    username: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProjectChoice:
    """A project the user may start a bubble for, as the spawn page shows it."""

    id: str
    title: str
    governance: str
    role: str


def bubble_environment(
    bubble: BubbleRegistration, *, api_url: str, proxy_url: str, no_proxy: Sequence[str]
) -> dict[str, str]:
    """The variables a bubble gets: its API, its token, its project, and the proxy with its credentials.

    Args:
        bubble: The registration.
        api_url: The service's ``/api/v1`` as the bubble reaches it.
        proxy_url: The egress proxy as the bubble reaches it (``http://host:port``, no credentials).
        no_proxy: Hosts the bubble reaches directly (the hub and the service).
    """
    parts = urlsplit(proxy_url)
    credentials = f"{quote(bubble.bubble_id, safe='')}:{quote(bubble.token, safe='')}"
    with_credentials = urlunsplit((parts.scheme, f"{credentials}@{parts.netloc}", "", "", ""))
    excluded = ",".join(dict.fromkeys([*no_proxy, "localhost", "127.0.0.1"]))
    return {
        "INFRACALC_API_URL": api_url,
        "INFRACALC_BUBBLE_TOKEN": bubble.token,
        "INFRACALC_BUBBLE_ID": bubble.bubble_id,
        "INFRACALC_PROJECT": bubble.project,
        # Both spellings: some clients read only one of them.
        "HTTP_PROXY": with_credentials,
        "HTTPS_PROXY": with_credentials,
        "http_proxy": with_credentials,
        "https_proxy": with_credentials,
        "NO_PROXY": excluded,
        "no_proxy": excluded,
    }


class ServiceClient:
    """The service's API as the hub uses it."""

    def __init__(self, service_url: str, token_url: str, client_id: str, client_secret: str) -> None:
        self.api = f"{service_url.rstrip('/')}/api/v1"
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._token: tuple[str, float] | None = None

    async def _access_token(self, http: aiohttp.ClientSession) -> str:
        if self._token is not None and self._token[1] - time.time() > 30:  # noqa: PLR2004 - seconds of margin
            return self._token[0]
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._client_secret}
        try:
            async with http.post(self.token_url, data=form) as answer:
                document = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ServiceRefused(503, f"Keycloak cannot be reached for the hub's token: {error}") from None
        if status != 200 or not isinstance(document, dict) or "access_token" not in document:  # noqa: PLR2004
            raise ServiceRefused(503, f"Keycloak refused the hub's credentials ({status})")
        self._token = (str(document["access_token"]), time.time() + float(document.get("expires_in", 60)))
        return self._token[0]

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            token = await self._access_token(http)
            try:
                async with http.request(
                    method, f"{self.api}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
                ) as answer:
                    status = answer.status
                    document = await answer.json(content_type=None) if answer.content_length != 0 else None
            except (aiohttp.ClientError, TimeoutError) as error:
                raise ServiceRefused(503, f"the INFRACALC service cannot be reached: {error}") from None
        if status >= 300:  # noqa: PLR2004
            message = document.get("message") if isinstance(document, dict) else None
            raise ServiceRefused(status, str(message or f"the service answered {status}"))
        return document

    async def register_bubble(self, username: str, project: str, address: str | None = None) -> BubbleRegistration:
        """Register a bubble of ``username`` for ``project`` (the service opens its session).

        ``address``: where the bubble will run, as the egress proxy sees its connections; ``None`` until
        the spawner knows it (:meth:`bind_address` then): the proxy refuses the bubble meanwhile.

        Raises:
            ServiceRefused: 403 when the user is not a member, 404 for an unknown project, 503 when unreachable.
        """
        answer = await self._call("POST", "/bubbles", {"username": username, "project": project, "address": address})
        return BubbleRegistration(answer["id"], answer["project"], answer["username"], answer["token"])

    async def bind_address(self, bubble_id: str, address: str) -> None:
        """Bind the bubble's credentials to the address it runs at (once; the same one again is harmless).

        Raises:
            ServiceRefused: 409 when the bubble is revoked or bound elsewhere, 503 when unreachable.
        """
        await self._call("PUT", f"/bubbles/{quote(bubble_id, safe='')}/address", {"address": address})

    async def revoke_bubble(self, bubble_id: str) -> None:
        """Revoke the bubble's token and close its session (revoking twice is harmless)."""
        await self._call("DELETE", f"/bubbles/{quote(bubble_id, safe='')}")

    async def user_projects(self, username: str) -> list[ProjectChoice]:
        """The projects ``username`` is a member of, with their governance and the user's role."""
        answer = await self._call("GET", f"/users/{quote(username, safe='')}/projects")
        return [ProjectChoice(item["id"], item["title"], item["governance"], item["role"]) for item in answer]

    async def session_event(self, bubble_id: str, kind: str, summary: str, details: dict[str, Any]) -> None:
        """Add a hub event (spawn, stop, login) to the bubble's session."""
        await self._call(
            "POST",
            f"/sessions/{quote(bubble_id, safe='')}/events",
            {"kind": kind, "summary": summary, "details": details},
        )

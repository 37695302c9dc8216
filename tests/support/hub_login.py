"""Drive the hub's authenticator the way JupyterHub's OAuth callback does, without running a hub.

- :func:`callback_server` serves ``/hub/oauth_callback`` from a real tornado ``HTTPServer`` started
  like JupyterHub's own (``xheaders=True``), on a free loopback port. Its handler,
  :class:`CallbackHandler`, stands in for oauthenticator's ``OAuthCallbackHandler``: the request
  is a real tornado request (real socket peer, real headers), and the handler offers the two
  helpers the authenticator calls on it (``get_argument("code")``, from tornado, and
  ``get_state_cookie``, which reads the PKCE verifier from the state cookie; the hub signs that
  cookie, here it is plain). It then calls ``authenticator.get_authenticated_user(handler, None)``,
  JupyterHub's entry point, so the allow settings (``allow_all``, ``allowed_users``) apply exactly
  as in the hub. Nothing of Keycloak or OPA is faked.
- :func:`authorization_code` runs the browser side against the real Keycloak (password, then TOTP)
  with the parameters the authenticator would send (scopes, ``acr_values``, PKCE S256), and stops
  at the redirect to the hub with its authorization code.
- :class:`ReplayingAuthenticator` answers the code exchange with a token response Keycloak gave
  earlier (or one built from real tokens, for refusals a live exchange cannot produce); everything
  after the exchange (userinfo, verification, OPA) is the real thing.
- :class:`StoredUser` stands in for JupyterHub's ``User`` in ``refresh_user``, which reads only its
  ``name`` and ``get_auth_state()``.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from oauthenticator.oauth2 import STATE_COOKIE_NAME, _serialize_state
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from traitlets import Dict

from infracalc.hub.authenticator import InfracalcAuthenticator
from infracalc.identity.realm import DemoAccount
from tests.fixtures.keycloak import KeycloakServer
from tests.support.oidc_browser import ClientRedirect, KeycloakPage


@dataclass
class Outcome:
    """What ``get_authenticated_user`` did for one callback: the auth model, or the exception it raised."""

    model: dict[str, Any] | None
    error: BaseException | None


class CallbackHandler(RequestHandler):
    """oauthenticator's callback handler, minus the hub: a real tornado request handed to the authenticator."""

    def initialize(self, authenticator: InfracalcAuthenticator, outcomes: list[Outcome]) -> None:
        self.authenticator = authenticator
        self.outcomes = outcomes

    def get_state_cookie(self) -> str:
        return self.get_cookie(STATE_COOKIE_NAME) or ""

    async def get(self) -> None:
        try:
            model = await self.authenticator.get_authenticated_user(self, None)
        except Exception as error:
            self.outcomes.append(Outcome(None, error))
            raise  # tornado logs it as the hub would, and answers with its status
        self.outcomes.append(Outcome(model, None))
        self.set_status(200 if model else 403)


@dataclass
class CallbackServer:
    """A running callback server; :meth:`callback` makes one request and returns its :class:`Outcome`."""

    url: str
    outcomes: list[Outcome] = field(default_factory=list)

    async def callback(
        self,
        *,
        code: str = "replayed",
        code_verifier: str = "replayed",
        forwarded_for: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        """GET the callback with ``code`` and a state cookie holding ``code_verifier``, as a browser would.

        ``forwarded_for`` is the ``X-Forwarded-For`` the hub's proxy (the loopback peer) would add.
        """
        state = _serialize_state({"state_id": "test", "code_verifier": code_verifier})
        sent = {"Cookie": f"{STATE_COOKIE_NAME}={state}", **(headers or {})}
        if forwarded_for is not None:
            sent["X-Forwarded-For"] = forwarded_for
        query = urlencode({"code": code, "state": _serialize_state({"state_id": "test"})})
        client = AsyncHTTPClient(force_instance=True)
        before = len(self.outcomes)
        try:
            await client.fetch(f"{self.url}?{query}", headers=sent, raise_error=False, request_timeout=60)
        finally:
            client.close()
        assert len(self.outcomes) == before + 1, "the callback handler did not run"
        return self.outcomes[-1]


@asynccontextmanager
async def callback_server(authenticator: InfracalcAuthenticator) -> AsyncIterator[CallbackServer]:
    """Serve the authenticator's callback on a free loopback port for the duration of the block."""
    outcomes: list[Outcome] = []
    app = Application(
        [(r"/hub/oauth_callback", CallbackHandler, {"authenticator": authenticator, "outcomes": outcomes})]
    )
    server = HTTPServer(app, xheaders=True)
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        yield CallbackServer(f"http://127.0.0.1:{port}/hub/oauth_callback", outcomes)
    finally:
        server.stop()
        await server.close_all_connections()


def authorization_code(
    keycloak: KeycloakServer, account: DemoAccount, authenticator: InfracalcAuthenticator
) -> tuple[str, str]:
    """Sign ``account`` in at Keycloak (password, TOTP) as the hub would ask; return (code, PKCE verifier)."""
    browser = keycloak.browser("jupyterhub", acr_values=authenticator.extra_authorize_params["acr_values"])
    browser.scope = " ".join(authenticator.scope)
    where: KeycloakPage | ClientRedirect = browser.start()
    assert isinstance(where, KeycloakPage), where
    where = browser.submit_password(where, account.username, account.password)
    assert isinstance(where, KeycloakPage), where
    assert where.kind == "otp", where.describe()
    where = browser.submit_otp(where, account.totp().now())
    assert isinstance(where, ClientRedirect), where.describe()
    assert where.params.get("state") == browser.state
    assert where.code is not None, where.params
    return where.code, browser.code_verifier


class ReplayingAuthenticator(InfracalcAuthenticator):
    """The authenticator, with the code exchange answered by :attr:`token_response` (real tokens)."""

    token_response = Dict(help="The token endpoint's answer to replay.")

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self.token_response))


@dataclass
class StoredUser:
    """JupyterHub's ``User`` as ``refresh_user`` sees it: a name and the auth_state stored at sign-in."""

    name: str
    auth_state: dict[str, Any] | None

    async def get_auth_state(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.auth_state)

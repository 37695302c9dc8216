"""Signing in to the console with Keycloak, and out again.

``GET /login`` starts an authorization-code flow with PKCE (S256), ``state`` and ``nonce``, asking
for ``acr_values=mfa`` and for Keycloak's pages in the console's language (``ui_locales``), as the
``infracalc-web`` client. The three random values wait in a short
cookie signed with ``INFRACALC_WEB_SECRET`` (path ``/auth/``), with the local page to come back to.
``GET /auth/callback`` checks ``state``, exchanges the code with the client's secret, verifies the
ID token (signature, issuer, audience ``infracalc-web``, expiry, nonce, ``acr``) and the access
token with the service's own :class:`~infracalc.identity.TokenVerifier` (``acr == "mfa"``): a login
without the second factor gets the refusal page, never a session. Then it opens a server-side
session (:mod:`.sessions`). ``POST /logout`` deletes the session and ends the Keycloak session too
(through the admin API; if Keycloak cannot be reached that way, through its end-session endpoint),
so that the next login asks for the password again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from infracalc.identity import SecondFactorMissing, TokenError, TokenVerifier
from infracalc.identity.directory import DirectoryUnavailable
from infracalc.service.context import Context, ServiceContext
from infracalc.service.settings import REALM, ServiceSettings
from infracalc.web.pages import PAGE_HEADERS, language, message
from infracalc.web.sessions import (
    SESSION_COOKIE,
    Login,
    cleared_cookie,
    close_session,
    local_path,
    open_session,
    person_of,
    session_cookie,
)

logger = logging.getLogger(__name__)

AnyRequest = Request[Any, Any, Any]

#: The Keycloak client of the console.
WEB_CLIENT: Final = "infracalc-web"
#: The cookie holding a login in progress (state, nonce, PKCE verifier, where to go back).
LOGIN_COOKIE: Final = "infracalc_login"
#: How long a login may take between ``/login`` and the callback.
LOGIN_SECONDS: Final = 600
CALLBACK_PATH: Final = "/auth/callback"
_HTTP_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)


def id_token_verifier(settings: ServiceSettings) -> TokenVerifier:
    """A verifier of the console's ID tokens: audience ``infracalc-web``, type ``ID``, acr ``mfa``.

    ``create_app`` makes one (``app.state.id_verifier``), so that its key cache is shared.
    """
    return TokenVerifier(settings.issuer, audience=WEB_CLIENT, token_type="ID", jwks_url=settings.jwks_url)  # noqa: S106


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _pending_login(context: ServiceContext, values: dict[str, str]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode())
    return f"{payload.decode()}.{_sign(context.settings.web_secret, payload)}"


def _read_pending_login(context: ServiceContext, cookie: str | None) -> dict[str, str] | None:
    """The login in progress, if the cookie is one this service signed; ``None`` otherwise."""
    if not cookie or "." not in cookie:
        return None
    payload, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature, _sign(context.settings.web_secret, payload.encode())):
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return None
    return {str(k): str(v) for k, v in values.items()}


def _login_cookie(context: ServiceContext, value: str, *, max_age: int) -> Cookie:
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        path="/auth/",
        httponly=True,
        samesite="lax",
        secure=context.settings.web_url.startswith("https://"),
        max_age=max_age,
    )


def _oidc(context: ServiceContext, *, internal: bool) -> str:
    base = context.settings.keycloak_internal_url if internal else context.settings.keycloak_url
    return f"{base}/realms/{REALM}/protocol/openid-connect"


#: How long a successful look at Keycloak stands for the next logins (a dead Keycloak is asked again each time).
_KEYCLOAK_SEEN_SECONDS: Final = 5.0
_PROBE_TIMEOUT: Final = aiohttp.ClientTimeout(total=3)


async def _keycloak_answers(request: AnyRequest, context: ServiceContext) -> bool:
    """Whether Keycloak's realm answers (its discovery document), asked at most every few seconds while it does.

    The time of the last good answer is kept in the application's state (one per app, not per process).
    """
    url = f"{context.settings.keycloak_internal_url}/realms/{REALM}/.well-known/openid-configuration"
    now = time.monotonic()
    seen_at: float | None = getattr(request.app.state, "keycloak_seen_at", None)
    if seen_at is not None and now - seen_at < _KEYCLOAK_SEEN_SECONDS:
        return True
    try:
        async with aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as http, http.get(url) as answer:
            up = answer.status == 200  # noqa: PLR2004 - HTTP OK
    except (aiohttp.ClientError, TimeoutError) as failure:
        logger.warning("sign-in page: Keycloak does not answer at %s (%s)", url, failure)
        return False
    if up:
        request.app.state.keycloak_seen_at = now
    else:
        logger.warning("sign-in page: Keycloak answered HTTP %d at %s", answer.status, url)
    return up


class LoginFailed(TokenError):
    """Keycloak refused the code exchange, or answered something that is not a token response."""


class LoginPages(Controller):
    """``/login``, ``/auth/callback`` and ``/logout``."""

    path = "/"
    include_in_schema = False

    @get("/login", name="login")
    async def login(self, request: AnyRequest, context: Context, next: FromQuery[str | None] = None) -> Response[Any]:
        """Send the browser to Keycloak (password, then TOTP), to come back to ``next`` (a local path)."""
        target = local_path(next)
        if context.settings.web_client_secret is None:
            return message(request, "login.title", "login.not_configured", status_code=503)
        if await person_of(context, request.cookies.get(SESSION_COOKIE)) is not None:
            return Redirect(target, headers=PAGE_HEADERS)
        if not await _keycloak_answers(request, context):
            # Said here, in the page's language, rather than by a browser that cannot reach a dead host.
            return message(request, "login.unavailable_title", "login.keycloak_down", status_code=503)
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode(
            {
                "client_id": WEB_CLIENT,
                "response_type": "code",
                "redirect_uri": context.settings.web_url + CALLBACK_PATH,
                "scope": "openid",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "acr_values": "mfa",
                "ui_locales": language(request),
            }
        )
        pending = _pending_login(context, {"state": state, "nonce": nonce, "verifier": verifier, "next": target})
        return Redirect(
            f"{_oidc(context, internal=False)}/auth?{query}",
            headers=PAGE_HEADERS,
            cookies=[_login_cookie(context, pending, max_age=LOGIN_SECONDS)],
        )

    @get(CALLBACK_PATH, name="login-callback")
    async def callback(self, request: AnyRequest, context: Context) -> Response[Any]:
        """Keycloak's way back: check the flow, verify both tokens, open the session, go to the page asked for."""
        # ``state`` is a name Litestar reserves for a handler's parameters: read from the query itself.
        code, state, error = (request.query_params.get(name) for name in ("code", "state", "error"))
        pending = _read_pending_login(context, request.cookies.get(LOGIN_COOKIE))
        forget = _login_cookie(context, "", max_age=0)
        refused = self._refused
        if pending is None or state is None or not hmac.compare_digest(state, pending.get("state", "")):
            return refused(request, "login.stale", 400, forget)
        if error is not None or code is None:
            return refused(request, "login.cancelled", 401, forget)
        if context.settings.web_client_secret is None:
            return refused(request, "login.not_configured", 503, forget)
        try:
            tokens = await self._exchange(context, code, pending["verifier"], context.settings.web_client_secret)
            login = await anyio.to_thread.run_sync(self._verify, request, context, tokens, pending["nonce"])
        except SecondFactorMissing:
            return refused(request, "login.no_mfa", 403, forget)
        except TokenError as failure:
            logger.warning("console login refused: %s", failure)
            return refused(request, "login.refused", 401, forget)
        session_id = await open_session(context, login)
        return Redirect(
            local_path(pending.get("next")),
            headers=PAGE_HEADERS,
            cookies=[forget, session_cookie(context, session_id)],
        )

    @post("/logout", name="logout")
    async def logout(self, request: AnyRequest, context: Context) -> Response[Any]:
        """End the console session and the Keycloak session behind it."""
        sid = await close_session(context, request.cookies.get(SESSION_COOKIE))
        done = message(request, "logout.title", "logout.text", status_code=200, kind="status", page="/signed-out")
        done.set_cookie(cleared_cookie(context))
        if sid is None:
            return done
        try:
            await context.directory.end_session(sid)
        except DirectoryUnavailable as failure:
            # Keycloak's own end-session endpoint, in the browser, ends it instead.
            logger.warning("Keycloak session not ended through the admin API (%s); asking the browser", failure)
            query = urlencode(
                {"client_id": WEB_CLIENT, "post_logout_redirect_uri": context.settings.web_url + "/signed-out"}
            )
            return Redirect(
                f"{_oidc(context, internal=False)}/logout?{query}",
                headers=PAGE_HEADERS,
                cookies=[cleared_cookie(context)],
            )
        return done

    @get("/signed-out", name="signed-out")
    async def signed_out(self, request: AnyRequest) -> Template:
        """Where Keycloak's end-session endpoint sends the browser back."""
        return message(request, "logout.title", "logout.text", status_code=200, kind="status")

    @staticmethod
    def _refused(request: AnyRequest, text_key: str, status: int, forget: Cookie) -> Template:
        page = message(request, "login.refused_title", text_key, status_code=status)
        page.set_cookie(forget)
        return page

    @staticmethod
    async def _exchange(context: ServiceContext, code: str, verifier: str, secret: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": context.settings.web_url + CALLBACK_PATH,
            "code_verifier": verifier,
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=_HTTP_TIMEOUT) as http,
                http.post(
                    f"{_oidc(context, internal=True)}/token", data=form, auth=aiohttp.BasicAuth(WEB_CLIENT, secret)
                ) as answer,
            ):
                body = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as failure:
            raise LoginFailed(f"Keycloak's token endpoint did not answer: {failure}") from failure
        if status != 200 or not isinstance(body, dict):  # noqa: PLR2004 - HTTP OK
            # The answer names the OAuth error only (never a token): safe to log.
            detail = body.get("error") if isinstance(body, dict) else None
            raise LoginFailed(f"Keycloak refused the code exchange: HTTP {status} {detail}")
        if not isinstance(body.get("id_token"), str) or not isinstance(body.get("access_token"), str):
            raise LoginFailed("Keycloak's token response lacks an ID or access token")
        return body

    @staticmethod
    def _verify(request: AnyRequest, context: ServiceContext, tokens: dict[str, Any], nonce: str) -> Login:
        """Both tokens verified (in a worker thread: keys may be fetched); the login they describe."""
        id_verifier: TokenVerifier = request.app.state.id_verifier
        identity = id_verifier.verify(tokens["id_token"])
        if not hmac.compare_digest(str(identity.raw.get("nonce", "")), nonce):
            raise LoginFailed("the ID token's nonce is not this login's")
        access = context.verifier.verify(tokens["access_token"])
        if access.subject != identity.subject:
            raise LoginFailed("the ID and access tokens name different people")
        sid = identity.raw.get("sid")
        return Login(
            username=access.username,
            subject=access.subject,
            roles=access.roles,
            acr=access.acr,
            auth_time=access.auth_time,
            keycloak_sid=str(sid) if isinstance(sid, str) else None,
        )

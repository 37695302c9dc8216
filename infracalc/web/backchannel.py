"""``POST /auth/backchannel-logout``: Keycloak says a session ended (OpenID Connect Back-Channel Logout 1.0).

The realm's clients (``jupyterhub``, ``infracalc-web``) name this URL in ``backchannel.logout.url`` with
``backchannel.logout.session.required``: at every sign-out Keycloak POSTs a form field ``logout_token``, a JWT
signed with the realm's keys naming the session (``sid``). The token is verified like an ID token
(:meth:`~infracalc.identity.tokens.TokenVerifier.verify_logout`); the session is then ended everywhere
(:meth:`~infracalc.service.ended_sessions.EndedSessions.end`): its console sessions are closed and its access
tokens refused by the API. The answer is 200 (``Cache-Control: no-store``) once that is recorded, 400 for a
token that does not verify, 503 when the keys or the database cannot be reached (Keycloak logs the failure).
The route is a machine's, outside the API and its document, and exempt from the forms' CSRF check (the
signed token is the proof).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import anyio.to_thread
from litestar import Controller, Request, Response, post
from sqlalchemy.exc import SQLAlchemyError

from infracalc.identity import JwksUnavailable, TokenError
from infracalc.service.context import Context
from infracalc.service.errors import error_body

logger = logging.getLogger(__name__)

#: Where Keycloak sends logout tokens (the clients' ``backchannel.logout.url`` is the service's URL and this path).
BACKCHANNEL_PATH: Final = "/auth/backchannel-logout"
#: The clients whose sessions' logouts are accepted: those that sign people in for the service's API and console.
LOGOUT_CLIENTS: Final = frozenset({"jupyterhub", "infracalc-web", "infracalc-cli"})
_NO_STORE: Final = {"Cache-Control": "no-store"}


class BackchannelLogout(Controller):
    """Keycloak's back-channel logout of a session."""

    path = BACKCHANNEL_PATH
    include_in_schema = False

    @post("/", name="backchannel-logout", status_code=200)
    async def logout(self, request: Request[Any, Any, Any], context: Context) -> Response[Any]:
        """End the session the logout token names: its console sessions and its access tokens."""
        form = await request.form()
        token = form.get("logout_token")
        if not isinstance(token, str) or not token:
            return _answer(400, "send the logout token in the form field logout_token")
        try:
            claims = await anyio.to_thread.run_sync(
                lambda: context.verifier.verify_logout(token, audiences=LOGOUT_CLIENTS)
            )
        except JwksUnavailable as error:
            logger.warning("back-channel logout not verified now: %s", error.detail)
            return _answer(503, str(error))
        except TokenError as error:
            logger.warning("back-channel logout refused: %s", error)
            return _answer(400, f"the logout token is refused: {error}")
        try:
            closed = await context.ended_sessions.end(
                context.sessions, claims.sid, keep_seconds=context.settings.ended_session_seconds
            )
        except SQLAlchemyError as error:
            logger.warning("back-channel logout of session %s not recorded: %s", claims.sid, error)
            return _answer(503, "the logout could not be recorded now; try again")
        logger.info(
            "back-channel logout: Keycloak session %s of %s ended, %d console session(s) closed",
            claims.sid,
            claims.subject,
            closed,
        )
        return Response(None, status_code=200, headers=_NO_STORE)


def _answer(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(error_body(status, message), status_code=status, headers=_NO_STORE)


__all__ = ["BACKCHANNEL_PATH", "LOGOUT_CLIENTS", "BackchannelLogout"]

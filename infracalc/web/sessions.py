"""The console's server-side sessions: a random cookie in the browser, its SHA-256 in ``web_sessions``.

A session is opened after a two-factor login (:mod:`.login`) and names who signed in, with which
realm roles, at which level (``acr``) and when. It ends after 30 minutes without a request, 8 hours
after the login whatever happens, or at logout. No token is stored: the pages act with the
:class:`~infracalc.service.principals.Person` the session describes, the same principal the API
builds from an access token, so OPA and the domain services see no difference.

A page asks for ``person`` (:data:`PersonDependency`); without a live session the browser is sent
to ``/login?next=<the page>``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeAlias
from urllib.parse import quote

from litestar import Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from sqlalchemy import delete

from infracalc.db import WebSession
from infracalc.db.base import utc_now
from infracalc.errors import InfracalcError
from infracalc.service.context import ServiceContext
from infracalc.service.principals import Person

#: The cookie holding the session id.
SESSION_COOKIE: Final = "infracalc_session"
#: A session ends after this long without a request...
IDLE_TIMEOUT: Final = timedelta(minutes=30)
#: ... and this long after the login, whatever happens.
ABSOLUTE_TIMEOUT: Final = timedelta(hours=8)
#: A session's last request is written at most this often (a page view is not always a write).
_TOUCH_EVERY: Final = timedelta(seconds=60)
_ID_BYTES: Final = 32  # 256 bits


class LoginRequired(InfracalcError):
    """The page needs a signed-in person and the request has no live session; ``next`` is where to come back."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in to see this page")
        self.next_path = next_path


@dataclass(frozen=True, slots=True)
class Login:
    """Who signed in, as the verified tokens say (what a new session records)."""

    username: str
    subject: str
    roles: frozenset[str]
    acr: str
    auth_time: datetime | None
    keycloak_sid: str | None


def digest(session_id: str) -> str:
    """The SHA-256 (hex) under which a session id is stored."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def session_cookie(context: ServiceContext, value: str, *, max_age: int | None = None) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when the console is served over https."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=context.settings.web_url.startswith("https://"),
        max_age=max_age,
    )


def cleared_cookie(context: ServiceContext) -> Cookie:
    """A cookie that makes the browser forget its session id."""
    return session_cookie(context, "", max_age=0)


async def open_session(context: ServiceContext, login: Login, *, now: datetime | None = None) -> str:
    """Record a session for ``login``; return its id, for the cookie (the database keeps its digest only)."""
    now = now or utc_now()
    session_id = secrets.token_urlsafe(_ID_BYTES)
    async with context.sessions() as session, session.begin():
        # Sessions that ended are removed as new ones start: the table holds live sessions only (roughly).
        await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        await session.execute(delete(WebSession).where(WebSession.last_seen_at <= now - IDLE_TIMEOUT))
        session.add(
            WebSession(
                id_sha256=digest(session_id),
                username=login.username,
                subject=login.subject,
                roles=sorted(login.roles),
                acr=login.acr,
                auth_time=login.auth_time,
                keycloak_sid=login.keycloak_sid,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ABSOLUTE_TIMEOUT,
            )
        )
    return session_id


async def person_of(context: ServiceContext, session_id: str | None, *, now: datetime | None = None) -> Person | None:
    """The person of a live session, its last request moved to ``now``; ``None`` for no, unknown or ended session.

    An ended session (idle or absolute timeout) is deleted when it is found.
    """
    if not session_id or len(session_id) > 128:  # noqa: PLR2004 - far longer than any id this module makes
        return None
    now = now or utc_now()
    async with context.sessions() as session, session.begin():
        row = await session.get(WebSession, digest(session_id))
        if row is None:
            return None
        if now >= row.expires_at or now >= row.last_seen_at + IDLE_TIMEOUT:
            await session.delete(row)
            return None
        if now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
        auth_age = None if row.auth_time is None else float(math.ceil(max(0.0, (now - row.auth_time).total_seconds())))
        return Person(
            username=row.username,
            roles=frozenset(str(role) for role in row.roles),
            acr=row.acr,
            subject=row.subject,
            auth_age_seconds=auth_age,
        )


async def close_session(context: ServiceContext, session_id: str | None) -> str | None:
    """Delete the session; return its Keycloak session id (to end it there too), ``None`` when there was none."""
    if not session_id or len(session_id) > 128:  # noqa: PLR2004 - see person_of
        return None
    async with context.sessions() as session, session.begin():
        row = await session.get(WebSession, digest(session_id))
        if row is None:
            return None
        sid = row.keycloak_sid
        await session.delete(row)
    return sid


def local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a path of this site (``/...``, not ``//host`` nor a backslash trick), else ``default``."""
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ord(char) < 0x21 or char == "\\" for char in candidate):  # noqa: PLR2004 - controls and spaces
        return default
    return candidate


def login_url(next_path: str) -> str:
    """``/login`` asking to come back to ``next_path``."""
    return f"/login?next={quote(next_path, safe='/')}"


#: How a page asks for the signed-in person (Litestar injects it by this parameter name: ``person``).
SignedIn: TypeAlias = NamedDependency[Person]


async def provide_person(request: Request[Any, Any, Any]) -> Person:
    """The dependency pages use (``person``): the signed-in person, or :class:`LoginRequired`."""
    context: ServiceContext = request.app.state.context
    person = await person_of(context, request.cookies.get(SESSION_COOKIE))
    if person is None:
        path = request.url.path
        if request.url.query:
            path = f"{path}?{request.url.query}"
        raise LoginRequired(local_path(path) if request.method == "GET" else "/")
    return person

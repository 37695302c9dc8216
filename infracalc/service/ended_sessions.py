"""Sign-out signs out everywhere: Keycloak sessions ended by back-channel logout, and the tokens they refuse.

When a person signs out (the account console, the hub, the console, an administrator), Keycloak sends each
client of the session a back-channel ``logout_token`` naming the session (``sid``); the service receives it
(:mod:`infracalc.web.backchannel`) and calls :meth:`EndedSessions.end`, which in one transaction

- remembers the session id in ``ended_sessions`` until no access token of it can still be valid
  (``INFRACALC_ENDED_SESSION_SECONDS``, at least the realm's access-token lifespan), forgetting the expired ones;
- deletes the console sessions opened by that Keycloak session.

The API then refuses the access tokens that carry that ``sid`` (:meth:`EndedSessions.is_ended`, asked by
:class:`~infracalc.service.auth.KeycloakScheme` at every request, verified token or not). The ids live in the
database, not in one process's memory, so every replica refuses them; each replica reads them at most once a
second (one query for all of them, however many requests), so a logout takes effect everywhere within a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.db import EndedSession, WebSession, utc_now
from infracalc.identity import TokenError

#: How long a replica may answer from what it read of ``ended_sessions``.
READ_EVERY_SECONDS = 1.0


class SessionEnded(TokenError):
    """The token belongs to a Keycloak session that ended (its person signed out)."""


class EndedSessions:
    """The ended Keycloak sessions, as one replica knows them (read from the database at most once a second)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def is_ended(self, sessions: async_sessionmaker[AsyncSession], sid: str) -> bool:
        """Whether the Keycloak session ``sid`` ended (as the database said at most a second ago)."""
        if self._read_at is None or self._clock() - self._read_at >= READ_EVERY_SECONDS:
            async with self._lock:
                if self._read_at is None or self._clock() - self._read_at >= READ_EVERY_SECONDS:
                    started = self._clock()
                    async with sessions() as session:
                        found = await session.scalars(
                            select(EndedSession.sid).where(EndedSession.expires_at > utc_now())
                        )
                        self._known = frozenset(found.all())
                    self._read_at = started
        return sid in self._known

    async def end(
        self, sessions: async_sessionmaker[AsyncSession], sid: str, *, keep_seconds: float, now: datetime | None = None
    ) -> int:
        """Record that the Keycloak session ``sid`` ended and close its console sessions; return how many closed."""
        now = now or utc_now()
        async with sessions() as session, session.begin():
            await session.execute(delete(EndedSession).where(EndedSession.expires_at <= now))
            await session.execute(delete(EndedSession).where(EndedSession.sid == sid))
            session.add(EndedSession(sid=sid, ended_at=now, expires_at=now + timedelta(seconds=keep_seconds)))
            closed = await session.execute(delete(WebSession).where(WebSession.keycloak_sid == sid))
        self._known = self._known | {sid}  # this replica knows at once
        return int(getattr(closed, "rowcount", 0) or 0)


__all__ = ["READ_EVERY_SECONDS", "EndedSessions", "SessionEnded"]

"""Ended Keycloak sessions, on SQLite then PostgreSQL: shared through the database, read at most once a second.

The whole chain (Keycloak's logout token reaching the service, the API refusing the token) is proven against
a real Keycloak in ``tests/integration/faults/test_keycloak_faults.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.db import EndedSession, WebSession, utc_now
from infracalc.service.ended_sessions import EndedSessions

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def open_console_session(session_factory: async_sessionmaker[AsyncSession], key: str, sid: str) -> None:
    now = utc_now()
    async with session_factory() as session, session.begin():
        session.add(
            WebSession(
                id_sha256=key * 64,
                username="someone",
                subject="sub",
                roles=[],
                acr="mfa",
                keycloak_sid=sid,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=8),
            )
        )


async def test_a_session_ended_on_one_replica_is_refused_by_another_within_a_second(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    here, there = EndedSessions(clock), EndedSessions(clock)
    assert not await there.is_ended(session_factory, "sid-1")  # read now: nothing ended

    await here.end(session_factory, "sid-1", keep_seconds=600)

    assert await here.is_ended(session_factory, "sid-1")  # the replica that ended it knows at once
    clock.now += 0.5
    assert not await there.is_ended(session_factory, "sid-1")  # the other answers from its read of 0.5 s ago
    clock.now += 0.5
    assert await there.is_ended(session_factory, "sid-1")  # one second after its read, it reads again


async def test_ending_a_session_closes_its_console_sessions_only(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await open_console_session(session_factory, "a", "sid-1")
    await open_console_session(session_factory, "b", "sid-1")
    await open_console_session(session_factory, "c", "sid-2")

    closed = await EndedSessions().end(session_factory, "sid-1", keep_seconds=600)

    assert closed == 2
    async with session_factory() as session:
        left = (await session.scalars(select(WebSession.keycloak_sid))).all()
    assert left == ["sid-2"]


async def test_ended_sessions_are_forgotten_once_their_tokens_expired(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    sessions = EndedSessions()
    long_ago = utc_now() - timedelta(hours=2)
    await sessions.end(session_factory, "old", keep_seconds=3600, now=long_ago)
    await sessions.end(session_factory, "old", keep_seconds=3600, now=long_ago)  # twice: still one row
    await sessions.end(session_factory, "new", keep_seconds=3600)
    async with session_factory() as session:
        assert (await session.scalars(select(EndedSession.sid))).all() == ["new"]
    assert not await EndedSessions().is_ended(session_factory, "old")

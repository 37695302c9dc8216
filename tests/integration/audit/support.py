"""Helpers shared by the audit integration tests: a clock the test moves, and a log filled quickly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import AuditEntry, AuditLog, VerificationReport, verify
from infracalc.audit.signer import CheckpointSigner
from infracalc.db import session_factory as make_session_factory

START = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """A clock that advances one millisecond per reading, or as far as the test says."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def append_events(
    sessions: async_sessionmaker[AsyncSession],
    log: AuditLog,
    count: int,
    *,
    checkpoints: bool = True,
    together: bool = False,
) -> None:
    """Append ``count`` events, one transaction each, sealing the head when due.

    ``together``: append and seal with :meth:`AuditLog.append_and_seal`, as the service does, rather
    than :meth:`AuditLog.append` then :meth:`AuditLog.maybe_checkpoint`.
    """
    for i in range(count):
        entry = AuditEntry(
            actor=f"user{i % 3}",
            action="member.add",
            project_id=f"p{i % 2}",
            governance="CASD" if i % 2 else "INFRACALC",
            details={"username": f"researcher{i}", "role": "member", "note": "Zoé ✓"},
        )
        async with sessions() as session, session.begin():
            if together:
                await log.append_and_seal(session, [entry])
                continue
            await log.append(session, **entry._asdict())
            if checkpoints:
                await log.maybe_checkpoint(session)


async def execute(sessions: async_sessionmaker[AsyncSession], *statements: str, **params: object) -> None:
    """Run raw SQL statements in one committed transaction (tampering, as an attacker with SQL access would)."""
    async with sessions() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement), params)


async def verify_now(
    engine: AsyncEngine, signer: CheckpointSigner, batch_size: int = 5_000, *, segments: int = 1
) -> VerificationReport:
    """Verify through a read-only session, as the CLI does.

    ``segments`` > 1 lets that many segments of at least one event be walked at once (SQLite files
    only); 1 verifies in one pass.
    """
    async with make_session_factory(engine, read_only=True)() as session, session.begin():
        return await verify(session, signer.public_key, batch_size=batch_size, workers=segments, min_segment=1)

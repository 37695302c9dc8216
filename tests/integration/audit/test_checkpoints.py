"""Checkpoints: the head is sealed every N events or T seconds, signed with the configured key."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditError,
    AuditEvent,
    AuditLog,
    CheckpointSigner,
    format_time,
)
from infracalc.audit.canonical import checkpoint_message
from infracalc.audit.signer import signature_valid
from tests.integration.audit.support import FakeClock, append_events, verify_now

pytestmark = pytest.mark.integration


async def checkpoints(sessions: async_sessionmaker[AsyncSession]) -> list[AuditCheckpoint]:
    async with sessions() as session:
        return list((await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).all())


#: The two ways of sealing when due: append then maybe_checkpoint, or append_and_seal (the service's, one head read).
TOGETHER = pytest.mark.parametrize("together", [False, True], ids=["maybe_checkpoint", "append_and_seal"])


@TOGETHER
async def test_the_head_is_sealed_every_n_events(
    session_factory: async_sessionmaker[AsyncSession],
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    together: bool,
) -> None:
    await append_events(session_factory, audit_log, 12, together=together)
    sealed = await checkpoints(session_factory)
    assert [checkpoint.seq for checkpoint in sealed] == [5, 10]
    async with session_factory() as session:
        hashes = {row.seq: row.hash for row in await session.execute(select(AuditEvent.seq, AuditEvent.hash))}
    for checkpoint in sealed:
        assert checkpoint.hash == hashes[checkpoint.seq]
        assert checkpoint.key_id == checkpoint_signer.key_id
        message = checkpoint_message(checkpoint.seq, checkpoint.hash, format_time(checkpoint.at), checkpoint.key_id)
        assert signature_valid(checkpoint_signer.public_key, bytes.fromhex(checkpoint.signature), message)


@TOGETHER
async def test_the_head_is_sealed_when_the_interval_has_passed(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog, clock: FakeClock, together: bool
) -> None:
    await append_events(session_factory, audit_log, 2, together=together)
    assert await checkpoints(session_factory) == []
    clock.advance(61)  # counted from the first event while nothing is sealed yet
    await append_events(session_factory, audit_log, 1, together=together)
    assert [c.seq for c in await checkpoints(session_factory)] == [3]
    await append_events(session_factory, audit_log, 1, together=together)
    clock.advance(59)
    await append_events(session_factory, audit_log, 1, together=together)
    assert [c.seq for c in await checkpoints(session_factory)] == [3], "59 s after the last checkpoint: not yet"
    clock.advance(2)
    await append_events(session_factory, audit_log, 1, together=together)
    assert [c.seq for c in await checkpoints(session_factory)] == [3, 6]


async def test_maybe_checkpoint_does_nothing_on_an_empty_or_sealed_log(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog, clock: FakeClock
) -> None:
    async with session_factory() as session, session.begin():
        assert await audit_log.maybe_checkpoint(session) is None
        assert await audit_log.checkpoint_now(session) is None
    await append_events(session_factory, audit_log, 5)
    clock.advance(3600)
    async with session_factory() as session, session.begin():
        assert await audit_log.maybe_checkpoint(session) is None, "seq 5 is sealed already"


async def test_checkpoint_now_seals_the_head_once(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog
) -> None:
    await append_events(session_factory, audit_log, 3, checkpoints=False)
    async with session_factory() as session, session.begin():
        first = await audit_log.checkpoint_now(session)
    async with session_factory() as session, session.begin():
        again = await audit_log.checkpoint_now(session)
    assert first is not None
    assert again is not None
    assert (first.seq, again.seq, again.signature) == (3, 3, first.signature)
    assert len(await checkpoints(session_factory)) == 1


async def test_a_head_the_log_does_not_back_is_never_signed(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog
) -> None:
    await append_events(session_factory, audit_log, 3, checkpoints=False)
    async with session_factory() as session, session.begin():
        await session.execute(text("UPDATE audit_events SET hash = :h WHERE seq = 3"), {"h": "f" * 64})
    async with session_factory() as session, session.begin():
        with pytest.raises(AuditError, match="disagrees with the log"):
            await audit_log.checkpoint_now(session)
    assert await checkpoints(session_factory) == []


async def test_append_and_seal_chains_several_events_then_seals_their_head(
    session_factory: async_sessionmaker[AsyncSession],
    audit_log: AuditLog,
    engine: AsyncEngine,
    checkpoint_signer: CheckpointSigner,
) -> None:
    entries = [AuditEntry(f"user{i}", "member.add", "p1", "CASD", {"i": i}) for i in range(7)]
    async with session_factory() as session, session.begin():
        events = await audit_log.append_and_seal(session, entries)
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [c.seq for c in await checkpoints(session_factory)] == [7], "7 unsealed events, 5 due: the head is sealed"
    async with session_factory() as session, session.begin():
        assert await audit_log.append_and_seal(session, []) == []
    report = await verify_now(engine, checkpoint_signer)
    assert (report.ok, report.events_checked) == (True, 7)

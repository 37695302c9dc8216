"""Appending: chained, gapless, in the caller's transaction, serialised under concurrent writers."""

from __future__ import annotations

import asyncio
import itertools
import json
import random

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditError,
    AuditEvent,
    AuditHead,
    AuditLog,
    CheckpointSigner,
    chain_hash,
    event_text,
    format_time,
)
from infracalc.db import Governance, Project
from tests.integration.audit.support import FakeClock, append_events, verify_now

pytestmark = pytest.mark.integration


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


async def test_events_are_chained_from_genesis(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog, clock: FakeClock
) -> None:
    async with session_factory() as session, session.begin():
        first = await audit_log.append(
            session,
            actor="alice",
            action="project.create",
            project_id="p1",
            governance=Governance.CASD,
            details={"title": "Été", "a": [1, 2]},
        )
        second = await audit_log.append(session, actor="system", action="opa.resync")
    stored = await events(session_factory)
    assert [event.seq for event in stored] == [1, 2]
    assert stored[0].prev_hash == GENESIS_HASH
    assert stored[1].prev_hash == stored[0].hash
    assert (first.hash, second.hash) == (stored[0].hash, stored[1].hash)
    assert stored[0].details == {"title": "Été", "a": [1, 2]}
    assert stored[0].governance is Governance.CASD
    assert stored[1].project_id is None
    assert stored[1].governance is None
    assert stored[0].at.tzinfo is not None
    expected = chain_hash(
        GENESIS_HASH,
        event_text(1, format_time(stored[0].at), "alice", "project.create", "p1", "CASD", '{"a":[1,2],"title":"Été"}'),
    )
    assert stored[0].hash == expected
    async with session_factory() as session:
        raw = await session.scalar(text("SELECT details FROM audit_events WHERE seq = 1"))
        head = await session.get(AuditHead, 1)
    assert raw == '{"a":[1,2],"title":"Été"}', "details are stored as their canonical text"
    assert head is not None
    assert (head.seq, head.hash) == (2, stored[1].hash)


async def test_a_rolled_back_change_leaves_no_event_and_no_gap(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog
) -> None:
    class Refused(Exception):
        pass

    async def refused_change() -> None:
        async with session_factory() as session, session.begin():
            session.add(Project(id="p1", title="Doomed", governance=Governance.CASD))
            await audit_log.append(session, actor="alice", action="project.create", project_id="p1")
            raise Refused

    with pytest.raises(Refused):
        await refused_change()
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Project)) == 0
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    async with session_factory() as session, session.begin():
        session.add(Project(id="p1", title="Kept", governance=Governance.CASD))
        event = await audit_log.append(session, actor="alice", action="project.create", project_id="p1")
    assert event.seq == 1
    assert event.prev_hash == GENESIS_HASH


async def test_append_does_not_commit(session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog) -> None:
    async with session_factory() as session:
        await audit_log.append(session, actor="alice", action="project.create")
        # Leaving without commit: the caller decides, and here it did not.
    assert await events(session_factory) == []


async def test_refused_details_write_nothing(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog
) -> None:
    async with session_factory() as session, session.begin():
        with pytest.raises(AuditError, match="plain JSON"):
            await audit_log.append(session, actor="alice", action="x", details={"n": float("nan")})
        with pytest.raises(AuditError, match="not a valid Governance"):
            await audit_log.append(session, actor="alice", action="x", governance="NOBODY")
    assert await events(session_factory) == []


async def test_append_many_chains_exactly_as_appends_one_by_one(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    checkpoint_signer: CheckpointSigner,
) -> None:
    entries = [
        AuditEntry("alice", "project.create", "p1", Governance.CASD, {"title": "Été"}),
        AuditEntry(
            "bubble:0123456789abcdef", "egress.connection.deny", None, None, {"host": "example.org", "port": 443}
        ),
        AuditEntry("system", "opa.resync"),
        AuditEntry("proxy:egress", "egress.connection.close", "p1", "INFRACALC", {"seconds": 0.25}),
    ]
    # The same clock readings for both logs, so that the two chains must be byte for byte equal.
    many = AuditLog(checkpoint_signer, clock=FakeClock())
    async with session_factory() as session, session.begin():
        await many.append(session, actor="first", action="before.batch")
        batch = await many.append_many(session, entries)
        assert await many.append_many(session, []) == []
        await many.append(session, actor="last", action="after.batch")
    stored = await events(session_factory)
    assert [event.seq for event in stored] == [1, 2, 3, 4, 5, 6]
    assert [event.hash for event in batch] == [event.hash for event in stored[1:5]]
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash
    report = await verify_now(engine, checkpoint_signer)
    assert report.ok, report.problem

    one_by_one = AuditLog(checkpoint_signer, clock=FakeClock())
    expected = []
    prev = GENESIS_HASH
    for seq, entry in enumerate([AuditEntry("first", "before.batch"), *entries, AuditEntry("last", "after.batch")], 1):
        owner = None if entry.governance is None else str(entry.governance)
        details = json.dumps(entry.details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        at = format_time(one_by_one.clock())
        prev = chain_hash(prev, event_text(seq, at, entry.actor, entry.action, entry.project_id, owner, details))
        expected.append(prev)
    assert [event.hash for event in stored] == expected
    async with session_factory() as session:
        head = await session.get(AuditHead, 1)
    assert head is not None
    assert (head.seq, head.hash) == (6, stored[-1].hash)


async def test_append_many_with_one_bad_entry_adds_nothing(
    session_factory: async_sessionmaker[AsyncSession], audit_log: AuditLog
) -> None:
    async with session_factory() as session, session.begin():
        with pytest.raises(AuditError, match="plain JSON"):
            await audit_log.append_many(
                session, [AuditEntry("alice", "x"), AuditEntry("alice", "y", details={"n": float("inf")})]
            )
        head = await session.get(AuditHead, 1)
        assert head is not None
        assert head.seq == 0
    assert await events(session_factory) == []


@pytest.mark.timeout(120)
async def test_concurrent_appends_stay_gapless_and_linear(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], checkpoint_signer: CheckpointSigner
) -> None:
    log = AuditLog(checkpoint_signer, checkpoint_every=3)
    writers = 20
    rng = random.Random(4)
    pauses = [rng.uniform(0, 0.02) for _ in range(writers)]

    async def writer(index: int) -> int:
        async with session_factory() as session, session.begin():
            session.add(Project(id=f"p{index}", title=f"Project {index}", governance=Governance.INFRACALC))
            event = await log.append(
                session, actor=f"user{index}", action="project.create", project_id=f"p{index}", details={"i": index}
            )
            # Hold the transaction open after appending, so that the writers really overlap.
            await asyncio.sleep(pauses[index])
            await log.maybe_checkpoint(session)
            return event.seq

    seqs = await asyncio.gather(*(writer(i) for i in range(writers)))
    assert sorted(seqs) == list(range(1, writers + 1))
    stored = await events(session_factory)
    assert [event.seq for event in stored] == list(range(1, writers + 1))
    assert sorted(json.dumps(event.details) for event in stored) == sorted(json.dumps({"i": i}) for i in range(writers))
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash
    report = await verify_now(engine, checkpoint_signer)
    assert report.ok, report.problem
    assert report.events_checked == writers
    assert report.checkpoints_checked == writers // 3


async def test_a_long_log_verifies_across_batches(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
) -> None:
    await append_events(session_factory, audit_log, 23)
    for batch_size in (1, 4, 5, 100):
        report = await verify_now(engine, checkpoint_signer, batch_size=batch_size)
        assert (report.ok, report.events_checked, report.checkpoints_checked) == (True, 23, 4), batch_size

"""Verification in segments: worker processes vouch for an intact SQLite log, and never for a tampered one.

``verify`` trusts the segments only when every one of them, and every seam between two, is right;
otherwise it walks the whole log in one pass to name the fault (test_tampering.py checks those
reports with segments on). Here the segment pass itself is checked: what it says about an intact
log, that it says nothing (None) about each kind of tampering, and that a failing worker costs a
second pass, not a wrong answer.
"""

from __future__ import annotations

import logging
import sys

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import AuditLog, CheckpointSigner, VerificationReport
from infracalc.audit.verification import _segment_bounds, verify_in_segments
from infracalc.db import session_factory as make_session_factory
from tests.integration.audit.support import append_events, verify_now
from tests.integration.audit.test_tampering import CASES, Tampering

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]


async def in_segments(engine: AsyncEngine, signer: CheckpointSigner, workers: int) -> VerificationReport | None:
    async with make_session_factory(engine, read_only=True)() as session, session.begin():
        return await verify_in_segments(session, signer.public_key, workers=workers, min_segment=1, batch_size=2)


@pytest.mark.parametrize("workers", [2, 3, 4, 12])
async def test_segments_vouch_for_an_intact_sqlite_log(
    engine: AsyncEngine,
    session_factory: Sessions,
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    workers: int,
) -> None:
    await append_events(session_factory, audit_log, 12)
    report = await in_segments(engine, checkpoint_signer, workers)
    if engine.dialect.name == "postgresql":
        assert report is None  # PostgreSQL is walked in one pass
        return
    assert report == VerificationReport(ok=True, events_checked=12, checkpoints_checked=2)


@pytest.mark.parametrize(("tamper", "first_bad", "problem"), CASES, ids=[case[0].__name__ for case in CASES])
async def test_segments_never_vouch_for_a_tampered_log(
    engine: AsyncEngine,
    session_factory: Sessions,
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    tamper: Tampering,
    first_bad: int,
    problem: str,
) -> None:
    await append_events(session_factory, audit_log, 12)
    await tamper(session_factory, checkpoint_signer)
    for workers in (2, 3, 4, 12):  # seams fall in different places
        assert await in_segments(engine, checkpoint_signer, workers) is None, (workers, first_bad, problem)


async def test_a_failing_worker_costs_a_full_pass_not_a_wrong_answer(
    engine: AsyncEngine,
    session_factory: Sessions,
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await append_events(session_factory, audit_log, 12)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every worker process exits with status 1
    with caplog.at_level(logging.WARNING, logger="infracalc.audit.verification"):
        assert await in_segments(engine, checkpoint_signer, 3) is None
        report = await verify_now(engine, checkpoint_signer, segments=3)
    assert report == VerificationReport(ok=True, events_checked=12, checkpoints_checked=2)
    if engine.dialect.name == "sqlite":
        assert "audit verification worker for events 9 and on failed" in caplog.text


@pytest.mark.parametrize(("events", "count"), [(12, 2), (12, 3), (12, 12), (100_000, 2), (100_001, 7), (2, 2)])
def test_segments_cover_every_event_once_with_a_head_start_for_this_process(events: int, count: int) -> None:
    bounds = _segment_bounds(events, count)
    assert len(bounds) == count
    assert [first for first, _ in bounds] == [1] + [last + 1 for _, last in bounds[:-1]]
    assert bounds[-1][1] == events
    lengths = [last - first + 1 for first, last in bounds]
    assert min(lengths) >= 1
    assert max(lengths[1:]) - min(lengths[1:]) <= 1  # the workers share evenly
    assert lengths[0] >= max(lengths[1:])  # this process starts at once: it takes at least as many

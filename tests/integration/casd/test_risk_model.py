"""Colysée against the real S3 server and both databases: training, storage, shadow, promotion and routing.

Exports are submitted through :mod:`infracalc.casd.exports` (checked, stored in versitygw, routed)
and reviewed by two staff members following a stated rule: a table whose smallest flagged count
is 1 to 3, or a table of 30 columns or more, is sent back; the rest is approved. A model trained
on those reviews is stored, verified, shadowed, compared and promoted; every step is checked in
the database, the bucket and the audit log, and the refusals are checked to change none of them.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.audit import AuditEvent, AuditLog, CheckpointSigner
from infracalc.casd import exports
from infracalc.casd.objects import MINIMUM_PART_SIZE, ObjectStore
from infracalc.casd.risk_model import (
    ModelIntegrityError,
    NotEnoughReviews,
    PromotionRefused,
    RiskAssessor,
    RiskModel,
    TrainingOptions,
    registry,
)
from infracalc.casd.risk_model.routing import combined_level, measured_recall
from infracalc.casd.risk_model.runs import train_and_register
from infracalc.casd.sessions import open_session
from infracalc.db import (
    Export,
    ExportState,
    ExportVersion,
    Governance,
    Project,
    RiskDecision,
    RiskModelRecord,
    RiskModelStatus,
    RiskRouting,
)
from infracalc.service.exports.service import reasons as export_reasons
from infracalc.storage import make_s3_client
from tests.fixtures.servers import S3Server

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
JUSTIFICATION = "Aggregated counts by region for table 2 of the paper."
START = datetime(2026, 3, 1, tzinfo=UTC)
BUBBLES = {
    "casd-cohort": ("0123456789abcdef", Governance.CASD),
    "open-cohort": ("fedcba9876543210", Governance.INFRACALC),
}


class Clock:
    """A clock that moves one minute per reading, so that the reviews have a strict order in time."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
async def store(s3: S3Server) -> AsyncIterator[ObjectStore]:
    objects = ObjectStore(make_s3_client(s3.settings), "test-" + secrets.token_hex(6), part_size=MINIMUM_PART_SIZE)
    await objects.ensure_bucket()
    yield objects
    for key in await objects.keys(""):
        await objects.delete(key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def projects(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        for slug, (bubble, governance) in BUBBLES.items():
            db.add(Project(id=slug, title=slug, governance=governance))
            await db.flush()
            await open_session(db, session_id=bubble, project_id=slug, username="rita", governance=governance)


def output(path: Path, rng: random.Random) -> tuple[Path, bool]:
    """A table (or a note) and whether the stated reviewers' rule sends it back."""
    kind = rng.random()
    if kind < 0.1:
        path = path.with_suffix(".txt")
        path.write_text("Method notes: the model converged after 40 iterations.\n")
        return path, False
    columns = 30 if kind < 0.3 else rng.choice([3, 4, 6])
    smallest = rng.choice([None, None, 2, 7])
    rows = ["region," + ",".join(f"y{c}" for c in range(columns))]
    for index in range(8):
        counts = [500 + index * 10 + c for c in range(columns)]
        if smallest is not None and index == 3:
            counts[1] = smallest
        rows.append(f"r{index}," + ",".join(map(str, counts)))
    path.write_text("\n".join(rows) + "\n")
    return path, (smallest is not None and smallest <= 3) or columns >= 30


async def submit(
    sessions: Sessions,
    store: ObjectStore,
    log: AuditLog,
    path: Path,
    *,
    slug: str,
    clock: Clock,
    assessor: RiskAssessor | None = None,
) -> exports.Submitted | exports.Refused:
    settings = exports.ExportSettings()
    bubble, governance = BUBBLES[slug]
    checked = await exports.check(path, name=path.name, justification=JUSTIFICATION, settings=settings)
    staged = None
    if checked.report.outcome != "fail":
        staged = await exports.stage(
            store,
            checked,
            project_id=slug,
            export_id=exports.new_export_id(),
            version=1,
            governance=governance,
            settings=settings,
        )
    async with sessions() as db, db.begin():
        return await exports.submit(
            db,
            store,
            checked,
            staged=staged,
            project_id=slug,
            session_id=bubble,
            requested_by="rita",
            actor=f"bubble:{bubble}",
            settings=settings,
            sampler=random.Random(1),
            audit=log.append,
            clock=clock,
            assessor=assessor,
        )


async def review(sessions: Sessions, log: AuditLog, export: Export, risky: bool, clock: Clock) -> None:
    """Staff's votes by the stated rule: one sends back a risky output, approvals enough to release the rest."""
    voters = ["sam"] if risky else ["sam", "sue"][: max(1, export.required_reviews)]
    for reviewer in voters:
        async with sessions() as db, db.begin():
            await exports.review(
                db,
                export_id=export.id,
                reviewer=reviewer,
                verdict="changes" if risky else "approve",
                comment="small counts or too detailed" if risky else "fine",
                audit=log.append,
                clock=clock,
            )


async def reviewed_history(
    sessions: Sessions, store: ObjectStore, log: AuditLog, tmp_path: Path, clock: Clock, count: int
) -> None:
    """``count`` exports of the CASD project (all reviewed) and a few of the INFRACALC one, reviewed by the rule."""
    rng = random.Random(21)
    for index in range(count):
        slug = "open-cohort" if index % 5 == 4 else "casd-cohort"
        path, risky = output(tmp_path / f"out{index}.csv", rng)
        result = await submit(sessions, store, log, path, slug=slug, clock=clock)
        assert isinstance(result, exports.Submitted)
        if result.export.state == ExportState.IN_REVIEW:
            await review(sessions, log, result.export, risky, clock)


async def snapshot(sessions: Sessions, store: ObjectStore) -> dict[str, Any]:
    async with sessions() as db:
        models = [
            (m.id, m.status.value) for m in await db.scalars(select(RiskModelRecord).order_by(RiskModelRecord.id))
        ]
        bar = await db.get(RiskRouting, 1)
        events = int(await db.scalar(select(func.count()).select_from(AuditEvent)) or 0)
        decisions = int(await db.scalar(select(func.count()).select_from(RiskDecision)) or 0)
    return {
        "models": models,
        "bar": None if bar is None else bar.recall_bar,
        "events": events,
        "decisions": decisions,
        "objects": sorted(await store.keys(registry.MODEL_PREFIX)),
    }


async def last_event(sessions: Sessions) -> AuditEvent:
    async with sessions() as db:
        found = await db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert found is not None
    return found


async def test_training_stores_a_verified_model_in_shadow_and_audits_it(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path, clock: Clock
) -> None:
    log = AuditLog(checkpoint_signer)
    await projects(session_factory)
    await reviewed_history(session_factory, store, log, tmp_path, clock, 8)
    before = await snapshot(session_factory, store)
    with pytest.raises(NotEnoughReviews, match="at least 30"):
        await train_and_register(session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append)
    assert await snapshot(session_factory, store) == before  # a refused training writes nothing anywhere

    await reviewed_history(session_factory, store, log, tmp_path, clock, 44)
    record = await train_and_register(
        session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
    )
    assert record.status == RiskModelStatus.SHADOW
    assert record.version == 1
    stored = b"".join([chunk async for chunk in store.read(record.object_key)])
    assert hashlib.sha256(stored).hexdigest() == record.sha256
    assert await store.governance_of(record.object_key) == Governance.CASD
    assert record.metrics["roc_auc"] > 0.5
    assert 0 <= record.metrics["brier"] <= 1
    event = await last_event(session_factory)
    assert event.action == "risk.train"
    assert event.actor == "ada"
    assert event.details["sha256"] == record.sha256
    assert event.details["object_key"] == record.object_key
    assert "roc_auc" in event.details["metrics"]

    # A second training retires the first shadow: one shadow at a time.
    second = await train_and_register(
        session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
    )
    async with session_factory() as db:
        statuses = {m.id: m.status for m in await registry.history(db)}
    assert statuses == {record.id: RiskModelStatus.RETIRED, second.id: RiskModelStatus.SHADOW}


async def test_a_shadow_is_compared_then_promoted_and_routes_never_below_the_rules(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path, clock: Clock
) -> None:
    log = AuditLog(checkpoint_signer)
    await projects(session_factory)
    await reviewed_history(session_factory, store, log, tmp_path, clock, 44)
    shadow = await train_and_register(
        session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
    )
    assessor = RiskAssessor(store)
    rng = random.Random(5)

    # In shadow: the model is asked and logged, the rules alone route.
    for index in range(6):
        path, _ = output(tmp_path / f"new{index}.csv", rng)
        result = await submit(session_factory, store, log, path, slug="casd-cohort", clock=clock, assessor=assessor)
        assert isinstance(result, exports.Submitted)
        assert result.export.risk_level == result.report.risk_level.value
        async with session_factory() as db:
            version = await db.get(ExportVersion, (result.export.id, 1))
            assert version is not None
            section = version.report["risk_model"]
            decision = await db.scalar(select(RiskDecision).where(RiskDecision.export_id == result.export.id))
        assert section["in_force"] is None
        assert section["shadow"]["model"] == shadow.id
        assert decision is not None
        assert not decision.in_force
        assert decision.model_id == shadow.id
    event = await last_event(session_factory)
    assert event.details["risk_model"]["shadow"]["model"] == shadow.id

    # Too few exports compared: refused, and nothing changes.
    before = await snapshot(session_factory, store)
    async with session_factory() as db, db.begin():
        with pytest.raises(PromotionRefused, match="decided 6 export"):
            await registry.promote(db, store, shadow.id, actor="ada", reason="better", audit=log.append, now=clock())
    async with session_factory() as db, db.begin():
        with pytest.raises(PromotionRefused, match="reason is required"):
            await registry.promote(db, store, shadow.id, actor="ada", reason=" ", audit=log.append, now=clock())
    assert await snapshot(session_factory, store) == before

    async with session_factory() as db, db.begin():
        await registry.promote(
            db,
            store,
            shadow.id,
            actor="ada",
            reason="compared on 6 exports",
            audit=log.append,
            now=clock(),
            min_decisions=5,
        )
    event = await last_event(session_factory)
    assert event.action == "risk.promote"
    assert event.details["sha256"] == shadow.sha256
    assert event.details["comparison"]["decided"] == 6
    async with session_factory() as db:
        in_force, in_shadow = await registry.in_use(db)
    assert in_force is not None
    assert in_force.id == shadow.id
    assert in_shadow is None

    # In force, with staff's bar at 0.5: the higher of both levels, or one below where the model may lower.
    async with session_factory() as db, db.begin():
        await registry.set_recall_bar(db, 0.5, actor="ada", reason="trial", audit=log.append, now=clock())
    model = await registry.load_model(store, shadow)
    await routed_in_force(session_factory, store, log, tmp_path, clock, assessor, model, rng)


async def routed_in_force(
    sessions: Sessions,
    store: ObjectStore,
    log: AuditLog,
    tmp_path: Path,
    clock: Clock,
    assessor: RiskAssessor,
    model: RiskModel,
    rng: random.Random,
) -> None:
    ranks = {"low": 0, "medium": 1, "high": 2}
    lowers = (measured_recall(model) or 0.0) >= 0.5
    for index in range(12):
        path, _ = output(tmp_path / f"later{index}.csv", rng)
        slug = "open-cohort" if index % 2 else "casd-cohort"
        result = await submit(sessions, store, log, path, slug=slug, clock=clock, assessor=assessor)
        assert isinstance(result, exports.Submitted)
        async with sessions() as db:
            version = await db.get(ExportVersion, (result.export.id, 1))
            assert version is not None
            section = version.report["risk_model"]
            decision = await db.scalar(select(RiskDecision).where(RiskDecision.export_id == result.export.id))
            events = list(await db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(3)))
        rules = result.report.risk_level
        opinion = section["in_force"]
        assert opinion["model"] == model.id
        expected = combined_level(rules, opinion["model_level"], lowering_allowed=slug == "open-cohort" and lowers)
        assert section["level"] == result.export.risk_level == expected.value
        assert ranks[result.export.risk_level] >= ranks[rules.value] - (1 if slug == "open-cohort" else 0)
        assert decision is not None
        assert decision.in_force
        assert decision.final_level == result.export.risk_level
        for reason in opinion["explanation"]:
            assert reason["code"].startswith("risk.")
            assert reason["text"]["en"] != reason["text"]["fr"]
        if opinion["explanation"]:
            assert any(line.startswith("risk_model (") for line in export_reasons(version.report))
        if slug == "casd-cohort":
            assert result.export.required_reviews >= 1
        if result.export.state == ExportState.RELEASED:
            # Released at once: drawn with the model's chance (more where it is unsure), recorded and audited.
            sample = next(e for e in events if e.action == "export.sample")
            assert sample.details["rate"] == pytest.approx(opinion["sample_probability"], abs=1e-6)
            assert decision.sample_probability == pytest.approx(opinion["sample_probability"], abs=1e-6)
            assert sample.details["model"] == model.id


async def test_a_damaged_model_file_is_never_used_nor_promoted(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path, clock: Clock
) -> None:
    log = AuditLog(checkpoint_signer)
    await projects(session_factory)
    await reviewed_history(session_factory, store, log, tmp_path, clock, 44)
    record = await train_and_register(
        session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
    )
    async with session_factory() as db, db.begin():
        await registry.promote(
            db, store, record.id, actor="ada", reason="trusted", audit=log.append, now=clock(), min_decisions=0
        )
    # Someone rewrites the stored parameters (a bigger weight on one feature): the digest no longer matches.
    stored = b"".join([chunk async for chunk in store.read(record.object_key)])
    await store.put_stream(
        record.object_key,
        _chunks(stored.replace(b'"intercept":', b'"intercept":9', 1)),
        governance=Governance.CASD,
        max_bytes=len(stored) + 1,
    )
    path, _ = output(tmp_path / "after.csv", random.Random(3))
    result = await submit(
        session_factory, store, log, path, slug="open-cohort", clock=clock, assessor=RiskAssessor(store)
    )
    assert isinstance(result, exports.Submitted)
    async with session_factory() as db:
        version = await db.get(ExportVersion, (result.export.id, 1))
        assert version is not None
    section = version.report["risk_model"]
    assert "SHA-256" in section["model_unavailable"]
    assert section["in_force"] is None
    assert section["level"] == result.report.risk_level.value  # the rules alone routed it

    second = await train_and_register(
        session_factory, store, actor="ada", options=TrainingOptions(), audit=log.append, clock=clock
    )
    await store.put_stream(second.object_key, _chunks(b"{}"), governance=Governance.CASD, max_bytes=2)
    before = await snapshot(session_factory, store)
    async with session_factory() as db, db.begin():
        with pytest.raises(ModelIntegrityError):
            await registry.promote(
                db, store, second.id, actor="ada", reason="x", audit=log.append, now=clock(), min_decisions=0
            )
    assert await snapshot(session_factory, store) == before


async def test_a_file_the_rules_fail_never_reaches_a_model(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path, clock: Clock
) -> None:
    class Spy(RiskAssessor):
        async def assess(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a failed file reached the model")

    await projects(session_factory)
    path = tmp_path / "archive.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # a zip named .csv: the checks fail it
    result = await submit(
        session_factory, store, AuditLog(checkpoint_signer), path, slug="open-cohort", clock=clock, assessor=Spy(store)
    )
    assert isinstance(result, exports.Refused)
    assert await store.keys("projects/") == []


async def test_the_recall_bar_is_set_by_staff_audited_and_bounded(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, clock: Clock
) -> None:
    log = AuditLog(checkpoint_signer)
    before = await snapshot(session_factory, store)
    for bad in (0.2, 1.5, float("nan")):
        async with session_factory() as db, db.begin():
            with pytest.raises(PromotionRefused, match="between"):
                await registry.set_recall_bar(db, bad, actor="ada", reason="x", audit=log.append, now=clock())
    assert await snapshot(session_factory, store) == before
    async with session_factory() as db, db.begin():
        await registry.set_recall_bar(db, 0.95, actor="ada", reason="CASD's target", audit=log.append, now=clock())
    async with session_factory() as db:
        assert await registry.recall_bar(db) == 0.95
    event = await last_event(session_factory)
    assert (event.action, event.details["recall_bar"], event.details["previous"]) == ("risk.bar", 0.95, None)
    async with session_factory() as db, db.begin():
        await registry.set_recall_bar(db, None, actor="ada", reason="back to rules", audit=log.append, now=clock())
    async with session_factory() as db:
        assert await registry.recall_bar(db) is None


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data

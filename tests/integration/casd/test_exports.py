"""The exports module on both databases and the real S3 server, without the web layer.

What the service tests cannot reach easily: a failure after the object was written leaves no
object, and two reviewers approving at the same moment both count.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infracalc.audit import AuditEvent, AuditLog, CheckpointSigner
from infracalc.casd import exports
from infracalc.casd.objects import MINIMUM_PART_SIZE, ObjectStore
from infracalc.casd.sessions import open_session
from infracalc.db import Export, ExportReview, ExportState, Governance, Project
from infracalc.storage import make_s3_client
from tests.fixtures.servers import S3Server

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
BUBBLE = "0123456789abcdef"
JUSTIFICATION = "Aggregated counts by region for table 2 of the paper."


@pytest.fixture
async def store(s3: S3Server) -> AsyncIterator[ObjectStore]:
    objects = ObjectStore(make_s3_client(s3.settings), "test-" + secrets.token_hex(6), part_size=MINIMUM_PART_SIZE)
    await objects.ensure_bucket()
    yield objects
    for key in await objects.keys(""):
        await objects.delete(key)


async def project(sessions: Sessions, governance: Governance) -> None:
    async with sessions() as db, db.begin():
        db.add(Project(id="cohort", title="Cohort", governance=governance))
        await db.flush()
        await open_session(db, session_id=BUBBLE, project_id="cohort", username="rita", governance=governance)


def table(path: Path, small: bool) -> Path:
    rows = ["region,2020,2021"] + [
        f"region-{index},{index % 7 if small else 500 + index},{(index % 5) + 1 if small else 900 + index}"
        for index in range(12)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


async def stage(
    store: ObjectStore, checked: exports.Checked, governance: Governance, version: int = 1, export_id: str = ""
) -> exports.Staged:
    return await exports.stage(
        store,
        checked,
        project_id="cohort",
        export_id=export_id or exports.new_export_id(),
        version=version,
        governance=governance,
        settings=exports.ExportSettings(),
    )


async def record(
    db: AsyncSession, store: ObjectStore, checked: exports.Checked, staged: exports.Staged | None, audit: Any
) -> exports.Submitted | exports.Refused:
    """``exports.submit`` of a staged file by the test bubble, in ``db``'s transaction."""
    return await exports.submit(
        db,
        store,
        checked,
        staged=staged,
        project_id="cohort",
        session_id=BUBBLE,
        requested_by="rita",
        actor=f"bubble:{BUBBLE}",
        settings=exports.ExportSettings(),
        sampler=random.Random(1),
        audit=audit,
    )


async def submit(
    sessions: Sessions, store: ObjectStore, log: AuditLog, path: Path, governance: Governance = Governance.CASD
) -> exports.Submitted:
    settings = exports.ExportSettings()
    checked = await exports.check(path, name=path.name, justification=JUSTIFICATION, settings=settings)
    staged = await stage(store, checked, governance)
    async with sessions() as db, db.begin():
        result = await record(db, store, checked, staged, log.append)
    assert isinstance(result, exports.Submitted)
    return result


async def count(sessions: Sessions, model: type[Any]) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_failure_after_the_object_was_staged_leaves_no_object_and_no_row(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    await project(session_factory, Governance.CASD)
    settings = exports.ExportSettings()
    path = table(tmp_path / "t.csv", small=False)
    checked = await exports.check(path, name="t.csv", justification=JUSTIFICATION, settings=settings)

    class AuditDown(Exception):
        pass

    async def failing_audit(session: AsyncSession, **_: Any) -> None:
        raise AuditDown

    seen_before_the_transaction: list[str] = []

    async def submit_staged() -> None:
        async with exports.deleted_on_failure(store) as staged_keys:
            staged = await stage(store, checked, Governance.CASD)
            staged_keys.append(staged.key)
            seen_before_the_transaction.extend(await store.keys(""))
            async with session_factory() as db, db.begin():
                await record(db, store, checked, staged, failing_audit)

    with pytest.raises(AuditDown):
        await submit_staged()
    assert len(seen_before_the_transaction) == 1  # stored before any transaction opened
    assert await store.keys("") == []
    assert await store.pending_uploads() == []
    assert await count(session_factory, Export) == 0


async def test_a_switch_between_staging_and_recording_retags_the_object(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    # Staged under INFRACALC as last read; the project is CASD by the time the transaction runs.
    await project(session_factory, Governance.CASD)
    submitted = await submit(
        session_factory,
        store,
        AuditLog(checkpoint_signer),
        table(tmp_path / "t.csv", small=False),
        Governance.INFRACALC,
    )
    assert submitted.export.governance == Governance.CASD
    assert await store.governance_of(submitted.object_key) == Governance.CASD


async def test_a_staged_version_overtaken_by_another_is_refused(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    await project(session_factory, Governance.CASD)
    settings = exports.ExportSettings()
    checked = await exports.check(
        table(tmp_path / "t.csv", small=False), name="t.csv", justification=JUSTIFICATION, settings=settings
    )
    # Version 3 of an export at version 1 (another resubmission was expected in between): refused, nothing written.
    staged = await stage(store, checked, Governance.CASD, version=3)
    async with session_factory() as db, db.begin():
        with pytest.raises(exports.InvalidTransition, match="submit the new version again"):
            await record(db, store, checked, staged, AuditLog(checkpoint_signer).append)
    assert await count(session_factory, Export) == 0


async def test_two_reviewers_approving_at_once_both_count(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    await project(session_factory, Governance.CASD)
    log = AuditLog(checkpoint_signer)
    submitted = await submit(session_factory, store, log, table(tmp_path / "t.csv", small=True))
    export_id = submitted.export.id
    assert submitted.export.required_reviews == 2, submitted.report.to_json()

    async def approve(reviewer: str) -> None:
        async with session_factory() as db, db.begin():
            await exports.review(
                db, export_id=export_id, reviewer=reviewer, verdict="approve", comment="fine", audit=log.append
            )

    await asyncio.gather(approve("sam"), approve("sue"))
    async with session_factory() as db:
        export = await db.get(Export, export_id)
        assert export is not None
        assert export.state == ExportState.RELEASED
    assert await count(session_factory, ExportReview) == 2
    async with session_factory() as db:
        actions = (await db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq))).all()
    assert list(actions) == ["export.submit", "export.review", "export.review", "export.release"]


async def test_the_requester_and_a_second_vote_are_refused_in_the_module_too(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    await project(session_factory, Governance.CASD)
    log = AuditLog(checkpoint_signer)
    submitted = await submit(session_factory, store, log, table(tmp_path / "t.csv", small=False))

    async def vote(reviewer: str, verdict: str) -> Mapping[str, Any]:
        async with session_factory() as db, db.begin():
            export = await exports.review(
                db, export_id=submitted.export.id, reviewer=reviewer, verdict=verdict, comment="c", audit=log.append
            )
            return {"state": export.state}

    with pytest.raises(exports.SelfReview):
        await vote("rita", "approve")
    assert (await vote("sam", "changes"))["state"] == ExportState.CHANGES_REQUESTED
    with pytest.raises(exports.InvalidTransition):
        await vote("sue", "approve")
    assert await count(session_factory, ExportReview) == 1


async def test_many_exports_read_at_once_are_what_each_reads_alone(
    session_factory: Sessions, store: ObjectStore, checkpoint_signer: CheckpointSigner, tmp_path: Path
) -> None:
    await project(session_factory, Governance.CASD)
    log = AuditLog(checkpoint_signer)
    ids = [
        (await submit(session_factory, store, log, table(tmp_path / f"t{index}.csv", small=index % 2 == 0))).export.id
        for index in range(3)
    ]
    async with session_factory() as db, db.begin():  # votes on two of them, so reviews differ between exports
        await exports.review(db, export_id=ids[0], reviewer="sam", verdict="approve", comment="ok", audit=log.append)
        await exports.review(db, export_id=ids[2], reviewer="sue", verdict="changes", comment="no", audit=log.append)
    wanted = [ids[2], "no-such-export", ids[0], ids[1]]
    async with session_factory() as db:
        together = await exports.get_many(db, wanted)
        alone = [await exports.get(db, export_id) for export_id in (ids[2], ids[0], ids[1])]

    def shown(found: tuple[Export, list[Any], list[Any]]) -> tuple[Any, ...]:
        export, versions, reviews = found
        return (
            export.id,
            [(version.version, version.sha256) for version in versions],
            [(vote.reviewer, vote.verdict) for vote in reviews],
        )

    assert [shown(found) for found in together] == [shown(found) for found in alone]
    assert [len(reviews) for _, _, reviews in together] == [1, 1, 0]
    async with session_factory() as db:
        assert await exports.get_many(db, []) == []

"""The recovery sweep removes what crashes left (uploads, objects, rows) and says so in the audit log; real S3 server.

A crash is laid out as it would be found (a row of an import in progress whose heartbeat stopped, its multipart
upload or its completed object in the bucket) and the sweep is run with a clock past the grace period. The
faults themselves (the service or the S3 server killed mid-import) are in ``tests/integration/faults/``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from infracalc.casd import imports
from infracalc.db import Governance, ImportUpload, create_engine, session_factory, utc_now
from infracalc.service.context import ServiceContext
from infracalc.service.imports import recovery
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def sweep(service: ServiceUnderTest, now: datetime | None = None) -> recovery.SweepReport:
    """One sweep with the service's collaborators, its database reached from this test's event loop."""
    context: ServiceContext = service.app.state.context
    engine = create_engine(service.settings.database)
    try:
        here = dataclasses.replace(
            context, sessions=session_factory(engine), read_sessions=session_factory(engine, read_only=True)
        )
        return await recovery.sweep(here, now=now)
    finally:
        await engine.dispose()


async def crashed_import(
    service: ServiceUnderTest, slug: str, import_id: str, *, heartbeat: datetime, completed: bool, refused: bool = False
) -> None:
    """What the service leaves when it dies mid-import: the row, and a multipart upload (or, later, the object)."""
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session, session.begin():
            session.add(
                ImportUpload(
                    id=import_id,
                    project_id=slug,
                    name="cohort.csv",
                    governance=Governance.CASD,
                    started_by="person:someone",
                    started_at=heartbeat,
                    heartbeat_at=heartbeat,
                    refused=refused,
                )
            )
    finally:
        await engine.dispose()
    key = imports.object_key(slug, import_id, "cohort.csv")
    store = service.objects
    if completed:
        store.client.put_object(Bucket=store.bucket, Key=key, Body=b"id;age\n1;2\n")
    else:
        created = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
        store.client.upload_part(
            Bucket=store.bucket, Key=key, UploadId=created["UploadId"], PartNumber=1, Body=b"x" * 1024
        )


async def make_project(service: ServiceUnderTest, staff: dict[str, str]) -> None:
    created = await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "C"}, headers=staff)
    assert created.status_code == 201, created.text


async def rows(service: ServiceUnderTest) -> list[str]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            return sorted((await session.scalars(select(ImportUpload.id))).all())
    finally:
        await engine.dispose()


async def refusals(service: ServiceUnderTest, people: People) -> list[dict[str, Any]]:
    answer = await service.client.get(
        "/api/v1/audit", params={"action": "import.refuse"}, headers=people.headers("staff")
    )
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def test_the_sweep_removes_crashed_imports_and_records_each_once(
    service: ServiceUnderTest, people: People
) -> None:
    staff = people.headers("staff")
    assert (
        await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "C"}, headers=staff)
    ).is_success
    grace = timedelta(seconds=service.settings.upload_grace_seconds)
    long_ago = utc_now() - 2 * grace
    await crashed_import(service, "cohort", "a" * 16, heartbeat=long_ago, completed=False)
    await crashed_import(service, "cohort", "b" * 16, heartbeat=long_ago, completed=True)  # died before its row
    await crashed_import(service, "cohort", "c" * 16, heartbeat=long_ago, completed=False, refused=True)
    await crashed_import(service, "cohort", "d" * 16, heartbeat=utc_now(), completed=False)  # still streaming

    report = await sweep(service)

    assert report == recovery.SweepReport(interrupted=2, cleaned=1, aborted=0)
    assert await rows(service) == ["d" * 16]
    left = imports.import_prefix("cohort", "d" * 16)
    assert await service.objects.pending_uploads("projects/") == [left + "cohort.csv"]
    assert await service.objects.keys("projects/") == []
    events = await refusals(service, people)
    assert sorted(event["details"]["import"] for event in events) == ["a" * 16, "b" * 16]
    for event in events:
        assert event["actor"] == "system:recovery"
        assert event["project_id"] == "cohort"
        assert event["details"]["reason"] == "interrupted"
        assert event["details"]["uploaded_by"] == "person:someone"
    # Again: nothing more to do, nothing recorded twice.
    assert await sweep(service) == recovery.SweepReport()
    assert len(await refusals(service, people)) == 2


async def test_old_uploads_of_no_import_in_progress_are_aborted_recent_ones_kept(service: ServiceUnderTest) -> None:
    store = service.objects
    for key in ("projects/p/exports/e1/v1/table.csv", "projects/p/imports/i1/a.csv", "elsewhere/not-ours.bin"):
        store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    later = utc_now() + timedelta(seconds=2 * service.settings.upload_grace_seconds)

    assert (await sweep(service)).aborted == 0  # begun just now: maybe in progress
    report = await sweep(service, now=later)

    assert report.aborted == 2
    assert await store.pending_uploads("") == ["elsewhere/not-ours.bin"]  # outside the service's prefix


async def test_a_refused_import_leaves_no_row_of_its_progress(service: ServiceUnderTest, people: People) -> None:
    staff = people.headers("staff")
    assert (
        await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "C"}, headers=staff)
    ).is_success
    answer = await service.client.post(
        "/api/v1/projects/cohort/imports",
        params={"name": "empty.csv"},
        content=b"",
        headers={**staff, "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 422
    assert await rows(service) == []
    created = await service.client.post(
        "/api/v1/projects/cohort/imports",
        params={"name": "cohort.csv"},
        content=b"id;age\n1;2\n",
        headers={**staff, "Content-Type": "application/octet-stream"},
    )
    assert created.status_code == 201, created.text
    assert await rows(service) == []

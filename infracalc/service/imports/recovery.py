"""Nothing half-written survives a crash: imports in progress are on record, and a sweep removes what a crash left.

An upload aborts its multipart upload on any error it sees (:meth:`~infracalc.casd.objects.ObjectStore.put_stream`).
Two faults escape that: the object store is down when the abort is sent (the abort is lost), and the service
itself dies mid-upload (nothing runs at all). Lifecycle rules that abort old incomplete uploads are the store's
own backstop, but not every S3 server has them (versitygw answers ``NotImplemented``). So:

- before its first byte is read, an import is written to ``import_uploads`` (:func:`begin`), and the request
  refreshes its ``heartbeat_at`` every quarter of ``INFRACALC_UPLOAD_GRACE_SECONDS`` while it runs
  (:func:`keep_alive`); the row goes in the same transaction as the import's own row, or as its
  refusal's audit event once the store is known clean; when the store could not be cleaned then, the row
  stays, marked ``refused``;
- :func:`sweep`, at start and every half of the grace period (:func:`sweep_periodically`), clears the prefix
  (``projects/<project>/imports/<id>/``: its incomplete uploads and any object) of every row whose heartbeat
  stopped more than the grace period ago, or that is marked ``refused``; then removes the row, with one
  ``import.refuse`` event (reason ``interrupted``, actor ``system:recovery``) for an import whose refusal
  was never recorded. It also aborts every incomplete upload under ``projects/`` begun more than the grace
  period ago that belongs to no import in progress (an export's, whose request died). While the store is
  down nothing is removed from the database, so the sweep after it returns finishes the work.

Several replicas may sweep at once: the row is deleted conditionally, and only the replica whose delete took
it writes the event; clearing a prefix twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from infracalc.casd import imports
from infracalc.casd.objects import ObjectStoreError
from infracalc.db import Governance, Import, ImportUpload, utc_now
from infracalc.service.context import ServiceContext
from infracalc.service.principals import Principal

logger = logging.getLogger(__name__)

#: Who records the refusal of an import whose request never finished.
RECOVERY_ACTOR = "system:recovery"
#: The refusal's message.
INTERRUPTED = "the upload never finished (the service stopped during it); nothing of it was kept"
#: The longest file name kept (a name is checked only once the upload begins, so it may be of any length).
_NAME_CHARACTERS = 300
#: Where every object of the service lives.
_PROJECTS_PREFIX = "projects/"


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did."""

    #: Imports whose request never finished, now refused (one ``import.refuse`` event each).
    interrupted: int = 0
    #: Refused imports whose store is now clean.
    cleaned: int = 0
    #: Incomplete uploads of no import in progress, aborted.
    aborted: int = 0


async def begin(
    context: ServiceContext, principal: Principal, slug: str, *, governance: Governance, name: str, import_id: str
) -> None:
    """Put the import on record as in progress, before its first byte is read."""
    async with context.sessions() as session, session.begin():
        now = utc_now()
        session.add(
            ImportUpload(
                id=import_id,
                project_id=slug,
                name=name[:_NAME_CHARACTERS],
                governance=governance,
                started_by=principal.actor,
                started_at=now,
                heartbeat_at=now,
                refused=False,
            )
        )


async def keep_alive(context: ServiceContext, import_id: str) -> None:
    """Refresh the import's heartbeat every quarter of the grace period, until cancelled."""
    every = context.settings.upload_grace_seconds / 4
    while True:
        await asyncio.sleep(every)
        try:
            async with context.sessions() as session, session.begin():
                await session.execute(
                    update(ImportUpload).where(ImportUpload.id == import_id).values(heartbeat_at=utc_now())
                )
        except SQLAlchemyError as error:
            # A missed beat or two is harmless: the grace period is four of them.
            logger.warning("import %s: heartbeat not written (%s)", import_id, error)


async def cleaned_after_refusal(context: ServiceContext, slug: str, import_id: str) -> bool:
    """Clear what a refused upload may have left (its abort may have been lost); whether the store is now clean."""
    if context.objects is None:
        return True
    try:
        await context.objects.clear(imports.import_prefix(slug, import_id))
    except ObjectStoreError as error:
        logger.warning("import %s: the object store could not be cleaned now, the sweep will (%s)", import_id, error)
        return False
    return True


async def sweep(context: ServiceContext, *, now: datetime | None = None) -> SweepReport:
    """Remove what crashed or unfinished imports left; see the module's notes.

    Raises:
        ObjectStoreError: the store failed; what was done stays done, the rest waits for the next sweep.
    """
    objects = context.objects
    if objects is None:
        return SweepReport()
    now = now or utc_now()
    stale_before = now - timedelta(seconds=context.settings.upload_grace_seconds)
    abandoned = or_(ImportUpload.refused.is_(True), ImportUpload.heartbeat_at < stale_before)
    async with context.read_sessions() as session:
        rows = (await session.scalars(select(ImportUpload).where(abandoned).order_by(ImportUpload.started_at))).all()
        completed = set((await session.scalars(select(Import.id).where(Import.id.in_([row.id for row in rows])))).all())
    interrupted = cleaned = 0
    for row in rows:
        if row.id not in completed:  # a committed import keeps its object
            await objects.clear(imports.import_prefix(row.project_id, row.id))
        async with context.sessions() as session, session.begin():
            taken = await session.execute(delete(ImportUpload).where(ImportUpload.id == row.id, abandoned))
            if getattr(taken, "rowcount", 0) != 1:  # another replica took it, or the request came back to life
                continue
            if row.refused or row.id in completed:
                cleaned += 1
                continue
            interrupted += 1
            await context.record(
                session,
                actor=RECOVERY_ACTOR,
                action="import.refuse",
                project_id=row.project_id,
                governance=row.governance,
                details={
                    "import": row.id,
                    "name": row.name,
                    "reason": "interrupted",
                    "message": INTERRUPTED,
                    "uploaded_by": row.started_by,
                    "started_at": row.started_at.isoformat(),
                },
            )
    return SweepReport(interrupted=interrupted, cleaned=cleaned, aborted=await _abort_orphans(context, stale_before))


async def _abort_orphans(context: ServiceContext, stale_before: datetime) -> int:
    """Abort incomplete uploads begun before ``stale_before`` that belong to no import in progress."""
    assert context.objects is not None  # noqa: S101 - checked by the caller
    uploads = [u for u in await context.objects.incomplete_uploads(_PROJECTS_PREFIX) if u.initiated < stale_before]
    if not uploads:
        return 0
    async with context.read_sessions() as session:
        live = {
            imports.import_prefix(project, import_id)
            for project, import_id in (await session.execute(select(ImportUpload.project_id, ImportUpload.id))).all()
        }
    aborted = 0
    for upload in uploads:
        if any(upload.key.startswith(prefix) for prefix in live):
            continue
        await context.objects.abort_upload(upload)
        aborted += 1
    return aborted


async def sweep_periodically(context: ServiceContext) -> None:
    """Sweep now, then every half of the grace period, until cancelled; failures wait for the next turn."""
    while True:
        try:
            report = await sweep(context)
        except (ObjectStoreError, SQLAlchemyError) as error:
            logger.warning("recovery sweep not finished (%s); it runs again", error)
        else:
            if report != SweepReport():
                logger.info(
                    "recovery sweep: %d interrupted import(s) refused, %d refused import(s) cleaned, "
                    "%d orphaned upload(s) aborted",
                    report.interrupted,
                    report.cleaned,
                    report.aborted,
                )
        await asyncio.sleep(context.settings.upload_grace_seconds / 2)


@contextlib.asynccontextmanager
async def in_progress(
    context: ServiceContext, principal: Principal, slug: str, *, governance: Governance, name: str, import_id: str
) -> AsyncIterator[None]:
    """The import on record as in progress, its heartbeat beating, for the duration of the block."""
    await begin(context, principal, slug, governance=governance, name=name, import_id=import_id)
    heart = asyncio.create_task(keep_alive(context, import_id), name=f"import-{import_id}-heartbeat")
    try:
        yield
    finally:
        heart.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heart


__all__ = [
    "INTERRUPTED",
    "RECOVERY_ACTOR",
    "SweepReport",
    "begin",
    "cleaned_after_refusal",
    "in_progress",
    "keep_alive",
    "sweep",
    "sweep_periodically",
]

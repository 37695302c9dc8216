"""Exports through the API: each route asks OPA, then calls :mod:`infracalc.casd.exports` in one transaction.

The CASD module does the work (checks, storage, routing, reviews, the audit and session events);
this layer authorizes, spools, checks and stores the upload before any transaction opens (so that
no write lock is held while a large file arrives, is checked or travels to the object store), turns
the module's errors into API errors, and deletes a stored object whose transaction did not commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd import exports
from infracalc.casd.checks import Outcome
from infracalc.casd.objects import ObjectStore, ObjectStoreError
from infracalc.casd.risk_model import render
from infracalc.db import Export, ExportReview, ExportState, ExportVersion, Project
from infracalc.service.context import ServiceContext
from infracalc.service.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from infracalc.service.exports.schemas import (
    DownloadOut,
    ExportDetail,
    ExportOut,
    ReviewIn,
    ReviewOut,
    VersionOut,
)
from infracalc.service.exports.upload import Upload, spooled
from infracalc.service.principals import BubblePrincipal, Principal


class StorageUnavailable(ServiceError):
    """The service has no object store, or the store failed."""

    status = 503
    code = "unavailable"


class ChecksFailed(ServiceError):
    """The output checks failed the file: nothing was stored."""

    status = 422
    code = "invalid_request"


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    """Turn the CASD module's errors into the API's."""
    try:
        yield
    except exports.InvalidExport as error:
        raise InvalidInput(str(error), field=error.field) from None
    except exports.UnknownExport as error:
        raise NotFound(str(error)) from None
    except exports.SelfReview as error:
        raise Forbidden(str(error)) from None
    except (exports.InvalidTransition, exports.DuplicateVote, exports.NotReleased) as error:
        raise Conflict(str(error)) from None
    except ObjectStoreError as error:
        raise StorageUnavailable(f"the object store failed: {error}") from None


def _store(context: ServiceContext) -> ObjectStore:
    if context.objects is None:
        raise StorageUnavailable("object storage is not configured (INFRACALC_S3_ENDPOINT_URL)")
    return context.objects


def reasons(report: dict[str, Any]) -> list[str]:
    """The findings of a stored report, one line each: ``check (outcome): reason``; then the risk model's, if any."""
    findings = report.get("findings")
    if not isinstance(findings, list):
        return []
    lines = [
        f"{finding.get('check')} ({finding.get('outcome')}): {finding.get('reason')}"
        for finding in findings
        if isinstance(finding, dict)
    ]
    return lines + _model_reasons(report.get("risk_model"))


def _model_reasons(section: Any) -> list[str]:
    """``risk_model (<level>): <what raised it>`` when a model in force routed the version (English, like the rest)."""
    in_force = section.get("in_force") if isinstance(section, dict) else None
    if not isinstance(in_force, dict) or not isinstance(in_force.get("explanation"), list):
        return []
    raised = [render(reason, "en") for reason in in_force["explanation"] if isinstance(reason, dict)]
    if not raised:
        return []
    return [f"risk_model ({section.get('level')}, rules {section.get('rules_level')}): " + "; ".join(raised)]


def _out(export: Export, report: dict[str, Any]) -> ExportOut:
    return ExportOut(**_fields(export, report))


def _fields(export: Export, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": export.id,
        "project": export.project_id,
        "session": export.session_id,
        "requested_by": export.requested_by,
        "name": export.name,
        "governance": export.governance,
        "state": export.state,
        "risk_level": export.risk_level,
        "risk_score": export.risk_score,
        "required_reviews": export.required_reviews,
        "sampled": export.sampled,
        "current_version": export.current_version,
        "created_at": export.created_at,
        "updated_at": export.updated_at,
        "reasons": reasons(report),
    }


def _detail(export: Export, versions: Sequence[ExportVersion], reviews: Sequence[ExportReview]) -> ExportDetail:
    current = next((v.report for v in versions if v.version == export.current_version), {})
    return ExportDetail(
        **_fields(export, current),
        versions=[
            VersionOut(
                version=v.version,
                size=v.size,
                sha256=v.sha256,
                justification=v.justification,
                submitted_at=v.submitted_at,
                report=v.report,
            )
            for v in versions
        ],
        reviews=[
            ReviewOut(version=r.version, reviewer=r.reviewer, verdict=r.verdict, comment=r.comment, at=r.at)
            for r in reviews
        ],
    )


def _upload(
    context: ServiceContext, body: AsyncIterable[bytes], content_type: str | None, content_length: str | None
) -> contextlib.AbstractAsyncContextManager[Upload]:
    return spooled(
        body,
        content_type=content_type,
        content_length=content_length,
        max_file_bytes=context.settings.exports.max_bytes,
    )


async def submit(
    context: ServiceContext,
    principal: Principal,
    slug: str,
    body: AsyncIterable[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
) -> ExportDetail:
    """Submit a file from a bubble of the project: spooled, checked, stored and routed.

    Raises:
        Forbidden: the caller is not a bubble of the project.
        ChecksFailed: the output checks failed the file (one ``export.refuse`` audit event, nothing stored).
        TooLarge, UnsupportedMediaType, BadUpload, InvalidInput: the upload (nothing written).
    """
    await context.authorize(principal, "export.submit", project=slug)
    bubble = _bubble(principal)
    store = _store(context)

    async def record(session: AsyncSession, checked: exports.Checked, staged: exports.Staged | None) -> _Recorded:
        return await exports.submit(
            session,
            store,
            checked,
            staged=staged,
            project_id=slug,
            session_id=bubble.bubble_id,
            requested_by=bubble.username,
            actor=bubble.actor,
            settings=context.settings.exports,
            sampler=context.export_sampler,
            audit=context.record,
            assessor=context.risk_assessor,
        )

    async def answer(_: AsyncSession, result: exports.Submitted) -> ExportDetail:
        return _detail(result.export, [result.version], [])

    return await _new_version(
        context,
        store,
        _upload(context, body, content_type, content_length),
        name=None,
        slug=slug,
        export_id=exports.new_export_id(),
        version=1,
        record=record,
        answer=answer,
    )


async def resubmit(
    context: ServiceContext,
    principal: Principal,
    export_id: str,
    body: AsyncIterable[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
) -> ExportDetail:
    """A new version of an export after changes were requested, from a bubble of its project; the votes restart."""
    export = await _read_export(context, export_id)
    await context.authorize(principal, "export.submit", project=export.project_id)
    bubble = _bubble(principal)
    store = _store(context)

    async def record(session: AsyncSession, checked: exports.Checked, staged: exports.Staged | None) -> _Recorded:
        return await exports.resubmit(
            session,
            store,
            checked,
            staged=staged,
            export_id=export_id,
            project_id=export.project_id,
            session_id=bubble.bubble_id,
            actor=bubble.actor,
            settings=context.settings.exports,
            sampler=context.export_sampler,
            audit=context.record,
            assessor=context.risk_assessor,
        )

    async def answer(session: AsyncSession, result: exports.Submitted) -> ExportDetail:
        _, versions, reviews = await exports.get(session, export_id)
        return _detail(result.export, versions, reviews)

    return await _new_version(
        context,
        store,
        _upload(context, body, content_type, content_length),
        name=export.name,
        slug=export.project_id,
        export_id=export.id,
        # The version after the one read above; the transaction refuses it if another arrived meanwhile.
        version=export.current_version + 1,
        record=record,
        answer=answer,
    )


_Recorded = exports.Submitted | exports.Refused


async def _new_version(
    context: ServiceContext,
    store: ObjectStore,
    upload_of: contextlib.AbstractAsyncContextManager[Upload],
    *,
    name: str | None,
    slug: str,
    export_id: str,
    version: int,
    record: Callable[[AsyncSession, exports.Checked, exports.Staged | None], Awaitable[_Recorded]],
    answer: Callable[[AsyncSession, exports.Submitted], Awaitable[ExportDetail]],
) -> ExportDetail:
    """Spool and check the upload, stage the file, then ``record`` it in one transaction.

    The object is deleted if anything after staging fails (the commit included); a file the checks
    failed is recorded as refused (its audit event) and answered with :class:`ChecksFailed`.
    """
    async with upload_of as upload:
        with _api_errors():
            checked = await exports.check(
                upload.path,
                name=name or upload.name,
                justification=upload.justification,
                contributors=upload.contributors,
                settings=context.settings.exports,
            )
        async with exports.deleted_on_failure(store) as stored_keys:
            staged = await _stage(context, store, checked, slug, export_id, version=version)
            if staged is not None:
                stored_keys.append(staged.key)
            async with context.sessions() as session, session.begin():
                with _api_errors():
                    result = await record(session, checked, staged)
                if isinstance(result, exports.Submitted):
                    detail = await answer(session, result)
    if isinstance(result, exports.Refused):
        raise ChecksFailed("the output checks refused the file: " + "; ".join(result.reasons), field="file")
    return detail


async def _stage(
    context: ServiceContext,
    store: ObjectStore,
    checked: exports.Checked,
    slug: str,
    export_id: str,
    *,
    version: int,
) -> exports.Staged | None:
    """Store a file that passed the checks, before any transaction; ``None`` for one they failed."""
    if checked.report.outcome == Outcome.FAIL:
        return None
    async with context.read_sessions() as session:
        project = await session.get(Project, slug)
    if project is None:
        raise NotFound(f"no project {slug!r}")
    with _api_errors():
        return await exports.stage(
            store,
            checked,
            project_id=slug,
            export_id=export_id,
            version=version,
            governance=project.governance,
            settings=context.settings.exports,
        )


async def list_project(context: ServiceContext, principal: Principal, slug: str) -> list[ExportOut]:
    """The project's exports, newest first (members and staff)."""
    await context.authorize(principal, "export.list", project=slug)
    async with context.read_sessions() as session:
        found = await exports.find(session, project_id=slug)
        return await _outs(session, found)


async def queue(
    context: ServiceContext, principal: Principal, state: ExportState | None, sampled: bool | None
) -> list[ExportOut]:
    """Exports for CASD staff: by default those awaiting a review (in review, or sampled after release)."""
    await context.authorize(principal, "export.queue")
    async with context.read_sessions() as session:
        if state is None and sampled is None:
            found = await exports.awaiting_review(session)
        else:
            found = await exports.find(session, state=state, sampled=sampled)
        return await _outs(session, found)


async def read(context: ServiceContext, principal: Principal, export_id: str) -> ExportDetail:
    """One export with its versions and votes (members of its project, staff, and its project's bubbles)."""
    export = await _read_export(context, export_id)
    await context.authorize(principal, "export.read", project=export.project_id)
    async with context.read_sessions() as session:
        with _api_errors():
            export, versions, reviews = await exports.get(session, export_id)
    return _detail(export, versions, reviews)


async def read_many(context: ServiceContext, principal: Principal, listed: Sequence[ExportOut]) -> list[ExportDetail]:
    """:func:`read` for each export listed (by :func:`queue` or :func:`list_project`), in one database read.

    OPA decides ``export.read`` once per project; an export gone since it was listed is left out.
    """
    for project_id in dict.fromkeys(export.project for export in listed):
        await context.authorize(principal, "export.read", project=project_id)
    async with context.read_sessions() as session:
        found = await exports.get_many(session, [export.id for export in listed])
    return [_detail(export, versions, reviews) for export, versions, reviews in found]


async def review(context: ServiceContext, principal: Principal, export_id: str, vote: ReviewIn) -> ExportDetail:
    """A CASD staff member's vote on the export's current version."""
    export = await _read_export(context, export_id)
    await context.authorize(principal, "export.review", project=export.project_id, requested_by=export.requested_by)
    async with context.sessions() as session, session.begin():
        with _api_errors():
            await exports.review(
                session,
                export_id=export_id,
                reviewer=principal.username,
                verdict=vote.verdict,
                comment=vote.comment,
                audit=context.record,
            )
            export, versions, reviews = await exports.get(session, export_id)
        answer = _detail(export, versions, reviews)
    return answer


async def download(context: ServiceContext, principal: Principal, export_id: str) -> DownloadOut:
    """A presigned URL of the released export, valid 15 minutes (members of its project)."""
    export = await _read_export(context, export_id)
    await context.authorize(principal, "export.download", project=export.project_id)
    store = _store(context)
    async with context.sessions() as session, session.begin():
        with _api_errors():
            link = await exports.download(
                session, store, export_id=export_id, username=principal.username, audit=context.record
            )
    return DownloadOut(url=link.url, expires_at=link.expires_at)


async def inspect(
    context: ServiceContext, principal: Principal, export_id: str, version: int | None = None
) -> DownloadOut:
    """A presigned URL of a version in any state, for CASD staff reviewing it (valid 15 minutes)."""
    export = await _read_export(context, export_id)
    await context.authorize(principal, "export.inspect", project=export.project_id)
    store = _store(context)
    async with context.sessions() as session, session.begin():
        with _api_errors():
            link = await exports.inspect(
                session, store, export_id=export_id, version=version, username=principal.username, audit=context.record
            )
    return DownloadOut(url=link.url, expires_at=link.expires_at)


async def _read_export(context: ServiceContext, export_id: str) -> Export:
    async with context.read_sessions() as session:
        export = await session.get(Export, export_id)
    if export is None:
        raise NotFound(f"no export {export_id!r}")
    return export


async def _outs(session: AsyncSession, found: Sequence[Export]) -> list[ExportOut]:
    """Exports with their current version's reasons, in one more query."""
    if not found:
        return []
    rows = await session.execute(
        select(ExportVersion.export_id, ExportVersion.version, ExportVersion.report).where(
            ExportVersion.export_id.in_([export.id for export in found])
        )
    )
    reports = {(export_id, version): report for export_id, version, report in rows.all()}
    return [_out(export, reports.get((export.id, export.current_version), {})) for export in found]


def _bubble(principal: Principal) -> BubblePrincipal:
    if not isinstance(principal, BubblePrincipal):  # the policy lets bubbles alone submit
        raise Forbidden("exports are submitted from a bubble of the project")
    return principal

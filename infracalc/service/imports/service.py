"""Imports through the API: upload into quarantine, review by CASD staff, reads once released.

Each function asks OPA first (``infracalc.authz``). An upload then streams the body into the object
store through :func:`infracalc.casd.imports.receive`, with no database transaction open meanwhile;
only once the object is complete does one transaction add the row and its audit events (and tell
the project's open sessions about an immediate release). If that transaction fails, the object is
deleted again.

A refused upload (a bad name, a declared type that is not ``application/octet-stream``, too large,
empty, an archive, an office document with macros, of another type than its name says or unsafe, a
body cut short, an S3 failure) leaves no object and no row: the upload was
aborted before the error reached this module, which then writes exactly one audit event,
``import.refuse`` with the reason, in a small transaction of its own (the upload's work was never
in a transaction, so there is nothing to roll back first).

Reviews are conditional updates (``... WHERE state = 'in_review'``): of two members of staff deciding
the same import at once, the second gets 409. An approval pushes the project to OPA, since a
``sensitive`` release changes what the governance policy allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, NoReturn

from sqlalchemy import delete, select, update

from infracalc.casd import imports
from infracalc.casd.objects import ObjectStore, ObjectStoreError
from infracalc.casd.sessions import one_line
from infracalc.db import Governance, Import, ImportState, ImportUpload, utc_now
from infracalc.service.context import ServiceContext, existing_project
from infracalc.service.errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    NotFound,
    ServiceError,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from infracalc.service.imports import recovery
from infracalc.service.imports.schemas import ImportApproval, ImportOut, ImportRejection
from infracalc.service.principals import BubblePrincipal, Principal

#: The only declared type an upload may have: the file's bytes, as they are.
UPLOAD_MEDIA_TYPE = "application/octet-stream"
#: The longest file name an audit event keeps of a refused upload (a refused name may be of any length).
_AUDIT_NAME_CHARACTERS = 300

#: How each refusal of :mod:`infracalc.casd.imports` answers.
_REFUSALS: dict[str, type[ServiceError]] = {
    "file_name": InvalidInput,
    "too_large": TooLarge,
    "empty": InvalidInput,
    "archive": UnsupportedMediaType,
    "macros": UnsupportedMediaType,
    "type_mismatch": UnsupportedMediaType,
    "office_document": InvalidInput,
    "interrupted": BadRequest,
    "storage": Unavailable,
    "media_type": UnsupportedMediaType,
}


def _out(row: Import) -> ImportOut:
    return ImportOut(
        id=row.id,
        project=row.project_id,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        part_sha256=list(row.part_sha256),
        detected_type=row.detected_type,
        content_type=row.content_type,
        governance=row.governance,
        state=row.state,
        sensitivity=row.sensitivity,
        routing=row.routing,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        review_comment=row.review_comment,
    )


def _summary(row: Import) -> dict[str, Any]:
    """What the audit log keeps of an import."""
    return {
        "import": row.id,
        "name": row.name,
        "size": row.size,
        "sha256": row.sha256,
        "detected_type": row.detected_type,
        "state": row.state.value,
        "sensitivity": None if row.sensitivity is None else row.sensitivity.value,
        "object_key": row.object_key,
    }


def object_store(context: ServiceContext) -> ObjectStore:
    """The service's object store.

    Raises:
        Unavailable: S3 is not configured.
    """
    if context.objects is None:
        raise Unavailable("object storage is not configured")
    return context.objects


async def upload(
    context: ServiceContext,
    principal: Principal,
    slug: str,
    *,
    name: str,
    media_type: str,
    content_length: int | None,
    chunks: AsyncIterable[bytes],
) -> ImportOut:
    """Stream a file into the project's quarantine, then release it or queue it for review.

    Raises:
        NotFound, Forbidden: the project does not exist, or the caller may not import into it.
        ServiceError: the file was refused (its message says why); one ``import.refuse`` event was recorded.
    """
    await context.authorize(principal, "import.create", project=slug)
    objects = object_store(context)
    async with context.read_sessions() as session:
        governance = (await existing_project(session, slug)).governance
    cap = context.settings.import_max_bytes
    try:
        _check_declared(media_type, content_length, cap)
    except imports.ImportRefused as refusal:
        await _refuse(context, principal, slug=slug, governance=governance, name=name, refusal=refusal)
    import_id = imports.new_import_id()
    async with recovery.in_progress(context, principal, slug, governance=governance, name=name, import_id=import_id):
        try:
            received = await imports.receive(
                objects,
                chunks,
                project_id=slug,
                name=name,
                governance=governance,
                max_bytes=cap,
                import_id=import_id,
                office_max_bytes=context.settings.exports.checks.max_uncompressed_bytes,
            )
        except imports.ImportRefused as refusal:
            # Shielded, like the upload's own abort: a client gone must not leave the record half-done.
            clean = await asyncio.shield(recovery.cleaned_after_refusal(context, slug, import_id))
            await _refuse(
                context,
                principal,
                slug=slug,
                governance=governance,
                name=name,
                refusal=refusal,
                import_id=import_id,
                clean=clean,
            )
        try:
            return await _record_upload(context, principal, slug, objects, received)
        except BaseException:
            # The row did not commit: the object must not outlive it (if this fails too, the sweep removes it).
            with contextlib.suppress(ObjectStoreError):
                await asyncio.shield(objects.delete(received.stored.key))
            raise


def _check_declared(media_type: str, content_length: int | None, cap: int) -> None:
    """Refuse what the request's headers already show is wrong, before a byte of the body is read."""
    if media_type != UPLOAD_MEDIA_TYPE:
        raise imports.ImportRefused(
            "media_type",
            f"send the file's bytes as {UPLOAD_MEDIA_TYPE}, not {media_type or 'no type'} "
            "(no form, no JSON: the body is the file)",
        )
    if content_length is not None and content_length > cap:
        raise imports.ImportRefused("too_large", f"the file is larger than the limit of {cap} bytes")


async def _record_upload(
    context: ServiceContext, principal: Principal, slug: str, objects: ObjectStore, received: imports.Received
) -> ImportOut:
    async with context.sessions() as session, session.begin():
        project = await existing_project(session, slug)
        if project.governance != received.governance:
            # Switched while the file streamed in: the row and the tag follow the project.
            await objects.set_governance(received.stored.key, project.governance)
            received = dataclasses.replace(received, governance=project.governance)
        row = await imports.record(session, received, project_id=slug, uploaded_by=principal.actor)
        await session.execute(delete(ImportUpload).where(ImportUpload.id == received.import_id))
        await context.record(
            session,
            actor=principal.actor,
            action="import.create",
            project_id=slug,
            governance=row.governance,
            details={**_summary(row), "routing": row.routing, "part_sha256": list(row.part_sha256)},
        )
        if row.state == ImportState.RELEASED:
            told = await imports.announce_release(session, row)
            await context.record(
                session,
                actor=principal.actor,
                action="import.release",
                project_id=slug,
                governance=row.governance,
                details={**_summary(row), "by": "routing", "routing": row.routing, "sessions": told},
            )
        return _out(row)


async def _refuse(
    context: ServiceContext,
    principal: Principal,
    *,
    slug: str,
    governance: Governance,
    name: str,
    refusal: imports.ImportRefused,
    import_id: str | None = None,
    clean: bool = True,
) -> NoReturn:
    """Record the one audit event of a refused upload, in a transaction of its own; raise the error it answers.

    The import's record as in progress goes with it, unless the store could not be cleaned: then it stays,
    marked refused, for the recovery sweep to finish (:mod:`.recovery`).
    """
    async with context.sessions() as session, session.begin():
        if import_id is not None and clean:
            await session.execute(delete(ImportUpload).where(ImportUpload.id == import_id))
        elif import_id is not None:
            await session.execute(update(ImportUpload).where(ImportUpload.id == import_id).values(refused=True))
        await context.record(
            session,
            actor=principal.actor,
            action="import.refuse",
            project_id=slug,
            governance=governance,
            details={
                "name": one_line(name[:_AUDIT_NAME_CHARACTERS]),
                "reason": refusal.reason,
                "message": str(refusal),
            },
        )
    field = "name" if refusal.reason == "file_name" else None
    raise _REFUSALS[refusal.reason](str(refusal), field=field, kind=refusal.reason) from None


async def list_imports(context: ServiceContext, principal: Principal, slug: str) -> list[ImportOut]:
    """The project's imports, newest first (members, the project's bubbles, staff)."""
    await context.authorize(principal, "import.list", project=slug)
    async with context.read_sessions() as session:
        await existing_project(session, slug)
        rows = (
            await session.scalars(
                select(Import).where(Import.project_id == slug).order_by(Import.uploaded_at.desc(), Import.id)
            )
        ).all()
    return [_out(row) for row in rows]


async def queue(context: ServiceContext, principal: Principal, state: ImportState) -> list[ImportOut]:
    """Every project's imports in ``state``, oldest first: the review queue (CASD staff)."""
    await context.authorize(principal, "import.queue")
    async with context.read_sessions() as session:
        rows = (
            await session.scalars(select(Import).where(Import.state == state).order_by(Import.uploaded_at, Import.id))
        ).all()
    return [_out(row) for row in rows]


async def read(context: ServiceContext, principal: Principal, import_id: str) -> ImportOut:
    """One import, whatever its state, for its reviewers (CASD staff: the queue's permission).

    Raises:
        NotFound: there is no such import.
    """
    await context.authorize(principal, "import.queue")
    async with context.read_sessions() as session:
        row = await session.get(Import, import_id)
    if row is None:
        raise NotFound(f"no import {import_id!r}")
    return _out(row)


async def approve(context: ServiceContext, principal: Principal, import_id: str, request: ImportApproval) -> ImportOut:
    """Release an import in review with its sensitivity (CASD staff); OPA knows before this returns.

    Raises:
        NotFound: no import has this id.
        Conflict: it was decided already.
    """
    await context.authorize(principal, "import.review")
    async with context.sessions() as session, session.begin():
        try:
            row = await imports.approve(
                session, import_id, reviewer=principal.actor, sensitivity=request.sensitivity, comment=request.comment
            )
        except imports.UnknownImport as error:
            raise NotFound(str(error)) from None
        except imports.ImportNotInReview as error:
            raise Conflict(str(error)) from None
        told = await imports.announce_release(session, row)
        details = {**_summary(row), "comment": request.comment}
        for action, extra in (("import.approve", {}), ("import.release", {"by": "review", "sessions": told})):
            await context.record(
                session,
                actor=principal.actor,
                action=action,
                project_id=row.project_id,
                governance=row.governance,
                details={**details, **extra},
            )
        answer = _out(row)
    await context.policy_data.push_project(answer.project)
    return answer


async def reject(context: ServiceContext, principal: Principal, import_id: str, request: ImportRejection) -> ImportOut:
    """Reject an import in review and delete its object (CASD staff).

    Raises:
        NotFound: no import has this id.
        Conflict: it was decided already.
        Unavailable: the object store failed; the import stays in review.
    """
    await context.authorize(principal, "import.review")
    objects = object_store(context)
    async with context.sessions() as session, session.begin():
        try:
            row = await imports.reject(session, objects, import_id, reviewer=principal.actor, comment=request.comment)
        except imports.UnknownImport as error:
            raise NotFound(str(error)) from None
        except imports.ImportNotInReview as error:
            raise Conflict(str(error)) from None
        except ObjectStoreError as error:
            raise Unavailable(f"the import's object could not be deleted, so it stays in review: {error}") from None
        await context.record(
            session,
            actor=principal.actor,
            action="import.reject",
            project_id=row.project_id,
            governance=row.governance,
            details={**_summary(row), "comment": request.comment},
        )
        return _out(row)


@dataclasses.dataclass(frozen=True, slots=True)
class Content:
    """A released file on its way out: what it is, and its bytes (the first chunk already fetched)."""

    row: ImportOut
    chunks: AsyncIterator[bytes]


async def read_content(context: ServiceContext, principal: Principal, slug: str, import_id: str) -> Content:
    """The bytes of a released import of the project (members, its bubbles; reviewers also in review, to review it).

    A read is audited (``import.read``) and, from a bubble, added to its session.

    Raises:
        NotFound: the project has no such import.
        Conflict: the import is not released (in review, or rejected).
        Unavailable: the object store failed.
    """
    await context.authorize(principal, "import.read", project=slug)
    objects = object_store(context)
    async with context.read_sessions() as session:
        found = await session.get(Import, import_id)
        if found is None or found.project_id != slug:
            raise NotFound(f"project {slug!r} has no import {import_id!r}")
        state = found.state
    if state == ImportState.REJECTED:
        raise Conflict(f"import {import_id} was rejected: its file was deleted")
    if state == ImportState.IN_REVIEW and not await _may_review(context, principal):
        raise Conflict(f"import {import_id} is in review: it is not released yet")
    chunks = objects.read(found.object_key)
    try:
        first = await anext(chunks)
    except ObjectStoreError as error:
        raise Unavailable(f"the import's file cannot be read now: {error}") from None
    try:
        answer = await _record_read(context, principal, slug, import_id, state)
    except BaseException:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
        raise
    return Content(answer, _prepend(first, chunks))


async def _record_read(
    context: ServiceContext, principal: Principal, slug: str, import_id: str, state: ImportState
) -> ImportOut:
    async with context.sessions() as session, session.begin():
        row = await session.get(Import, import_id)
        if row is None or row.state != state:
            raise Conflict(f"import {import_id} was decided while it was being read; try again")
        if isinstance(principal, BubblePrincipal):
            await imports.record_read(session, row, session_id=principal.bubble_id, clock=utc_now)
        await context.record(
            session,
            actor=principal.actor,
            action="import.read",
            project_id=slug,
            governance=row.governance,
            details={"import": row.id, "name": row.name, "size": row.size, "state": row.state.value},
        )
        return _out(row)


async def _may_review(context: ServiceContext, principal: Principal) -> bool:
    """Whether the policy lets ``principal`` review imports (who may read a file still in review)."""
    decision = await context.policy.decide(
        "infracalc.authz", {"action": "import.review", "caller": principal.caller(), "resource": {}}
    )
    return decision.allow


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk

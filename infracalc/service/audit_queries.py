"""Reading and verifying the sealed audit log (CASD staff), for the API and the console alike.

Each function asks ``infracalc.authz`` first (``audit.read`` or ``audit.verify``), then reads; nothing
here writes. The API pages forward from a cursor (``after``, oldest first); the console shows the
newest events first with "older" and "newer" links (:func:`recent_events`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, select

from infracalc.audit import AuditCheckpoint, AuditEvent, verify
from infracalc.service.context import ServiceContext
from infracalc.service.principals import Principal

#: The most events one page holds.
MAX_PAGE = 500
#: Events verified per database read when the log is verified.
VERIFY_BATCH = 1000
#: The words a verification problem uses for the kind of tampering it found (see :mod:`infracalc.audit.verification`).
_FAULT_KIND = re.compile(r"\b(inserted|deleted|modified|reordered|truncated|forged|rewritten|missing)\b")


_Row = TypeVar("_Row")


class AuditEventOut(msgspec.Struct):
    """One event of the log, with its place in the chain."""

    seq: int
    at: datetime
    actor: str
    action: str
    project_id: str | None
    governance: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(msgspec.Struct):
    """One page of events; ask for the next with ``after=next_after`` while it is not null."""

    events: list[AuditEventOut]
    next_after: int | None


class Verification(msgspec.Struct):
    """The result of recomputing the whole chain and every checkpoint signature."""

    ok: bool
    events_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None
    problem: str | None
    summary: str


class CheckpointOut(msgspec.Struct):
    """A checkpoint: the event it seals, when, and by which key."""

    seq: int
    at: datetime
    key_id: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to show; every criterion left ``None`` matches everything, and they combine with AND."""

    project: str | None = None
    actor: str | None = None
    action: str | None = None
    #: Events at or after this time.
    since: datetime | None = None
    #: Events before this time.
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditWindow:
    """A page of events newest first, and the cursors of the pages around it (``None`` at either end)."""

    events: list[AuditEventOut]
    #: ``before`` of the page of older events.
    older_before: int | None
    #: ``after`` of the page of newer events.
    newer_after: int | None


def _filtered(query: Select[_Row], filters: AuditFilter) -> Select[_Row]:
    if filters.project is not None:
        query = query.where(AuditEvent.project_id == filters.project)
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return query


def _out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        project_id=event.project_id,
        governance=None if event.governance is None else event.governance.value,
        details=event.details,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


async def events(
    context: ServiceContext, principal: Principal, filters: AuditFilter, *, after: int = 0, limit: int = 100
) -> AuditPage:
    """Events in sequence order after ``after`` (at most ``limit``), with the cursor of the next page.

    Raises:
        Forbidden: the caller may not read the log.
    """
    await context.authorize(principal, "audit.read")
    query = _filtered(select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq), filters)
    async with context.read_sessions() as session:
        rows = (await session.scalars(query.limit(limit + 1))).all()
    page = rows[:limit]
    return AuditPage(events=[_out(e) for e in page], next_after=page[-1].seq if len(rows) > limit else None)


async def recent_events(
    context: ServiceContext,
    principal: Principal,
    filters: AuditFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> AuditWindow:
    """A page of events newest first: the newest, those just older than ``before``, or just newer than ``after``.

    Raises:
        Forbidden: the caller may not read the log.
    """
    await context.authorize(principal, "audit.read")
    query = _filtered(select(AuditEvent), filters)
    if after is not None:
        page_query = query.where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
    else:
        if before is not None:
            query = query.where(AuditEvent.seq < before)
        page_query = query.order_by(AuditEvent.seq.desc()).limit(limit)
    async with context.read_sessions() as session:
        rows: Sequence[AuditEvent] = (await session.scalars(page_query)).all()
        page = sorted(rows, key=lambda e: e.seq, reverse=True)
        older = newer = None
        if page:
            base = _filtered(select(AuditEvent.seq), filters)
            lowest, highest = page[-1].seq, page[0].seq
            if await session.scalar(base.where(AuditEvent.seq < lowest).limit(1)) is not None:
                older = lowest
            if await session.scalar(base.where(AuditEvent.seq > highest).limit(1)) is not None:
                newer = highest
    return AuditWindow(events=[_out(e) for e in page], older_before=older, newer_after=newer)


async def verify_log(context: ServiceContext, principal: Principal) -> Verification:
    """Recompute every hash and check every checkpoint; report the first bad sequence number.

    Raises:
        Forbidden: the caller may not verify the log.
    """
    await context.authorize(principal, "audit.verify")
    async with context.read_sessions() as session, session.begin():
        # Small batches: hashing runs on the event loop between reads, so each batch is a pause
        # for every other request (about 10 ms per 1,000 events here, against 100 ms by default).
        report = await verify(session, context.audit_log.signer.public_key, batch_size=VERIFY_BATCH)
    return Verification(
        ok=report.ok,
        events_checked=report.events_checked,
        checkpoints_checked=report.checkpoints_checked,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
        summary=report.summary(),
    )


async def last_checkpoint(context: ServiceContext, principal: Principal) -> CheckpointOut | None:
    """The newest checkpoint (unverified: :func:`verify_log` checks it), or ``None`` before the first seal.

    Raises:
        Forbidden: the caller may not verify the log.
    """
    await context.authorize(principal, "audit.verify")
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
    async with context.read_sessions() as session:
        found = await session.scalar(query)
    return None if found is None else CheckpointOut(seq=found.seq, at=found.at, key_id=found.key_id)


def fault_kind(problem: str | None) -> str | None:
    """The kind of tampering a verification problem names (``modified``, ``deleted``, ``inserted``...), if any."""
    found = _FAULT_KIND.search(problem or "")
    return found.group(1) if found else None

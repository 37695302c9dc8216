"""Routes over the sealed audit log: read it (paged, filtered) and verify it (CASD staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import Parameter
from sqlalchemy import select

from infracalc.audit import AuditEvent, verify
from infracalc.service.context import Context
from infracalc.service.principals import Principal

#: The most events one page holds.
MAX_PAGE = 500
#: Events verified per database read when the API verifies the log.
VERIFY_BATCH = 1000


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


class AuditController(Controller):
    """The audit log, for CASD staff."""

    path = "/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Audit events, paged and filtered")
    async def list_events(
        self,
        request: Request[Principal, Any, Any],
        context: Context,
        *,
        project: Annotated[str | None, Parameter(description="only events of this project")] = None,
        actor: Annotated[str | None, Parameter(description="only events by this actor")] = None,
        action: Annotated[str | None, Parameter(description="only this action, e.g. governance.switch")] = None,
        since: Annotated[datetime | None, Parameter(description="events at or after this time")] = None,
        until: Annotated[datetime | None, Parameter(description="events before this time")] = None,
        after: Annotated[int, Parameter(ge=0, description="events with a larger seq (the cursor)")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="events per page")] = 100,
    ) -> AuditPage:
        """Events in sequence order, from ``after``; filters combine with AND."""
        await context.authorize(request.user, "audit.read")
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit + 1)
        if project is not None:
            query = query.where(AuditEvent.project_id == project)
        if actor is not None:
            query = query.where(AuditEvent.actor == actor)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        if until is not None:
            query = query.where(AuditEvent.at < until)
        async with context.read_sessions() as session:
            rows = (await session.scalars(query)).all()
        page = rows[:limit]
        events = [
            AuditEventOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                project_id=e.project_id,
                governance=None if e.governance is None else e.governance.value,
                details=e.details,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in page
        ]
        return AuditPage(events=events, next_after=page[-1].seq if len(rows) > limit else None)

    @get("/verify", summary="Verify the whole audit log")
    async def verify_log(self, request: Request[Principal, Any, Any], context: Context) -> Verification:
        """Recompute every hash and check every checkpoint; report the first bad sequence number."""
        await context.authorize(request.user, "audit.verify")
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

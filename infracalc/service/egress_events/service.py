"""Recording the egress proxy's events: each one in the audit log, and in its bubble's session when it has one.

A batch is recorded whole, in one transaction, or not at all. Each event becomes an audit event
whose actor is the bubble (``bubble:<id>``), or the client's address (``source:<address>``) for
refusals of clients without valid credentials, and whose action is ``egress.connection.allow``,
``egress.connection.deny`` (decisions, and refusals before the policy, one by one or counted over
an interval) or ``egress.connection.close``; the project is the event's own when the service knows
it, with its current governance. An event naming a bubble without a session goes to the audit log
only.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.audit import AuditEntry
from infracalc.casd import sessions
from infracalc.db import Governance, Project, SessionRecord
from infracalc.db.models import NAME_LENGTH
from infracalc.service.context import ServiceContext
from infracalc.service.egress_events.schemas import EgressEvent, EgressEventBatch

#: The source of these events in a session's timeline.
SOURCE = "proxy"
#: Audit events added at most between two turns of the event loop while a batch is recorded.
AUDIT_SLICE = 50


async def record(context: ServiceContext, batch: EgressEventBatch) -> None:
    """Append every event of ``batch`` to the audit log and to its bubble's session, in one transaction.

    The caller was authorized already (``egress.events.record``, the route's guard): the body of
    this route may be large, so it is not read before the policy has been asked.
    """
    events = batch.events
    # Only names that can be ids are looked up: a made-up bubble id may hold a NUL, which PostgreSQL
    # refuses even as a query parameter, and is no session's id anyway.
    bubbles = {event.bubble for event in events if event.bubble is not None and event.bubble.isprintable()}
    projects = {event.project for event in events if event.project is not None and event.project.isprintable()}
    async with context.sessions() as session, session.begin():
        owners = await _governance(session, projects)
        recorded = await _recorded_sessions(session, bubbles)
        timelines: dict[str, list[sessions.NewEvent]] = defaultdict(list)
        entries = []
        for event in events:
            action = action_of(event)
            known_project = event.project if event.project in owners else None
            details = details_of(event, keep_project=known_project is None)
            actor, exact = _actor(event)
            if not exact:
                details["bubble" if event.bubble is not None else "source"] = event.bubble or event.source
            if event.bubble is not None and event.bubble in recorded:
                timelines[event.bubble].append(
                    sessions.NewEvent(event.at, SOURCE, action, summary=summary_of(event), details=details)
                )
            entries.append(
                AuditEntry(
                    actor=actor,
                    action=action,
                    project_id=known_project,
                    governance=None if known_project is None else owners[known_project],
                    details=details,
                )
            )
        for session_id, new_events in timelines.items():
            await sessions.append_events(session, session_id, new_events)
        # Last, so that the head of the log is locked as briefly as possible; in slices, with the
        # event loop free in between, so that a person's request arriving meanwhile is served within
        # one slice's work rather than after the whole batch's (the batch stays one transaction).
        for start in range(0, len(entries), AUDIT_SLICE):
            await context.audit_log.append_many(session, entries[start : start + AUDIT_SLICE])
            await asyncio.sleep(0)
        await context.audit_log.maybe_checkpoint(session)


async def _governance(session: AsyncSession, slugs: set[str]) -> dict[str, Governance]:
    """The current governance of those of ``slugs`` that are projects."""
    if not slugs:
        return {}
    rows = await session.execute(select(Project.id, Project.governance).where(Project.id.in_(slugs)))
    return {slug: governance for slug, governance in rows.all()}


async def _recorded_sessions(session: AsyncSession, ids: set[str]) -> set[str]:
    """Those of ``ids`` that are recorded sessions."""
    if not ids:
        return set()
    return set((await session.scalars(select(SessionRecord.id).where(SessionRecord.id.in_(ids)))).all())


def action_of(event: EgressEvent) -> str:
    """The audit action of ``event``: ``egress.connection.allow``, ``.deny`` (refusals too) or ``.close``."""
    if event.kind == "tunnel_closed":
        return "egress.connection.close"
    return "egress.connection.allow" if event.kind == "decision" and event.allow else "egress.connection.deny"


def details_of(event: EgressEvent, *, keep_project: bool) -> dict[str, Any]:
    """What the audit event keeps besides its actor and project: the rest of ``event``, without empty fields.

    ``keep_project``: keep the project the event names (one the service does not know is not the
    audit event's project, but is worth keeping).
    """
    details: dict[str, Any] = {
        "kind": event.kind,
        "at": _time(event.at),
        "reason": event.reason,
    }
    if event.kind != "tunnel_closed":
        details["allow"] = event.allow and event.kind == "decision"
    optional = {
        "scheme": event.scheme,
        "host": event.host,
        "port": event.port,
        "source": event.source,
        "label": event.label,
        "status": event.status,
        "count": event.count,
        "until": None if event.until is None else _time(event.until),
        "project": event.project if keep_project else None,
        "method": event.method,
        "path": event.path,
        "rule_id": event.rule_id,
        "address": event.address,
        "mode": event.mode,
        "bytes_up": event.bytes_up,
        "bytes_down": event.bytes_down,
        "seconds": event.seconds,
    }
    details.update({name: value for name, value in optional.items() if value is not None})
    return details


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def summary_of(event: EgressEvent) -> str:
    """One line for a session's timeline."""
    host = event.host or "?"
    target = f"[{host}]:{event.port}" if ":" in host else f"{host}:{event.port}"
    if event.kind == "refusal":
        return f"refused before any decision ({event.status} {event.label}): {event.reason}"
    if event.kind == "refusals":
        return f"{event.count} connections refused ({event.status} {event.label}): {event.reason}"
    if event.kind == "tunnel_closed":
        what = "tunnel" if event.scheme == "connect" else "connection"
        sizes = f"{event.bytes_up or 0} bytes up, {event.bytes_down or 0} down"
        duration = "" if event.seconds is None else f" in {event.seconds:g} s"
        return f"{what} to {target} closed ({event.reason}): {sizes}{duration}"
    if event.scheme == "connect":
        request = f"CONNECT {target}" + (f" ({event.mode})" if event.mode else "")
    else:
        request = f"{event.method or '?'} {event.scheme or 'http'}://{target}{event.path or ''}"
    rule = f" by rule {event.rule_id}" if event.allow and event.rule_id else ""
    outcome = ""
    if event.scheme == "https" and event.status is not None:
        outcome = f" -> {event.status}, {event.bytes_up or 0} bytes up, {event.bytes_down or 0} down"
    return f"{'allowed' if event.allow else 'denied'} {request}{rule}{outcome}: {event.reason}"


def _actor(event: EgressEvent) -> tuple[str, bool]:
    """``bubble:<id>`` (or ``source:<address>`` for a client refused without valid credentials), and whether exact.

    The id comes from the credentials a bubble sent, which may be made up: control characters are
    escaped (PostgreSQL stores no NUL) and the name is cut to the column's length; the exact id then
    goes into the details.
    """
    kind, name = ("bubble", event.bubble) if event.bubble is not None else ("source", event.source or "")
    actor = f"{kind}:{sessions.one_line(name)}"[:NAME_LENGTH]
    return actor, actor == f"{kind}:{name}"

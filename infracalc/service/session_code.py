"""The code a bubble runs, into its session: ``POST /sessions/{id}/code`` (the bubble, into its own session only).

The bubble's IPython extension (:mod:`infracalc.bubble.ipython`) sends the cells its kernels ran,
in batches, with the bubble's token. Each cell becomes a ``code.cell`` event of source ``bubble``
in the session whose id is the bubble's id: its summary is the cell's first line, its details the
source (at most 64 KiB, cut by the extension, which says so), the execution count, whether it
succeeded and, if not, the exception's type (never its message, which may quote data).

Code cells are not changes of the platform's state: they go into the session only, not into the
audit log. Each batch is counted in the service's log. A batch is recorded whole or not at all;
a closed session (its bubble stopped) takes no more cells.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from infracalc.casd import sessions
from infracalc.db import SessionRecord, utc_now
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Principal
from infracalc.service.session_routes import SessionId

logger = logging.getLogger(__name__)

#: Where a code cell comes from, and what it is, in a session's timeline.
BUBBLE = "bubble"
CODE_CELL = "code.cell"
#: The largest source of one cell, in bytes of UTF-8 (the extension cuts longer ones and says so).
MAX_SOURCE_BYTES = 64 * 1024
#: The most cells in one request, and the largest request (JSON may escape a character into six).
MAX_CELLS = 50
MAX_BODY_BYTES = 8 * 1024 * 1024
#: The longest summary: the cell's first line, cut.
MAX_SUMMARY = 200
#: How far a cell's time may be from the service's clock: ahead of it, or before its session opened.
CLOCK_SKEW = timedelta(minutes=5)


class CodeCellIn(msgspec.Struct, forbid_unknown_fields=True):
    """One cell a kernel ran, as the bubble's extension reports it."""

    #: When the cell started, timezone-aware (the bubble's clock).
    at: datetime
    #: The cell's source, at most 64 KiB of UTF-8 (cut by the extension when longer: see ``truncated``).
    source: str
    success: bool
    #: IPython's execution count (``In [n]``), when it has one.
    execution_count: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: The type of the exception the cell raised (``ZeroDivisionError``), never its message.
    error: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    duration_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None
    #: The source was cut to 64 KiB; ``source_bytes`` is its whole length.
    truncated: bool = False
    source_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CodeCellBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """Cells to add to the bubble's session, oldest first."""

    cells: Annotated[list[CodeCellIn], msgspec.Meta(min_length=1, max_length=MAX_CELLS)]


class CodeRecorded(msgspec.Struct):
    """How many cells were added."""

    recorded: int


async def may_record_code(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Ask the policy before the body is read: only the bubble whose id is the session's sends code into it."""
    context: ServiceContext = connection.app.state.context
    await context.authorize(connection.user, "session.code.record", session=connection.path_params["session_id"])


def summary_of(source: str) -> str:
    """The first line of a cell that is not blank, cut to :data:`MAX_SUMMARY` characters (``(empty cell)`` if none)."""
    for line in source.splitlines():
        first = line.strip()
        if first:
            return first if len(first) <= MAX_SUMMARY else first[: MAX_SUMMARY - 1] + "…"
    return "(empty cell)"


def event_of(cell: CodeCellIn, index: int, opened_at: datetime, now: datetime) -> sessions.NewEvent:
    """The session event of ``cell`` (the ``index``-th of its batch).

    Raises:
        InvalidInput: its time has no zone or is out of bounds, or its source is over 64 KiB.
    """
    field = f"cells[{index}]"
    if cell.at.tzinfo is None or cell.at.utcoffset() is None:
        raise InvalidInput(f"{field}.at: give a time zone, got {cell.at.isoformat()}", field=f"{field}.at")
    if not opened_at - CLOCK_SKEW <= cell.at <= now + CLOCK_SKEW:
        raise InvalidInput(
            f"{field}.at: {cell.at.isoformat()} is not during the session (opened {opened_at.isoformat()}, "
            f"now {now.isoformat()})",
            field=f"{field}.at",
        )
    size = len(cell.source.encode())
    if size > MAX_SOURCE_BYTES:
        raise InvalidInput(
            f"{field}.source: at most {MAX_SOURCE_BYTES} bytes (cut it and set truncated), got {size}",
            field=f"{field}.source",
        )
    details: dict[str, Any] = {
        "source": cell.source,
        "execution_count": cell.execution_count,
        "success": cell.success,
    }
    if cell.error is not None:
        details["error"] = cell.error
    if cell.duration_seconds is not None:
        details["duration_seconds"] = cell.duration_seconds
    if cell.truncated:
        details["truncated"] = True
        details["source_bytes"] = cell.source_bytes
    return sessions.NewEvent(cell.at, BUBBLE, CODE_CELL, summary_of(cell.source), details)


class SessionCodeController(Controller):
    """The code run in a bubble, added to its session by the bubble itself."""

    path = "/sessions"
    tags = ["sessions"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @post(
        "/{session_id:str}/code",
        summary="Add the code cells a bubble ran to its own session (the bubble)",
        guards=[may_record_code],
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def record(
        self,
        request: Request[Principal, Any, Any],
        context: Context,
        data: JSONBody[CodeCellBatchIn],
        session_id: str = SessionId,
    ) -> CodeRecorded:
        """Append one ``code.cell`` event per cell, all or none; the session must be open."""
        async with context.sessions() as db_session, db_session.begin():
            # The policy matched the id with the bubble's own, so it is printable; checked again for PostgreSQL.
            record = (
                await db_session.get(SessionRecord, session_id, with_for_update=True)
                if session_id.isprintable()
                else None
            )
            if record is None:
                raise NotFound(f"no session {session_id!r}")
            if record.closed_at is not None:
                raise Conflict(
                    f"session {session_id!r} was closed at {record.closed_at.isoformat()} (its bubble was stopped): "
                    "it takes no more code"
                )
            now = utc_now()
            events = [event_of(cell, index, record.opened_at, now) for index, cell in enumerate(data.cells)]
            await sessions.append_events(db_session, session_id, events)
        logger.info(
            "session %s: %d code cell(s) recorded from %s (project %s)",
            session_id,
            len(events),
            request.user.actor,
            record.project_id,
        )
        return CodeRecorded(recorded=len(events))

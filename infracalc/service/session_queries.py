"""Searching sessions and reading a session's timeline (CASD staff), for the API and the console alike.

Each function asks ``infracalc.authz`` first (``session.search``, ``session.read``), then reads through
:mod:`infracalc.casd.session_search` and :mod:`infracalc.casd.sessions`; nothing here writes. A
search criterion that cannot be used is :class:`~infracalc.service.errors.InvalidInput` naming its
field (``user``, ``project``, ``from``, ``to``, ``q``, ``limit``, ``cursor``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from infracalc.casd import session_search, sessions
from infracalc.db import Governance
from infracalc.service.context import ServiceContext
from infracalc.service.errors import InvalidInput, NotFound
from infracalc.service.principals import Principal

#: The largest page of a search.
MAX_LIMIT = session_search.MAX_LIMIT


class SessionEventOut(msgspec.Struct):
    """One line of a session's timeline."""

    at: datetime
    source: str
    kind: str
    summary: str
    details: dict[str, Any]


class SessionOut(msgspec.Struct):
    """A session: who worked on which project, under which governance, when; and what happened, oldest first."""

    id: str
    project: str
    username: str
    governance: Governance
    opened_at: datetime
    closed_at: datetime | None
    events: list[SessionEventOut]


class FoundSessionOut(msgspec.Struct):
    """A session that matched a search; with a text, how many of its events matched and a line of the newest."""

    id: str
    project: str
    username: str
    governance: Governance
    opened_at: datetime
    closed_at: datetime | None
    matching_events: int | None
    snippet: str | None


class SessionPageOut(msgspec.Struct):
    """A page of sessions, newest first; ask for the next with ``cursor=next_cursor`` while it is not null."""

    sessions: list[FoundSessionOut]
    next_cursor: str | None


async def search(context: ServiceContext, principal: Principal, query: session_search.SessionQuery) -> SessionPageOut:
    """Sessions matching every criterion of ``query``, newest first; its text is plain words, never query syntax.

    Raises:
        Forbidden: the caller may not search sessions.
        InvalidInput: a criterion cannot be used as given (``field`` names it).
    """
    await context.authorize(principal, "session.search")
    try:
        async with context.read_sessions() as db_session:
            page = await session_search.search_sessions(db_session, query)
    except session_search.InvalidSearch as error:
        raise InvalidInput(str(error), field=error.field) from None
    return SessionPageOut(
        sessions=[
            FoundSessionOut(
                id=found.session.id,
                project=found.session.project_id,
                username=found.session.username,
                governance=found.session.governance,
                opened_at=found.session.opened_at,
                closed_at=found.session.closed_at,
                matching_events=found.matching_events,
                snippet=found.snippet,
            )
            for found in page.sessions
        ],
        next_cursor=page.next_cursor,
    )


async def read(context: ServiceContext, principal: Principal, session_id: str) -> SessionOut:
    """The session of a bubble run, with its events in time order.

    Raises:
        Forbidden: the caller may not read sessions.
        NotFound: there is no such session.
    """
    await context.authorize(principal, "session.read")
    async with context.read_sessions() as db_session:
        found = await sessions.timeline(db_session, session_id)
    if found is None:
        raise NotFound(f"no session {session_id!r}")
    record = found.session
    return SessionOut(
        id=record.id,
        project=record.project_id,
        username=record.username,
        governance=record.governance,
        opened_at=record.opened_at,
        closed_at=record.closed_at,
        events=[SessionEventOut(e.at, e.source, e.kind, e.summary, e.details) for e in found.events],
    )

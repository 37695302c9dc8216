"""Routes over the sessions: search them and read one's timeline (CASD staff); the hub's events in them (the hub).

The hub reports what it did around a bubble (started it, stopped it, a login) into the bubble's
session: a session is the record of a run, so these events are not also audit events. A closed
session takes no more hub events (409): the hub reports a stop before it revokes the bubble.

``GET /sessions`` searches them (:mod:`infracalc.casd.session_search`): by user, project, a time range
the session overlaps, and the words of its events, newest first, a page at a time. Searching and
reading are :mod:`infracalc.service.session_queries`, which the console's pages call too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody, Parameter, QueryParameter

from infracalc.casd import session_search, sessions
from infracalc.db import SessionRecord, utc_now
from infracalc.service import session_queries
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import Conflict, InvalidInput, NotFound
from infracalc.service.principals import Principal
from infracalc.service.session_queries import SessionEventOut, SessionOut, SessionPageOut

#: Where a hub event comes from, in a session's timeline.
HUB = "hub"
#: The longest summary of a hub event, in characters.
MAX_SUMMARY = 500
#: The largest ``details`` of a hub event, JSON-encoded.
MAX_DETAILS_BYTES = 4 * 1024
#: The largest body of a hub event (a summary of escaped characters and its details, with room to spare).
MAX_HUB_EVENT_BODY = 64 * 1024

SessionId = Parameter(str, description="the session's id (its bubble's id)", max_length=32)


class HubEventIn(msgspec.Struct, forbid_unknown_fields=True):
    """What the hub reports into a bubble's session; the service dates it."""

    kind: Literal["hub.spawn", "hub.stop", "hub.login"]
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SUMMARY)]
    #: Small, plain JSON: at most 4 KiB once encoded.
    details: dict[str, Any] = msgspec.field(default_factory=dict)


async def may_record_session_events(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Ask the policy before the body is read: a refused caller learns nothing about its form."""
    context: ServiceContext = connection.app.state.context
    await context.authorize(connection.user, "session.record")


class SessionController(Controller):
    """Sessions: read by CASD staff, added to by the hub."""

    path = "/sessions"
    tags = ["sessions"]  # noqa: RUF012 - Litestar's documented way to tag a controller

    @get("/", summary="Search sessions (CASD staff)")
    async def search(
        self,
        request: Request[Principal, Any, Any],
        context: Context,
        *,
        user: Annotated[str | None, Parameter(description="only sessions of this username", max_length=128)] = None,
        project: Annotated[str | None, Parameter(description="only sessions of this project", max_length=128)] = None,
        since: Annotated[
            datetime | None, QueryParameter(name="from", description="sessions still open at or after this time")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="sessions opened at or before this time")
        ] = None,
        q: Annotated[
            str | None,
            Parameter(description="words that one event of the session must all contain (summary or details)"),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=session_search.MAX_LIMIT, description="sessions per page")] = 50,
        cursor: Annotated[str | None, Parameter(description="next_cursor of the previous page", max_length=512)] = None,
    ) -> SessionPageOut:
        """Sessions matching every criterion given, newest first; ``q`` is plain words, never query syntax."""
        query = session_search.SessionQuery(
            username=user, project=project, since=since, until=until, text=q or None, limit=limit, cursor=cursor
        )
        return await session_queries.search(context, request.user, query)

    @get("/{session_id:str}", summary="A session and its timeline (CASD staff)")
    async def read(
        self, request: Request[Principal, Any, Any], context: Context, session_id: str = SessionId
    ) -> SessionOut:
        """The session of a bubble run, with its events in time order."""
        return await session_queries.read(context, request.user, session_id)

    @post(
        "/{session_id:str}/events",
        summary="Add a hub event to a session (the hub)",
        guards=[may_record_session_events],
        request_max_body_size=MAX_HUB_EVENT_BODY,
    )
    async def record(
        self, context: Context, data: JSONBody[HubEventIn], session_id: str = SessionId
    ) -> SessionEventOut:
        """Append a ``hub.spawn``, ``hub.stop`` or ``hub.login`` event, dated now, to an open session."""
        encoded = len(msgspec.json.encode(data.details))
        if encoded > MAX_DETAILS_BYTES:
            raise InvalidInput(f"details: at most {MAX_DETAILS_BYTES} bytes of JSON, got {encoded}", field="details")
        event = sessions.NewEvent(utc_now(), HUB, data.kind, data.summary, data.details)
        async with context.sessions() as db_session, db_session.begin():
            # Printable ids only: PostgreSQL refuses a NUL even as a query parameter, and no session has one.
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
                    "it takes no more hub events"
                )
            await sessions.append_events(db_session, session_id, [event])
        summary = sessions.one_line(event.summary)
        return SessionEventOut(event.at, event.source, event.kind, summary, dict(event.details))

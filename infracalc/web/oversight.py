"""CASD staff's oversight pages: the audit log with its verification, session search and a session's timeline.

The pages act as the signed-in :class:`~infracalc.service.principals.Person` through the same domain
functions as the API (:mod:`infracalc.service.audit_queries`, :mod:`infracalc.service.session_queries`),
so OPA decides who may read, exactly as for the API; a refusal is a page with the policy's reason.
Filters and searches are GET forms: a value that cannot be used comes back with the message next to
its field and everything typed kept. Verifying the whole log is a POST (it reads every event).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from infracalc.casd import session_search
from infracalc.service import audit_queries, session_queries
from infracalc.service.context import Context, ServiceContext
from infracalc.service.errors import InvalidInput, NotFound
from infracalc.service.principals import Person
from infracalc.web.console import STAFF_ROLE, ConsolePages
from infracalc.web.i18n import Translate, translator
from infracalc.web.pages import language, reason, render
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: Events on one page of the audit viewer, and sessions on one page of results.
AUDIT_PAGE_SIZE: Final = 50
SESSIONS_PAGE_SIZE: Final = 25
#: The longest text a filter field takes (names, project ids and actions are far shorter).
MAX_FILTER_LENGTH: Final = 128
#: The most digits a cursor may have (18 always fit a signed 64-bit BIGINT).
MAX_CURSOR_DIGITS: Final = 18
#: The longest session id a timeline URL may name (ids are 32 hex characters).
MAX_SESSION_ID: Final = 64
#: The filter fields of the audit viewer and of the session search, in the order of their forms.
AUDIT_FIELDS: Final = ("project", "actor", "action", "since", "until")
SESSION_FIELDS: Final = ("user", "project", "from", "to", "q")


def form_time(text: str) -> datetime:
    """A time typed in a form: ISO 8601 with a zone, or without one (a ``datetime-local`` field), taken as UTC.

    Raises:
        ValueError: it is not a date and time.
    """
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_json(details: Mapping[str, Any]) -> str:
    """An event's details on one line, keys sorted, characters as they are (the page escapes them)."""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)


def _typed(request: AnyRequest, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(request.query_params.get(name, "")).strip() for name in names}


def _text_errors(typed: Mapping[str, str], names: tuple[str, ...], t: Translate) -> dict[str, str]:
    """Messages for text filters that are too long or hold control characters (no name holds one)."""
    errors: dict[str, str] = {}
    for name in names:
        value = typed[name]
        if len(value) > MAX_FILTER_LENGTH:
            errors[name] = t("filter.too_long", limit=MAX_FILTER_LENGTH)
        elif not value.isprintable():
            errors[name] = t("filter.not_printable")
    return errors


def _times(
    typed: Mapping[str, str], start: str, end: str, t: Translate, errors: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    """The range typed in fields ``start`` and ``end``; a bad value or an inverted range adds to ``errors``."""
    parsed: dict[str, datetime | None] = {}
    for name in (start, end):
        parsed[name] = None
        if typed[name]:
            try:
                parsed[name] = form_time(typed[name])
            except ValueError:
                errors[name] = t("filter.bad_time", value=typed[name])
    since, until = parsed[start], parsed[end]
    if since is not None and until is not None and since > until:
        errors[end] = t("filter.inverted")
    return since, until


def _cursor(request: AnyRequest, name: str) -> int | None:
    """A whole number of the audit viewer's URL (a cursor, a page size); ``None`` when absent, zero or not one."""
    value = str(request.query_params.get(name, ""))
    if not value.isdigit() or len(value) > MAX_CURSOR_DIGITS:
        return None
    return int(value) or None


def _page_size(request: AnyRequest) -> dict[str, str]:
    """The audit viewer's ``limit`` (events per page) when the URL chose one, for the links to other pages."""
    size = _cursor(request, "limit")
    return {"limit": str(min(size, audit_queries.MAX_PAGE))} if size else {}


class OversightPages(Controller):
    """The audit log and the sessions, for CASD staff (OPA decides: ``audit.*``, ``session.*``)."""

    path = "/staff"
    include_in_schema = False
    dependencies = dict(ConsolePages.dependencies)  # noqa: RUF012 - Litestar's controller attribute
    exception_handlers = dict(ConsolePages.exception_handlers)  # noqa: RUF012 - Litestar's controller attribute

    # -- the audit log -------------------------------------------------------------------------

    @get("/audit", name="staff-audit")
    async def audit(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Events newest first, filtered, with "older" and "newer" links; the verification on demand."""
        return await self._audit(request, context, person)

    @post("/audit/verify", name="staff-audit-verify")
    async def verify(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """Verify the whole log now, and show the result above the newest events."""
        verification = await audit_queries.verify_log(context, person)
        return await self._audit(request, context, person, verification=verification)

    async def _audit(
        self,
        request: AnyRequest,
        context: ServiceContext,
        person: Person,
        *,
        verification: audit_queries.Verification | None = None,
    ) -> Template:
        t = translator(language(request))
        typed = _typed(request, AUDIT_FIELDS)
        errors = _text_errors(typed, ("project", "actor", "action"), t)
        since, until = _times(typed, "since", "until", t, errors)
        window = None
        if not errors:
            filters = audit_queries.AuditFilter(
                project=typed["project"] or None,
                actor=typed["actor"] or None,
                action=typed["action"] or None,
                since=since,
                until=until,
            )
            window = await audit_queries.recent_events(
                context,
                person,
                filters,
                before=_cursor(request, "before"),
                after=_cursor(request, "after"),
                limit=min(_cursor(request, "limit") or AUDIT_PAGE_SIZE, audit_queries.MAX_PAGE),
            )
        else:
            # A refused reader learns the policy's reason, not which filter was wrong.
            await context.authorize(person, "audit.read")
        checkpoint = await audit_queries.last_checkpoint(context, person)
        return render(
            request,
            "console/staff_audit.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "typed": typed,
                "errors": errors,
                "window": window,
                "query": {name: value for name, value in typed.items() if value} | _page_size(request),
                "verification": verification,
                "fault_kind": audit_queries.fault_kind(verification.problem) if verification else None,
                "checkpoint": checkpoint,
                "as_json": as_json,
            },
            status_code=422 if errors else 200,
        )

    # -- sessions ------------------------------------------------------------------------------

    @get("/sessions", name="staff-sessions")
    async def sessions(self, request: AnyRequest, context: Context, person: SignedIn) -> Template:
        """The search form and the sessions matching it, newest first, a page at a time."""
        t = translator(language(request))
        typed = _typed(request, SESSION_FIELDS)
        errors = _text_errors(typed, ("user", "project"), t)
        since, until = _times(typed, "from", "to", t, errors)
        cursor = str(request.query_params.get("cursor", "")) or None
        page = None
        if not errors:
            query = session_search.SessionQuery(
                username=typed["user"] or None,
                project=typed["project"] or None,
                since=since,
                until=until,
                text=typed["q"] or None,
                limit=SESSIONS_PAGE_SIZE,
                cursor=cursor,
            )
            try:
                page = await session_queries.search(context, person, query)
            except InvalidInput as error:
                field = error.field or "q"  # a bad cursor ("cursor") shows above the form
                errors[field] = reason(request, str(error).removeprefix(f"{field}: "))
        else:
            await context.authorize(person, "session.search")
        return render(
            request,
            "console/staff_sessions.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "typed": typed,
                "errors": errors,
                "page": page,
                "query": {name: value for name, value in typed.items() if value},
            },
            status_code=422 if errors else 200,
        )

    @get("/sessions/{session_id:str}", name="staff-session")
    async def session(
        self, request: AnyRequest, context: Context, person: SignedIn, session_id: FromPath[str]
    ) -> Template:
        """A session's timeline: its events in time order, with their time, source, kind and details."""
        if len(session_id) > MAX_SESSION_ID or not session_id.isprintable():
            await context.authorize(person, "session.read")
            raise NotFound(f"no session {session_id[:MAX_SESSION_ID]!r}")
        found = await session_queries.read(context, person, session_id)
        return render(
            request,
            "console/staff_session.html",
            {"person": person, "staff": STAFF_ROLE in person.roles, "session": found, "as_json": as_json},
        )

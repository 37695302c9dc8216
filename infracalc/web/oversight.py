"""CASD staff's oversight pages: the audit log with its verification, session search and a session's timeline.

The pages act as the signed-in :class:`~infracalc.service.principals.Person` through the same domain
functions as the API (:mod:`infracalc.service.audit_queries`, :mod:`infracalc.service.session_queries`),
so OPA decides who may read, exactly as for the API; a refusal is a page with the policy's reason.
Filters and searches are GET forms: a value that cannot be used comes back with the message next to
its field and everything typed kept. Verifying the whole log is a POST (it reads every event).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from infracalc.casd import session_search
from infracalc.service import audit_queries, session_queries
from infracalc.service.context import Context, ServiceContext
from infracalc.service.egress_rules import service as egress
from infracalc.service.errors import Forbidden, InvalidInput, NotFound
from infracalc.service.principals import Person
from infracalc.web.console import STAFF_ROLE, ConsolePages
from infracalc.web.form_state import FormState, send_back, sent_back
from infracalc.web.i18n import MESSAGES, Translate, translator
from infracalc.web.pages import language, reason, render
from infracalc.web.reasons import name_rules, translate_reason
from infracalc.web.sessions import SignedIn

AnyRequest = Request[Any, Any, Any]

#: Events on one page of the audit viewer (a screenful or two, details folded), and sessions on one page of results.
AUDIT_PAGE_SIZE: Final = 20
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


def as_json(details: Any) -> str:
    """A value on one line, keys sorted, characters as they are (the page escapes them)."""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)


#: A value longer than this is folded: its start shows, the whole opens on demand.
FOLD_AT: Final = 120
#: How much of a folded value shows.
FOLDED_START: Final = 80
#: Details that hold a reason of the policy or a message of the domain: shown translated, rules named by host.
REASON_KEYS: Final = frozenset({"reason", "message", "summary"})
#: Details that hold a rule's id: shown with the rule's host.
RULE_KEYS: Final = frozenset({"rule", "rule_id"})
#: A rule's id where a text names one (``rule 3fa4c2d19e8b7a60``).
_RULE_ID: Final = re.compile(r"\b[0-9a-f]{16}\b")


@dataclass(frozen=True, slots=True)
class DetailValue:
    """One detail of an event, labelled, as a page shows it."""

    label: str
    text: str

    @property
    def folded(self) -> bool:
        """Whether the value is long enough to fold."""
        return len(self.text) > FOLD_AT

    @property
    def start(self) -> str:
        """What a folded value shows of itself."""
        return self.text[:FOLDED_START].rstrip() + "…"


#: A time as the domain records it (``datetime.isoformat()``, with its zone).
_ISO_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _value_text(value: Any, catalogue: Mapping[str, str]) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return catalogue["detail.yes"] if value else catalogue["detail.no"]
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        # As the page shows every other time: to the second, in UTC.
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        return ", ".join(str(item) for item in value) or "—"
    return as_json(value)


def detail_values(details: Mapping[str, Any], lang: str, hosts: Mapping[str, str]) -> list[DetailValue]:
    """An event's details as labelled values, keys sorted: reasons in ``lang`` with rules named by host."""
    catalogue = MESSAGES[lang]
    shown: list[DetailValue] = []
    for key in sorted(details):
        value = details[key]
        text = _value_text(value, catalogue)
        if key in REASON_KEYS and isinstance(value, str):
            text = translate_reason(name_rules(value, hosts), lang)
        elif key in RULE_KEYS and isinstance(value, str) and value in hosts:
            text = f"{value} ({hosts[value]})"
        shown.append(DetailValue(catalogue.get(f"detail.{key}", key), text))
    return shown


def rule_ids(texts: Any) -> set[str]:
    """Every rule id the values hold (details, summaries), to name those rules by host."""
    return set(_RULE_ID.findall(as_json(texts)))


async def hosts_of(context: ServiceContext, person: Person, texts: Any) -> dict[str, str]:
    """The hosts of the rules ``texts`` name by id; none when the person may not read rules."""
    try:
        return await egress.rule_hosts(context, person, rule_ids(texts))
    except Forbidden:
        return {}


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
    async def verify(self, request: AnyRequest, context: Context, person: SignedIn) -> Response[Any]:
        """Verify the whole log now; back to the log (its filters kept) with the result above the events."""
        verification = await audit_queries.verify_log(context, person)
        form = await request.form()
        filters = {name: str(form.get(name, "")) for name in AUDIT_FIELDS}
        state = FormState("verify", extra={"verification": msgspec.to_builtins(verification)})
        return await send_back(request, context, "/staff/audit", state, anchor="verification", **filters)

    async def _audit(self, request: AnyRequest, context: ServiceContext, person: Person) -> Template:
        lang = language(request)
        t = translator(lang)
        state = await sent_back(request, context)
        verification = None
        if state is not None and state.form == "verify":
            verification = msgspec.convert(state.extra["verification"], audit_queries.Verification)
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
        events = window.events if window is not None else []
        hosts = await hosts_of(context, person, [event.details for event in events])
        return render(
            request,
            "console/staff_audit.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "typed": typed,
                "errors": errors,
                "window": window,
                "details": {event.seq: detail_values(event.details, lang, hosts) for event in events},
                "query": {name: value for name, value in typed.items() if value} | _page_size(request),
                "verification": verification,
                "fault_kind": audit_queries.fault_kind(verification.problem) if verification else None,
                "checkpoint": checkpoint,
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
        lang = language(request)
        hosts = await hosts_of(context, person, [[event.summary, event.details] for event in found.events])
        return render(
            request,
            "console/staff_session.html",
            {
                "person": person,
                "staff": STAFF_ROLE in person.roles,
                "session": found,
                "summaries": [translate_reason(name_rules(event.summary, hosts), lang) for event in found.events],
                "details": [detail_values(event.details or {}, lang, hosts) for event in found.events],
            },
        )

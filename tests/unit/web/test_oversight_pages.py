"""The oversight and enrollment pages' templates and helpers: both languages, labelled fields, escaped values.

Also: how a time typed in a filter is read, how an event's details are shown, what the invitation
form sends, and which kind of tampering a verification problem names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jinja2
import pytest

from infracalc.db import EnrollmentState, Governance, MemberRole
from infracalc.service.audit_queries import (
    AuditEventOut,
    AuditWindow,
    CheckpointOut,
    Verification,
    fault_kind,
)
from infracalc.service.enrollments.schemas import EnrollmentLink, EnrollmentOut
from infracalc.service.principals import Person
from infracalc.service.projects.schemas import ProjectSummary
from infracalc.service.session_queries import FoundSessionOut, SessionEventOut, SessionOut, SessionPageOut
from infracalc.web.i18n import LANGUAGES, translator
from infracalc.web.oversight import FOLD_AT, DetailValue, as_json, detail_values, form_time, rule_ids
from infracalc.web.pages import TEMPLATES
from infracalc.web.staff_enrollments import invitation_body
from tests.support.pages import assert_forms_are_guarded_and_labelled, render_page

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PERSON = Person(username="<bruno>", roles=frozenset({"casd-staff"}), acr="mfa", subject="s")
EVENT = AuditEventOut(
    seq=7,
    at=WHEN,
    actor="<evil>",
    action="governance.switch",
    project_id="<cohort>",
    governance="CASD",
    details={"reason": "<script>"},
    prev_hash="0" * 64,
    hash="1" * 64,
)
FOUND = FoundSessionOut(
    id="s1",
    project="<cohort>",
    username="<evil>",
    governance=Governance.CASD,
    opened_at=WHEN,
    closed_at=None,
    matching_events=2,
    snippet="<script>",
)
SESSION = SessionOut(
    id="s1",
    project="<cohort>",
    username="<evil>",
    governance=Governance.INFRACALC,
    opened_at=WHEN,
    closed_at=WHEN + timedelta(hours=1),
    events=[SessionEventOut(WHEN, "bubble", "code", "<script>", {"cell": "<evil>"})],
)
ENROLLMENT = EnrollmentOut(
    id="e1",
    email="ada@<evil>.org",
    first_name="<script>",
    last_name="L",
    username="ada",
    project="cohort",
    role=MemberRole.MEMBER,
    state=EnrollmentState.INVITED,
    expired=True,
    invited_by="<bruno>",
    invited_at=WHEN,
    expires_at=WHEN,
    networks=[],
    confirmed_at=None,
    completed_at=None,
    revoked_by=None,
    revoked_at=None,
)
ERRORS = {name: f"bad <{name}>" for name in ("project", "actor", "action", "since", "until", "user", "from", "to", "q")}
TYPED_AUDIT = {"project": "<typed>", "actor": "", "action": "", "since": "", "until": ""}
TYPED_SESSIONS = {"user": "<typed>", "project": "", "from": "", "to": "", "q": ""}
INVITE_ERRORS = {
    name: f"bad <{name}>"
    for name in ("email", "first_name", "last_name", "project", "role", "expires_in_hours", "username")
}

PAGES: list[tuple[str, dict[str, Any]]] = [
    (
        "console/staff_audit.html",
        {
            "typed": TYPED_AUDIT,
            "errors": {},
            "window": AuditWindow([EVENT], older_before=7, newer_after=7),
            "query": {"project": "<typed>"},
            "verification": Verification(True, 7, 1, None, None, "ok"),
            "fault_kind": None,
            "checkpoint": CheckpointOut(seq=5, at=WHEN, key_id="abcd"),
            "details": {7: [DetailValue("reason", "<script>"), DetailValue("long", "<evil> " * 40)]},
        },
    ),
    (
        "console/staff_audit.html",
        {
            "typed": TYPED_AUDIT,
            "errors": ERRORS,
            "window": None,
            "query": {},
            "verification": Verification(False, 2, 0, 3, "event 3 was <modified>", "bad"),
            "fault_kind": "modified",
            "checkpoint": None,
            "details": {},
        },
    ),
    (
        "console/staff_audit.html",
        {
            "typed": TYPED_AUDIT,
            "errors": {},
            "window": AuditWindow([], None, None),
            "query": {},
            "verification": None,
            "fault_kind": None,
            "checkpoint": None,
            "details": {},
        },
    ),
    (
        "console/staff_sessions.html",
        {"typed": TYPED_SESSIONS, "errors": {}, "page": SessionPageOut([FOUND], "c<ur>"), "query": {"user": "x"}},
    ),
    (
        "console/staff_sessions.html",
        {"typed": TYPED_SESSIONS, "errors": {**ERRORS, "cursor": "bad <cursor>"}, "page": None, "query": {}},
    ),
    (
        "console/staff_sessions.html",
        {"typed": TYPED_SESSIONS, "errors": {}, "page": SessionPageOut([], None), "query": {}},
    ),
    (
        "console/staff_session.html",
        {"session": SESSION, "summaries": ["<script>"], "details": [[DetailValue("cell", "<evil>")]]},
    ),
    (
        "console/staff_session.html",
        {"session": SessionOut("s2", "p", "u", Governance.CASD, WHEN, None, []), "summaries": [], "details": []},
    ),
    (
        "console/staff_enrollments.html",
        {
            "invitations": [ENROLLMENT],
            "projects": [ProjectSummary(id="cohort", title="Birth <cohort>", governance=Governance.CASD)],
            "roles": ["lead", "member"],
            "typed": {"email": "<typed>", "project": "cohort", "role": "lead"},
            "errors": INVITE_ERRORS,
            "outcome": EnrollmentLink(ENROLLMENT, "https://x/enroll/<tok>", emailed=False),
            "notice": "<notice>",
            "max_hours": 336,
        },
    ),
    (
        "console/staff_enrollments.html",
        {
            "invitations": [],
            "projects": [],
            "roles": ["lead", "member"],
            "typed": {},
            "errors": {},
            "outcome": None,
            "notice": None,
            "max_hours": 336,
        },
    ),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "values"), PAGES)
def test_every_oversight_page_renders_labels_its_fields_and_escapes(
    language: str, template: str, values: dict[str, Any]
) -> None:
    html = render_page(template, language, person=PERSON, staff=True, **values)
    assert f'<html lang="{language}">' in html
    assert "&lt;bruno&gt;" in html
    for link in ("/staff/audit", "/staff/sessions", "/staff/enrollments"):
        assert f'href="{link}"' in html  # the navigation bar of CASD staff
    for raw in ("<evil>", "<script>", "<cohort>", "<typed>", "<notice>", "<modified>", "<tok>", "<cursor>", "<ur>"):
        assert raw not in html, f"{raw} unescaped in {template}"
    for raw in re.findall(r"bad <[a-z_]+>", html):
        raise AssertionError(f"{raw} unescaped in {template}")
    assert_forms_are_guarded_and_labelled(html)


def test_the_field_errors_show_next_to_their_fields() -> None:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    _, values = PAGES[1]
    html = environment.get_template("console/staff_audit.html").render(
        lang="en", other_lang="fr", t=translator("en"), csrf_input="", person=PERSON, staff=True, **values
    )
    for name in ("project", "actor", "action", "since", "until"):
        assert f'id="{name}-error"' in html
    assert "Log NOT intact: event modified, at sequence number 3." in html


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-11-29T09:30", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),
        ("2026-11-29 09:30", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),
        ("2026-11-29", datetime(2026, 11, 29, tzinfo=UTC)),
        ("2026-11-29T09:30:00Z", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),
        ("2026-11-29T10:30+01:00", datetime(2026, 11, 29, 10, 30, tzinfo=timezone(timedelta(hours=1)))),
    ],
)
def test_a_typed_time_without_a_zone_is_utc(typed: str, expected: datetime) -> None:
    assert form_time(typed) == expected


@pytest.mark.parametrize("typed", ["yesterday", "2026-13-01", "29/11/2026", ""])
def test_a_typed_value_that_is_no_time_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        form_time(typed)


def test_details_show_on_one_line_keys_sorted() -> None:
    assert as_json({"b": [1, "é"], "a": None}) == '{"a": null, "b": [1, "é"]}'


def test_details_are_labelled_values_with_reasons_translated_and_rules_named_by_host() -> None:
    rule = "3fa4c2d19e8b7a60"
    details = {
        "reason": f"rule {rule} of project cohort allows api.example.org:443",
        "rule_id": rule,
        "ports": [443, 8443],
        "allow": True,
        "port": 443,
        "missing": None,
        "nested": {"b": 1, "a": [1, 2]},
        "justification": "x" * (FOLD_AT + 1),
        "expires_at": "2027-03-06T14:41:36.552219+01:00",
        "previous_role": "member",
    }
    shown = {value.label: value for value in detail_values(details, "fr", {rule: "*.example.org"})}
    assert shown["Raison"].text == "l'accès à *.example.org du projet cohort autorise api.example.org:443"
    assert shown["Accès"].text == f"{rule} (*.example.org)"
    assert (shown["Ports"].text, shown["Autorisé"].text, shown["missing"].text) == ("443, 8443", "oui", "—")
    assert shown["Expire le"].text == "2027-03-06 13:41:36 UTC"
    assert shown["Rôle précédent"].text == "member"
    assert shown["nested"].text == '{"a": [1, 2], "b": 1}'
    assert not shown["Raison"].folded
    assert shown["Justification"].folded
    assert shown["Justification"].start.endswith("…")
    assert len(shown["Justification"].start) < FOLD_AT
    english = {value.label: value.text for value in detail_values(details, "en", {})}
    assert english["Reason"] == details["reason"]  # no host known: the id stays
    assert (english["Allowed"], english["Previous role"]) == ("yes", "member")
    assert rule_ids([details, "denied by rule 0123456789abcdef"]) == {rule, "0123456789abcdef"}


def test_the_invitation_form_sends_what_the_api_takes() -> None:
    typed = {
        "email": " ada@example.org ",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "project": "cohort",
        "role": "lead",
        "expires_in_hours": "48",
        "username": "",
    }
    assert invitation_body(typed) == {
        "email": "ada@example.org",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "project": "cohort",
        "role": "lead",
        "expires_in_hours": 48,
    }
    with pytest.raises(ValueError, match="invalid literal"):
        invitation_body({**typed, "expires_in_hours": "two days"})


@pytest.mark.parametrize(
    ("problem", "kind"),
    [
        ("event 3 was modified: its contents no longer match its hash", "modified"),
        ("event 4 was inserted: event 5 links to event 3, skipping it", "inserted"),
        ("the log was truncated: it ends at seq 3 but ...", "truncated"),
        ("checkpoint at seq 2 has an invalid signature: it was forged or altered", "forged"),
        (None, None),
        ("something else", None),
    ],
)
def test_the_kind_of_tampering_is_read_from_the_problem(problem: str | None, kind: str | None) -> None:
    assert fault_kind(problem) == kind

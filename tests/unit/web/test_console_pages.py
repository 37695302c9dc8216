"""The console's templates and helpers: every page renders in both languages, labels every field, escapes values.

Also: only local paths are accepted as the page to come back to after login, and a login in
progress is believed only when the cookie carries this service's signature.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from infracalc.db import EgressMode, EgressRuleStatus, Governance, MemberRole
from infracalc.service.egress_rules.schemas import EgressCheckOut, EgressRuleOut
from infracalc.service.principals import Person
from infracalc.service.projects.schemas import MemberOut, ProjectOut
from infracalc.service.projects.service import SwitchConsequences
from infracalc.service.users.schemas import UserProject
from infracalc.web.i18n import LANGUAGES
from infracalc.web.login import _pending_login, _read_pending_login
from infracalc.web.sessions import digest, local_path, login_url
from tests.support.pages import assert_forms_are_guarded_and_labelled, render_page

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
PERSON = Person(username="<bruno>", roles=frozenset({"casd-staff"}), acr="mfa", subject="s")
RULE = EgressRuleOut(
    id="r1",
    project="cohort",
    host="api.<evil>.org",
    wildcard=False,
    pattern="api.<evil>.org",
    ports=[443],
    mode=EgressMode.INSPECT,
    opaque=False,
    methods=["GET", "HEAD"],
    path_prefixes=["/<v1>/"],
    max_request_bytes=1024,
    daily_upload_bytes=16 * 1024 * 1024,
    max_response_bytes=256 * 1024 * 1024,
    justification="<script>",
    expires_at=WHEN,
    status=EgressRuleStatus.REQUESTED,
    requested_by="bruno",
    requested_at=WHEN,
    decided_by=None,
    decided_at=None,
    decision_comment=None,
    revoked_by=None,
    revoked_at=None,
)
TUNNEL = msgspec.structs.replace(
    RULE, id="r2", mode=EgressMode.TUNNEL, opaque=True, methods=[], path_prefixes=[], max_request_bytes=1500
)
PROJECT = ProjectOut(
    id="cohort",
    title="Birth <cohort>",
    governance=Governance.INFRACALC,
    created_at=WHEN,
    members=[MemberOut("bruno", MemberRole.LEAD, WHEN)],
)
ERRORS = {
    "host": "bad <host>",
    "network": "bad <net>",
    "reason": "too <short>",
    "owner": "no <way>",
    "member_username": "no <user>",
    "id": "bad <id>",
}

PAGES: list[tuple[str, dict[str, Any]]] = [
    (
        "console/home.html",
        {
            "projects": [UserProject("cohort", "Birth <cohort>", Governance.CASD, MemberRole.LEAD)],
            "hub_links": {"cohort": "http://hub/hub/spawn/bruno/cohort"},
            "networks": ["203.0.113.0/24"],
            "network_rule": "<rule>",
            "address": "127.0.0.1/32",
            "outside_now": True,
            "networks_refusal": None,
            "typed": "<typed>",
            "errors": ERRORS,
            "confirm_outside": {"outside": "127.0.0.1/32", "network": "<net>", "action": "/networks"},
        },
    ),
    (
        "console/home.html",
        {
            "projects": [],
            "hub_links": {},
            "networks": [],
            "network_rule": "r",
            "address": None,
            "outside_now": False,
            "networks_refusal": "<refused>",
            "typed": "",
            "errors": {},
            "confirm_outside": None,
        },
    ),
    (
        "console/project.html",
        {
            "project": PROJECT,
            "rules": [RULE, TUNNEL],
            "lead": True,
            "requests": [RULE, TUNNEL],
            "checked": EgressCheckOut(allow=False, reason="<no rule>", rule_id=None),
            "check_reason": "<no rule>",
            "url": "https://<x>/",
            "url_error": None,
            "errors": ERRORS,
            "typed": {"host": "<typed>", "ports": "443", "mode": "tunnel"},
            "member_typed": {"member_username": "<typed>"},
            "member_errors": ERRORS,
            "tunnels_allowed": True,
            "notice": "<notice>",
            "request_refusal": None,
        },
    ),
    (
        "console/project.html",
        {
            "project": PROJECT,
            "rules": [],
            "lead": True,
            "requests": [],
            "checked": None,
            "check_reason": None,
            "url": "",
            "url_error": "bad <url>",
            "errors": {},
            "typed": {},
            "member_typed": {},
            "member_errors": {},
            "tunnels_allowed": False,
            "notice": None,
            "request_refusal": "<refused>",
        },
    ),
    ("console/member_remove.html", {"project": PROJECT, "member": MemberOut("<ada>", MemberRole.MEMBER, WHEN)}),
    (
        "console/staff_egress.html",
        {
            "waiting": [RULE, TUNNEL],
            "notice": "<n>",
            "errors": {"r1": {"comment": "<c>"}},
            "typed": {"r1": {"comment": "<typed>"}},
        },
    ),
    ("console/staff_egress.html", {"waiting": [], "notice": None, "errors": {}, "typed": {}}),
    (
        "console/staff_projects.html",
        {
            "projects": [PROJECT],
            "owners": ["CASD", "INFRACALC"],
            "typed": {"id": "<id>", "title": "<t>"},
            "errors": ERRORS,
        },
    ),
    (
        "console/governance.html",
        {
            "project": PROJECT,
            "typed": {"owner": "CASD", "reason": "<why>"},
            "owners": ["CASD", "INFRACALC"],
            "errors": ERRORS,
            "consequences": SwitchConsequences("cohort", Governance.INFRACALC, Governance.CASD, ["api.<x>.org"], 2),
        },
    ),
    (
        "console/governance.html",
        {
            "project": PROJECT,
            "typed": {"owner": "INFRACALC", "reason": "<why>"},
            "owners": ["INFRACALC"],
            "errors": {},
            "consequences": SwitchConsequences(
                "cohort", Governance.CASD, Governance.INFRACALC, ["api.<x>.org"], 2, refusal="<sensitive>"
            ),
        },
    ),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("template", "values"), PAGES)
def test_every_console_page_renders_labels_its_fields_and_escapes(
    language: str, template: str, values: dict[str, Any]
) -> None:
    html = render_page(template, language, person=PERSON, staff=True, **values)
    assert f'<html lang="{language}">' in html
    assert "&lt;bruno&gt;" in html  # the navigation bar names who is signed in
    assert 'action="/logout"' in html
    for raw in (
        "<evil>",
        "<script>",
        "<cohort>",
        "<typed>",
        "<host>",
        "<net>",
        "<notice>",
        "<no rule>",
        "<why>",
        "<v1>",
        "<refused>",
        "<rule>",
        "<ada>",
        "<sensitive>",
    ):
        assert raw not in html, f"{raw} unescaped in {template}"
    assert_forms_are_guarded_and_labelled(html)


@pytest.mark.parametrize("hub", [True, False])
def test_the_bubble_column_shows_only_when_there_is_a_hub_to_open_it_in(hub: bool) -> None:
    values = dict(PAGES[0][1])
    values["hub_links"] = {"cohort": "http://hub/hub/spawn/bruno/cohort"} if hub else {}
    html = render_page("console/home.html", "en", person=PERSON, staff=False, **values)
    assert ("Bubble" in html, "Open my bubble" in html) == (hub, hub)


@pytest.mark.parametrize("template", ["console/project.html", "console/staff_egress.html"])
def test_the_lead_and_the_approver_see_each_rules_mode_methods_paths_and_caps(template: str) -> None:
    values: dict[str, Any] = {"waiting": [RULE, TUNNEL], "notice": None, "errors": {}, "typed": {}}
    if template == "console/project.html":
        values = {**PAGES[2][1], "rules": [RULE, TUNNEL], "requests": [TUNNEL]}
    html = render_page(template, "en", person=PERSON, staff=True, **values)
    inspected = html.split('id="terms-r1"', 1)[1].split("</ul>", 1)[0]
    assert "inspected (each request decided)" in inspected
    assert "HTTP methods : GET, HEAD" in inspected
    assert "Path prefixes : /&lt;v1&gt;/" in inspected
    assert "body ≤ 1 KiB per request · 16 MiB sent a day per bubble · answer ≤ 256 MiB" in inspected
    opaque = html.split('id="terms-r2"', 1)[1].split("</ul>", 1)[0]
    assert "tunnel (opaque)" in opaque
    assert "opaque: the proxy sees host and port only" in opaque
    assert "HTTP methods : any" in opaque
    assert "body ≤ 1500 bytes per request" in opaque
    assert "(plain HTTP only: a tunnel is opaque)" in opaque
    french = render_page(template, "fr", person=PERSON, staff=True, **values)
    assert "tunnel (opaque)" in french
    assert "inspecté (chaque requête décidée)" in french


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/projects/cohort", "/projects/cohort"),
        ("/projects/x?url=https://a/", "/projects/x?url=https://a/"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_only_local_paths_are_followed_after_login(candidate: str | None, expected: str) -> None:
    assert local_path(candidate) == expected


def test_the_login_url_carries_the_page_to_come_back_to() -> None:
    assert login_url("/projects/a b") == "/login?next=/projects/a%20b"


def test_a_session_id_is_stored_as_its_sha256() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


class _Settings:
    web_secret = "s3cret"


class _Context:
    settings = _Settings()


def test_a_login_in_progress_is_believed_only_with_this_services_signature() -> None:
    context: Any = _Context()
    values = {"state": "st", "nonce": "no", "verifier": "ve", "next": "/x"}
    cookie = _pending_login(context, values)
    assert _read_pending_login(context, cookie) == values
    payload, _, signature = cookie.rpartition(".")
    assert _read_pending_login(context, f"{payload}.{'0' * len(signature)}") is None
    assert _read_pending_login(context, payload) is None
    assert _read_pending_login(context, None) is None
    other: Any = type("C", (), {"settings": type("S", (), {"web_secret": "other"})()})()
    assert _read_pending_login(other, cookie) is None


def test_where_tunnels_are_forbidden_the_form_offers_inspect_rules_only() -> None:
    values = {**PAGES[2][1], "tunnels_allowed": False}
    html = render_page("console/project.html", "en", person=PERSON, staff=True, **values)
    form = html.split('id="mode"', 1)[1].split("</select>", 1)[0]
    assert 'value="inspect"' in form
    assert 'value="tunnel"' not in form
    assert "This platform forbids tunnel rules" in html
    allowed = render_page("console/project.html", "en", person=PERSON, staff=True, **PAGES[2][1])
    assert 'value="tunnel"' in allowed
    assert "forbids tunnel rules" not in allowed

"""The console's guidance helpers: messages kept in no language, fields checked all at once, rules named by host.

Also: which requests get an HTML error page, and when an address lies outside a list of networks.
"""

from __future__ import annotations

from typing import Any

import pytest

from infracalc.service.projects.schemas import ProjectCreate
from infracalc.web.fields import field_errors
from infracalc.web.form_state import FormState, Said, because, said
from infracalc.web.networks import network_rule, outside
from infracalc.web.project_pages import REQUEST_DEFAULTS, request_body, request_errors
from infracalc.web.reasons import name_rules, translate_reason
from infracalc.web.staff_pages import PROJECT_SENTENCES

RULE = "3fa4c2d19e8b7a60"


def test_a_message_is_kept_in_no_language_and_said_in_the_pages() -> None:
    message = said(
        "staff.already_decided",
        detail=because(f"egress request {RULE} is already approved (by ada); reload to see its current state"),
    )
    kept = Said.from_json(message.to_json())
    assert kept == message
    assert kept.text("en").startswith("This request was decided meanwhile")
    assert kept.text("fr") == (
        "Cette demande a déjà été traitée entre-temps ; la liste est à jour. (la demande d'accès externe "
        f"{RULE} est déjà approuvée (par ada) ; rechargez la page pour voir son état actuel)"
    )


def test_a_form_state_comes_back_as_it_was_kept() -> None:
    state = FormState(
        "request",
        {"host": "<h>", "ports": "0"},
        {"ports": said("egress.ports_rule"), "host": because("the host name is empty")},
        notice=said("upload.refused.archive"),
        extra={"preview": True},
    )
    kept = FormState.from_json(state.to_json("tok", "/projects/p"))
    assert kept == state
    assert list(kept.error_texts("fr")) == ["ports", "host"]  # the form's order
    assert kept.error_texts("fr")["host"] == "Le nom d'hôte est vide"  # a sentence on its own
    assert kept.notice_text("en") == "Archives are not accepted: import the files themselves."


def test_every_refused_field_is_said_with_a_sentence_never_a_pattern() -> None:
    errors = field_errors(ProjectCreate, {"id": "Not A Slug", "title": "", "governance": "NOBODY"}, PROJECT_SENTENCES)
    assert list(errors) == ["id", "title", "governance"]
    text = errors["id"].text("en")
    assert text.startswith("3 to 64 characters: lowercase letters")
    assert "regex" not in text
    assert "^" not in text
    assert (
        field_errors(ProjectCreate, {"id": "births", "title": "Births", "governance": "CASD"}, PROJECT_SENTENCES) == {}
    )


def typed(**values: str) -> dict[str, str]:
    base = {
        "host": "api.example.org",
        "ports": REQUEST_DEFAULTS["ports"],
        "mode": REQUEST_DEFAULTS["mode"],
        "methods": "",
        "path_prefixes": "",
        "expires_in_days": REQUEST_DEFAULTS["expires_in_days"],
        "justification": "Geocoding of the survey addresses",
    }
    return {**base, **values}


def refused(*, tunnels: bool = True, **values: str) -> dict[str, str]:
    body, unreadable = request_body(typed(**values))
    return {name: message.text("en") for name, message in request_errors(body, unreadable, tunnels=tunnels).items()}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {}),
        ({"methods": "get, post", "path_prefixes": "/v1/\n/v2/"}, {}),
        ({"mode": "tunnel"}, {}),
        ({"mode": "tunnel", "methods": "GET"}, {"methods": "cannot restrict methods"}),
        ({"mode": "tunnel", "path_prefixes": "/v1/"}, {"path_prefixes": "cannot restrict path prefixes"}),
        ({"mode": "opaque"}, {"mode": "Choose an inspected rule or a tunnel."}),
        ({"ports": "443, https"}, {"ports": "“https” is not a port number."}),
        ({"methods": "GE(T"}, {"methods": "Give at most 16 HTTP methods"}),
    ],
)
def test_the_request_form_follows_what_the_rules_mode_allows(values: dict[str, str], expected: dict[str, str]) -> None:
    errors = refused(**values)
    assert list(errors) == list(expected)
    for name, part in expected.items():
        assert part in errors[name]


def test_the_request_form_refuses_a_tunnel_where_the_platform_forbids_them() -> None:
    errors = refused(tunnels=False, mode="tunnel")
    assert list(errors) == ["mode"]
    assert "forbids tunnel rules" in errors["mode"]
    assert refused(tunnels=False) == {}


def test_every_refused_field_of_a_request_comes_at_once_in_the_forms_order() -> None:
    errors = refused(host="*", ports="0", mode="opaque", expires_in_days="400", justification="short")
    assert list(errors) == ["host", "ports", "mode", "expires_in_days", "justification"]
    assert errors["justification"] == "Explain why the project needs it, in 20 to 4000 characters."


def test_rules_are_named_by_host_where_the_policy_names_them_by_id() -> None:
    reason = f"rule {RULE} restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)"
    named = name_rules(reason, {RULE: "*.example.org"})
    assert named == (
        "the rule for *.example.org restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)"
    )
    assert translate_reason(named, "fr").startswith("l'accès à *.example.org n'autorise que les appels HTTP en clair")
    assert name_rules(reason, {}) == reason  # an unknown id stays, and keeps its own French
    stale = f"egress request {RULE} is already denied (by ada); reload to see its current state"
    assert translate_reason(name_rules(stale, {RULE: "api.example.org"}), "fr") == (
        "la demande d'accès à api.example.org est déjà refusée (par ada) ; rechargez la page pour voir son état actuel"
    )
    assert translate_reason(reason, "fr").startswith(f"l'accès {RULE} restreint")


@pytest.mark.parametrize(
    ("address", "networks", "expected"),
    [
        ("127.0.0.1/32", ["203.0.113.0/24"], True),
        ("203.0.113.7/32", ["203.0.113.0/24"], False),
        ("2001:db8::1/128", ["203.0.113.0/24", "2001:db8::/48"], False),
        ("2001:db8::1/128", ["203.0.113.0/24"], True),
        ("127.0.0.1/32", [], False),  # no list: nothing narrows where one signs in from
        (None, ["203.0.113.0/24"], False),  # unknown: no warning to give
    ],
)
def test_an_address_outside_the_networks_being_saved(address: str | None, networks: list[str], expected: bool) -> None:
    assert outside(address, networks) is expected


def test_the_networks_rule_is_said_with_the_domains_numbers() -> None:
    assert "IPv4 /16 and IPv6 /48 at widest, 20 networks at most" in network_rule("en")
    assert "au plus /16 en IPv4 et /48 en IPv6" in network_rule("fr")


class _Request:
    def __init__(self, path: str, accept: str) -> None:
        self.url = type("U", (), {"path": path})()
        self.headers = {"accept": accept}


@pytest.mark.parametrize(
    ("path", "accept", "page"),
    [
        ("/no/such/page", "text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("/no/such/page", "*/*", False),
        ("/api/v1/projects", "text/html", False),
        ("/api", "text/html", False),
        ("/health", "text/html", False),
        ("/schema/openapi.json", "text/html", False),
        ("/projects/x/egress-requests", "text/html", True),
    ],
)
def test_a_browser_asking_for_a_page_gets_one_and_programs_get_json(path: str, accept: str, page: bool) -> None:
    from infracalc.web.errors import wants_page

    request: Any = _Request(path, accept)
    assert wants_page(request) is page

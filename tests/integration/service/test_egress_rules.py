"""Egress allowlist workflow: a lead asks, CASD staff decide, OPA holds approved rules only, check asks the policy."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
import requests

from infracalc.service.context import ServiceContext
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration

JUSTIFICATION = "the cohort study needs the public weather API"


async def setup_project(service: ServiceUnderTest, people: People, slug: str = "cohort") -> None:
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201, created.text
    for who, role in (("lead", "lead"), ("researcher", "member")):
        added = await service.client.put(
            f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code == 200, added.text


async def request_rule(service: ServiceUnderTest, people: People, **body: Any) -> dict[str, Any]:
    answer = await service.client.post(
        "/api/v1/projects/cohort/egress-requests",
        json={"host": "api.example.org", "justification": JUSTIFICATION, **body},
        headers=people.headers("lead"),
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def approve(service: ServiceUnderTest, people: People, rule_id: str) -> dict[str, Any]:
    answer = await service.client.post(
        f"/api/v1/egress-requests/{rule_id}/approve",
        json={"comment": "fine for a year"},
        headers=people.headers("staff"),
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def check(service: ServiceUnderTest, people: People, url: str, who: str = "researcher") -> dict[str, Any]:
    answer = await service.client.get(
        "/api/v1/projects/cohort/egress/check", params={"url": url}, headers=people.headers(who)
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_lead_requests_staff_approve_and_the_policy_allows_it(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    requested = await request_rule(service, people, host="API.Example.org.")
    assert (requested["host"], requested["wildcard"], requested["ports"], requested["status"]) == (
        "api.example.org",
        False,
        [443],
        "requested",
    )
    assert requested["requested_by"] == people.username("lead")
    assert service.opa_data("rules") == {"cohort": {}}  # a request is not a rule
    assert service.opa_data("rule_hosts") == {"cohort": {}}
    rules = await service.client.get("/api/v1/projects/cohort/egress-rules", headers=people.headers("researcher"))
    assert rules.json() == []
    assert (requested["mode"], requested["opaque"], requested["methods"]) == ("inspect", False, ["GET", "HEAD"])
    assert (requested["max_request_bytes"], requested["daily_upload_bytes"], requested["max_response_bytes"]) == (
        1024 * 1024,
        16 * 1024 * 1024,
        256 * 1024 * 1024,
    )
    denied = await check(service, people, "https://api.example.org/v1/items")
    assert denied == {
        "allow": False,
        "reason": "no approved rule of project cohort allows api.example.org:443",
        "rule_id": None,
        "mode": None,
    }

    rule_id = requested["id"]
    approved = await approve(service, people, rule_id)
    assert (approved["status"], approved["decided_by"], approved["decision_comment"]) == (
        "approved",
        people.username("staff"),
        "fine for a year",
    )
    rules = await service.client.get("/api/v1/projects/cohort/egress-rules", headers=people.headers("researcher"))
    assert [rule["id"] for rule in rules.json()] == [rule_id]
    document = service.opa_data("rules")["cohort"][rule_id]
    assert {key: value for key, value in document.items() if key != "expires_at_ns"} == {
        "host": "api.example.org",
        "wildcard": False,
        "ports": [443],
        "mode": "inspect",
        "methods": ["GET", "HEAD"],
        "path_prefixes": [],
        "max_request_bytes": 1024 * 1024,
        "daily_upload_bytes": 16 * 1024 * 1024,
        "max_response_bytes": 256 * 1024 * 1024,
    }
    assert isinstance(document["expires_at_ns"], int)
    assert service.opa_data("rule_hosts") == {"cohort": {"api.example.org": {rule_id: True}}}

    # An https URL is asked about twice through an inspect rule: the CONNECT, then the GET inside.
    assert await check(service, people, "https://api.example.org/v1/items") == {
        "allow": True,
        "reason": f"rule {rule_id} of project cohort allows api.example.org:443",
        "rule_id": rule_id,
        "mode": "inspect",
    }
    allowed = await check(service, people, "https://api.example.org/v1/items", who="staff")
    assert (allowed["allow"], allowed["rule_id"]) == (True, rule_id)
    other = await check(service, people, "https://other.example.org/")
    assert other == {
        "allow": False,
        "reason": "no approved rule of project cohort allows other.example.org:443",
        "rule_id": None,
        "mode": None,
    }
    wrong_port = await check(service, people, "https://api.example.org:8443/")
    assert wrong_port["allow"] is False

    staff = people.headers("staff")
    events = (await service.client.get("/api/v1/audit?action=egress.request", headers=staff)).json()["events"]
    assert events[0]["details"]["host"] == "api.example.org"
    assert events[0]["details"]["justification"] == JUSTIFICATION
    events = (await service.client.get("/api/v1/audit?action=egress.approve", headers=staff)).json()["events"]
    assert (events[0]["details"]["rule"], events[0]["details"]["comment"]) == (rule_id, "fine for a year")

    switched = await service.client.put(
        "/api/v1/projects/cohort/governance", json={"owner": "CASD", "reason": "sensitive data arrives"}, headers=staff
    )
    assert switched.status_code == 200, switched.text
    assert await check(service, people, "https://api.example.org/v1/items") == {
        "allow": False,
        "reason": "project cohort is under CASD governance: no external API",
        "rule_id": None,
        "mode": None,
    }


async def test_inspect_rules_restrict_method_and_path_over_plain_http_and_https(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    rule = await request_rule(
        service,
        people,
        host="*.data.example.org",
        ports=[80],
        methods=["GET"],
        path_prefixes=["/v1/"],
    )
    assert (rule["host"], rule["wildcard"], rule["pattern"]) == ("data.example.org", True, "*.data.example.org")
    await approve(service, people, rule["id"])
    # A wildcard rule is indexed under its base domain, where the policy looks for a parent domain.
    assert service.opa_data("rule_hosts") == {"cohort": {"data.example.org": {rule["id"]: True}}}
    # A full resync (as after an OPA restart) pushes the index again, from the same rows.
    pushed = (service.opa_data("rules"), service.opa_data("rule_hosts"))
    requests.delete(f"{service.opa.url}/v1/data/store/infracalc/rule_hosts", timeout=5).raise_for_status()
    policy_data = service.app.state.context.policy_data
    policy_data.generation = None  # what the watch sees when OPA lost its data
    deadline = time.monotonic() + 10
    while policy_data.generation is None:
        assert time.monotonic() < deadline, "the service did not resync"
        await asyncio.sleep(0.2)
    assert (service.opa_data("rules"), service.opa_data("rule_hosts")) == pushed
    assert (await check(service, people, "http://a.data.example.org/v1/x"))["allow"] is True
    assert (await check(service, people, "http://a.data.example.org/v2/x"))["allow"] is False
    assert (await check(service, people, "http://data.example.org/v1/x"))["allow"] is False
    # Over HTTPS the restrictions bind too: the proxy inspects the request inside the CONNECT.
    inspected = await check(service, people, "https://a.data.example.org:80/v1/x?key=secret")
    assert (inspected["allow"], inspected["mode"]) == (True, "inspect")
    outside = await check(service, people, "https://a.data.example.org:80/v2/x?key=secret")
    assert outside == {
        "allow": False,
        "reason": "no approved rule of project cohort allows GET /v2/x on a.data.example.org:80",
        "rule_id": None,
        "mode": "inspect",
    }


async def test_a_tunnel_rule_is_opaque_and_restricts_nothing(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    rule = await request_rule(service, people, mode="tunnel")
    assert (rule["mode"], rule["opaque"], rule["methods"], rule["path_prefixes"]) == ("tunnel", True, [], [])
    await approve(service, people, rule["id"])
    assert service.opa_data("rules")["cohort"][rule["id"]]["mode"] == "tunnel"
    assert await check(service, people, "https://api.example.org/anything?at=all") == {
        "allow": True,
        "reason": f"rule {rule['id']} of project cohort allows api.example.org:443",
        "rule_id": rule["id"],
        "mode": "tunnel",
    }
    staff = people.headers("staff")
    events = (await service.client.get("/api/v1/audit?action=egress.request", headers=staff)).json()["events"]
    assert events[0]["details"]["mode"] == "tunnel"

    before = await service.snapshot()
    for field, listed in (("methods", ["GET"]), ("path_prefixes", ["/v1/"])):
        answer = await service.client.post(
            "/api/v1/projects/cohort/egress-requests",
            json={"host": "api.example.org", "justification": JUSTIFICATION, "mode": "tunnel", field: listed},
            headers=people.headers("lead"),
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        assert "a tunnel rule carries TLS unopened" in answer.json()["message"]
    assert await service.snapshot() == before


async def test_a_platform_that_forbids_tunnels_refuses_to_record_or_approve_one(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    waiting = await request_rule(service, people, mode="tunnel")  # asked for before the setting changed
    context: ServiceContext = service.app.state.context
    forbidding = dataclasses.replace(context.settings, egress_tunnels_allowed=False)
    service.app.state.context = dataclasses.replace(context, settings=forbidding)
    before = await service.snapshot()
    asked = await service.client.post(
        "/api/v1/projects/cohort/egress-requests",
        json={"host": "api.example.org", "justification": JUSTIFICATION, "mode": "tunnel"},
        headers=people.headers("lead"),
    )
    assert asked.status_code == 422, asked.text
    assert asked.json()["field"] == "mode"
    assert "INFRACALC_EGRESS_TUNNEL_RULES=forbid" in asked.json()["message"]
    approved = await service.client.post(
        f"/api/v1/egress-requests/{waiting['id']}/approve", json={"comment": "ok"}, headers=people.headers("staff")
    )
    assert approved.status_code == 409, approved.text
    assert "forbids" in approved.json()["message"]
    assert await service.snapshot() == before
    inspected = await request_rule(service, people)
    assert inspected["mode"] == "inspect"


async def test_caps_are_recorded_and_pushed(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    rule = await request_rule(
        service,
        people,
        methods=["GET", "POST"],
        path_prefixes=["/v1/"],
        max_request_bytes=0,
        daily_upload_bytes=5000,
        max_response_bytes=10**9,
    )
    assert (rule["methods"], rule["max_request_bytes"], rule["daily_upload_bytes"], rule["max_response_bytes"]) == (
        ["GET", "POST"],
        0,
        5000,
        10**9,
    )
    await approve(service, people, rule["id"])
    document = service.opa_data("rules")["cohort"][rule["id"]]
    assert (document["max_request_bytes"], document["daily_upload_bytes"], document["max_response_bytes"]) == (
        0,
        5000,
        10**9,
    )


async def test_revoking_a_rule_removes_it_from_opa(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    rule_id = (await request_rule(service, people))["id"]
    await approve(service, people, rule_id)
    assert rule_id in service.opa_data("rules")["cohort"]
    assert service.opa_data("rule_hosts") == {"cohort": {"api.example.org": {rule_id: True}}}

    revoked = await service.client.delete(
        f"/api/v1/projects/cohort/egress-rules/{rule_id}", headers=people.headers("lead")
    )
    assert revoked.status_code == 204, revoked.text
    assert service.opa_data("rules") == {"cohort": {}}
    assert service.opa_data("rule_hosts") == {"cohort": {}}
    rules = await service.client.get("/api/v1/projects/cohort/egress-rules", headers=people.headers("lead"))
    assert rules.json() == []
    assert (await check(service, people, "https://api.example.org/"))["allow"] is False
    requests = await service.client.get("/api/v1/projects/cohort/egress-requests", headers=people.headers("lead"))
    assert [(r["id"], r["status"], r["revoked_by"]) for r in requests.json()] == [
        (rule_id, "revoked", people.username("lead"))
    ]
    events = (await service.client.get("/api/v1/audit?action=egress.revoke", headers=people.headers("staff"))).json()[
        "events"
    ]
    assert events[0]["details"]["rule"] == rule_id

    before = await service.snapshot()
    again = await service.client.delete(
        f"/api/v1/projects/cohort/egress-rules/{rule_id}", headers=people.headers("staff")
    )
    assert again.status_code == 409
    assert "only an approved rule can be revoked" in again.json()["message"]
    assert await service.snapshot() == before


async def test_requests_list_newest_first_and_denied_ones_never_reach_opa(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_project(service, people)
    first = (await request_rule(service, people, host="one.example.org"))["id"]
    second = (await request_rule(service, people, host="two.example.org"))["id"]
    denied = await service.client.post(
        f"/api/v1/egress-requests/{first}/deny", json={"comment": "not needed"}, headers=people.headers("staff")
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied"
    listed = await service.client.get("/api/v1/projects/cohort/egress-requests", headers=people.headers("researcher"))
    assert [(r["id"], r["status"]) for r in listed.json()] == [(second, "requested"), (first, "denied")]
    assert service.opa_data("rules") == {"cohort": {}}
    assert service.opa_data("rule_hosts") == {"cohort": {}}
    outsider = await service.client.get("/api/v1/projects/cohort/egress-requests", headers=people.headers("outsider"))
    assert outsider.status_code == 403


async def test_refused_changes_leave_everything_unchanged(service: ServiceUnderTest, people: People) -> None:
    await setup_project(service, people)
    rule_id = (await request_rule(service, people))["id"]
    body = {"host": "api.example.org", "justification": JUSTIFICATION}

    before = await service.snapshot()
    by_researcher = await service.client.post(
        "/api/v1/projects/cohort/egress-requests", json=body, headers=people.headers("researcher")
    )
    assert by_researcher.status_code == 403
    assert by_researcher.json()["message"] == (
        "only CASD staff or a lead of project cohort may request or revoke its egress rules"
    )
    by_lead = await service.client.post(
        f"/api/v1/egress-requests/{rule_id}/approve", json={"comment": "mine"}, headers=people.headers("lead")
    )
    assert by_lead.status_code == 403
    assert by_lead.json()["message"] == "only CASD staff may approve or deny egress requests"
    unknown = await service.client.post(
        "/api/v1/egress-requests/0123456789abcdef/approve", json={"comment": "?"}, headers=people.headers("staff")
    )
    assert unknown.status_code == 404
    not_approved = await service.client.delete(
        f"/api/v1/projects/cohort/egress-rules/{rule_id}", headers=people.headers("lead")
    )
    assert not_approved.status_code == 409
    assert await service.snapshot() == before

    await approve(service, people, rule_id)
    before = await service.snapshot()
    for verb in ("approve", "deny"):
        twice = await service.client.post(
            f"/api/v1/egress-requests/{rule_id}/{verb}", json={"comment": "again"}, headers=people.headers("staff")
        )
        assert twice.status_code == 409
        assert twice.json()["message"].startswith(f"egress request {rule_id} is already approved")
    by_researcher = await service.client.delete(
        f"/api/v1/projects/cohort/egress-rules/{rule_id}", headers=people.headers("researcher")
    )
    assert by_researcher.status_code == 403
    await setup_project(service, people, "weather")
    before = await service.snapshot()
    elsewhere = await service.client.delete(
        f"/api/v1/projects/weather/egress-rules/{rule_id}", headers=people.headers("staff")
    )
    assert elsewhere.status_code == 404
    assert await service.snapshot() == before


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"host": "*.com"}, "host", "public suffix"),
        ({"host": "*.co.uk"}, "host", "public suffix"),
        ({"host": "*"}, "host", "bare '*'"),
        ({"host": "10.0.0.1"}, "host", "IP literals are not host names"),
        ({"host": "[::1]"}, "host", "IPv6 literal"),
        ({"host": "exa mple.org"}, "host", "whitespace"),
        ({"host": "api.*.example.org"}, "host", "first label"),
        ({"ports": [0]}, "ports", None),
        ({"ports": [70000]}, "ports", None),
        ({"ports": []}, "ports", None),
        ({"methods": ["get"]}, "methods", None),
        ({"path_prefixes": ["v1/"]}, "path_prefixes", None),
        # plain_http_only is gone: an inspect rule's methods and paths bind HTTPS too.
        ({"methods": ["GET"], "plain_http_only": True}, None, None),
        ({"justification": "because"}, "justification", None),
        ({"expires_in_days": 400}, "expires_in_days", None),
        ({"expires_in_days": 0}, "expires_in_days", None),
        ({"mode": "sideways"}, "mode", None),
        ({"max_request_bytes": -1}, "max_request_bytes", None),
        ({"daily_upload_bytes": 2**41}, "daily_upload_bytes", None),
        ({"max_response_bytes": "lots"}, "max_response_bytes", None),
        ({"colour": "red"}, None, None),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(
    service: ServiceUnderTest, people: People, change: dict[str, Any], field: str | None, message: str | None
) -> None:
    await setup_project(service, people)
    before = await service.snapshot()
    body = {"host": "api.example.org", "justification": JUSTIFICATION, **change}
    answer = await service.client.post(
        "/api/v1/projects/cohort/egress-requests", json=body, headers=people.headers("lead")
    )
    assert answer.status_code == 422, answer.text
    if field is not None:
        assert answer.json()["field"].split("[")[0] == field
    if message is not None:
        assert message in answer.json()["message"]
    assert await service.snapshot() == before


@pytest.mark.parametrize("url", ["api.example.org/v1", "ftp://api.example.org/", "https://", "https://a.org:99999/"])
async def test_check_refuses_a_malformed_url(service: ServiceUnderTest, people: People, url: str) -> None:
    await setup_project(service, people)
    answer = await service.client.get(
        "/api/v1/projects/cohort/egress/check", params={"url": url}, headers=people.headers("researcher")
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "url"

"""Unsound JSON never reaches a route: every route that takes a body answers 422 for deep nesting and duplicate keys.

The routes are read from the service's own OpenAPI document, so a route added later is covered without
editing this file. Each is called by the caller it is meant for (its guards run before the body is read).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from infracalc.service.json_input import MAX_DEPTH
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration

#: A body a thousand arrays deep: the depth at which msgspec and the standard library give up with RecursionError.
THOUSAND_DEEP = b"[" * 1000 + b"]" * 1000
#: One level past the limit, inside an object (so that only the nesting is wrong).
ONE_TOO_DEEP = b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
#: Exactly at the limit: refused, if at all, by the route's schema, not for its nesting.
AT_THE_LIMIT = b'{"a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
DUPLICATE_KEY = b'{"comment": "first", "comment": "second"}'


async def _callers(service: ServiceUnderTest, people: People) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A bubble of a fresh project (its session id, for the code route) and the header of each kind of caller."""
    staff = people.headers("staff")
    created = await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "Cohort"}, headers=staff)
    assert created.status_code == 201, created.text
    researcher = people.username("researcher")
    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{researcher}", json={"role": "member"}, headers=staff
    )
    assert added.status_code == 200, added.text
    hub = people.hub_headers()
    bubble = await service.client.post(
        "/api/v1/bubbles", json={"project": "cohort", "username": researcher, "address": None}, headers=hub
    )
    assert bubble.status_code == 201, bubble.text
    return {"session_id": bubble.json()["id"]}, {
        "staff": staff,
        "hub": hub,
        "bubble": {"Authorization": f"Bearer {bubble.json()['token']}"},
        "proxy": service.proxy_headers(),
    }


def _caller_of(path: str) -> str:
    """Who may call ``path`` at all (the routes with guards); CASD staff for the rest."""
    if path.endswith("/code"):
        return "bubble"
    if path.startswith("/api/v1/sessions/") and path.endswith("/events"):
        return "hub"
    if path == "/api/v1/egress/events":
        return "proxy"
    return "staff"


def _json_routes(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    )


async def test_every_json_route_refuses_deep_nesting_and_duplicate_keys(
    service: ServiceUnderTest, people: People
) -> None:
    ids, headers = await _callers(service, people)
    schema = (await service.client.get("/schema/openapi.json")).json()
    routes = _json_routes(schema)
    # The routes the issue named, at least: if the document lost them, this test would prove nothing.
    assert {
        ("POST", "/api/v1/projects"),
        ("POST", "/api/v1/projects/{project_id}/egress-requests"),
        ("POST", "/api/v1/sessions/{session_id}/code"),
        ("POST", "/api/v1/egress/events"),
    } <= set(routes)
    known = {**ids, "project_id": "cohort", "username": people.username("researcher")}
    before = await service.snapshot()
    for method, template in routes:
        # Other ids: any value will do, the body is refused before the route looks for them.
        path = re.sub(r"\{(\w+)\}", lambda match: known.get(match[1], "some-id"), template)
        caller = {**headers[_caller_of(template)], "Content-Type": "application/json"}
        for body, why in ((THOUSAND_DEEP, "nested deeper"), (ONE_TOO_DEEP, "nested deeper"), (DUPLICATE_KEY, "twice")):
            answer = await service.client.request(method, path, content=body, headers=caller)
            assert answer.status_code == 422, (method, template, body[:20], answer.text)
            payload = answer.json()
            assert payload["error"] == "invalid_request"
            assert why in payload["message"], (method, template, payload)
        at_limit = await service.client.request(method, path, content=AT_THE_LIMIT, headers=caller)
        assert at_limit.status_code < 500, (method, template, at_limit.text)
        assert "nested deeper" not in at_limit.text
    assert await service.snapshot() == before


async def test_a_duplicate_key_is_refused_rather_than_the_last_one_taken(
    service: ServiceUnderTest, people: People
) -> None:
    staff = {**people.headers("staff"), "Content-Type": "application/json"}
    created = await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "Cohort"}, headers=staff)
    assert created.status_code == 201
    before = await service.snapshot()
    answer = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}",
        content=b'{"role": "member", "role": "lead"}',
        headers=staff,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "the key 'role' appears twice in one JSON object"
    assert await service.snapshot() == before


async def test_an_export_form_refuses_deep_or_duplicated_contributors(
    service: ServiceUnderTest, people: People
) -> None:
    _, headers = await _callers(service, people)
    before = await service.snapshot()
    for contributors, why in ((THOUSAND_DEEP.decode(), "nested deeper"), ('{"a|b": [1], "a|b": [2]}', "twice")):
        answer = await service.client.post(
            "/api/v1/projects/cohort/exports",
            files={"file": ("table.csv", b"group,count\na,12\n", "text/csv")},
            data={"justification": "A table of counts for the paper, by group.", "contributors": contributors},
            headers=headers["bubble"],
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "contributors"
        assert why in answer.json()["message"]
    assert await service.snapshot() == before

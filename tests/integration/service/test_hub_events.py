"""The hub's events in a bubble's session: from the hub only, into open sessions only, small, and not audited."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_egress_events import start_bubble

pytestmark = pytest.mark.integration


def events_url(session_id: str) -> str:
    return f"/api/v1/sessions/{session_id}/events"


async def timeline(service: ServiceUnderTest, people: People, session_id: str) -> list[dict[str, Any]]:
    answer = await service.client.get(f"/api/v1/sessions/{session_id}", headers=people.headers("staff"))
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def test_the_hub_adds_its_events_to_an_open_session(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people)
    researcher = people.username("researcher")
    hub = people.hub_headers()
    audit_before = (await service.snapshot())["audit_head"]
    spawn = await service.client.post(
        events_url(bubble_id),
        json={
            "kind": "hub.spawn",
            "summary": f"{researcher} started the bubble of project cohort",
            "details": {"username": researcher},
        },
        headers=hub,
    )
    assert spawn.status_code == 201, spawn.text
    recorded = spawn.json()
    assert (recorded["source"], recorded["kind"], recorded["details"]) == ("hub", "hub.spawn", {"username": researcher})
    stop = await service.client.post(
        events_url(bubble_id), json={"kind": "hub.stop", "summary": "stopped\nby the user"}, headers=hub
    )
    assert stop.status_code == 201, stop.text

    events = await timeline(service, people, bubble_id)
    assert [(e["source"], e["kind"]) for e in events] == [
        ("service", "session.open"),
        ("hub", "hub.spawn"),
        ("hub", "hub.stop"),
    ]
    assert events[1]["summary"] == f"{researcher} started the bubble of project cohort"
    assert events[1]["at"] == recorded["at"]
    assert (events[2]["summary"], events[2]["details"]) == ("stopped\\nby the user", {})
    # The session is the record of these events: the audit log has none of them.
    assert (await service.snapshot())["audit_head"] == audit_before


async def test_a_closed_session_takes_no_more_hub_events(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people)
    hub = people.hub_headers()
    assert (await service.client.delete(f"/api/v1/bubbles/{bubble_id}", headers=hub)).status_code == 204
    before = await service.snapshot()
    answer = await service.client.post(
        events_url(bubble_id), json={"kind": "hub.stop", "summary": "stopped"}, headers=hub
    )
    assert answer.status_code == 409, answer.text
    message = answer.json()["message"]
    assert message.startswith(f"session {bubble_id!r} was closed at ")
    assert message.endswith("(its bubble was stopped): it takes no more hub events")
    assert await service.snapshot() == before


async def test_an_unknown_session_is_404(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    before = await service.snapshot()
    answer = await service.client.post(
        events_url("0000000000000000"), json={"kind": "hub.login", "summary": "signed in"}, headers=people.hub_headers()
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["message"] == "no session '0000000000000000'"
    assert await service.snapshot() == before


async def test_only_the_hub_records_session_events(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people)
    token = (
        await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=people.hub_headers(),
        )
    ).json()["token"]
    callers = {
        "staff": (people.headers("staff"), "only the hub may record session events"),
        "researcher": (people.headers("researcher"), "only the hub may record session events"),
        "bubble": ({"Authorization": f"Bearer {token}"}, "bubbles may only read their own project"),
        "proxy": (service.proxy_headers(), "the egress proxy may only record egress events"),
    }
    before = await service.snapshot()
    for who, (headers, reason) in callers.items():
        answer = await service.client.post(
            events_url(bubble_id), json={"kind": "hub.spawn", "summary": "forged"}, headers=headers
        )
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["message"] == reason
        # Refused before the body is read: a malformed one is refused the same way.
        malformed = await service.client.post(events_url(bubble_id), json={"kind": 1}, headers=headers)
        assert malformed.status_code == 403, (who, malformed.text)
    assert await service.snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "hub.restart", "summary": "s"}, "kind"),
        ({"kind": "egress.connection.allow", "summary": "s"}, "kind"),
        ({"kind": "hub.spawn", "summary": ""}, "summary"),
        ({"kind": "hub.spawn", "summary": "x" * 501}, "summary"),
        ({"kind": "hub.spawn", "summary": "s", "details": {"blob": "x" * 4096}}, "details"),
        ({"kind": "hub.spawn", "summary": "s", "details": ["not", "an", "object"]}, "details"),
        # The service dates the event itself; the body as a whole is at fault.
        ({"kind": "hub.spawn", "summary": "s", "at": "2030-01-01T00:00:00Z"}, "data"),
        ({"summary": "s"}, "data"),
    ],
)
async def test_malformed_hub_events_are_422_and_nothing_is_written(
    service: ServiceUnderTest, people: People, body: dict[str, Any], field: str
) -> None:
    bubble_id = await start_bubble(service, people)
    before = await service.snapshot()
    answer = await service.client.post(events_url(bubble_id), json=body, headers=people.hub_headers())
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert await service.snapshot() == before

"""Sessions: opened when the hub registers a bubble, closed when it is revoked, read by CASD staff only."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.fixtures.service import People, ServiceUnderTest
from tests.integration.service.test_egress_events import start_bubble

pytestmark = pytest.mark.integration


async def test_registering_opens_the_session_and_revoking_closes_it(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people, governance="CASD")
    staff = people.headers("staff")
    opened = await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=staff)
    assert opened.status_code == 200, opened.text
    session = opened.json()
    assert (session["project"], session["username"], session["governance"], session["closed_at"]) == (
        "cohort",
        people.username("researcher"),
        "CASD",
        None,
    )
    (opening,) = session["events"]
    assert (opening["source"], opening["kind"], opening["at"]) == ("service", "session.open", session["opened_at"])
    assert (
        opening["summary"] == f"session opened for {people.username('researcher')} on project cohort (CASD governance)"
    )

    hub = people.hub_headers()
    assert (await service.client.delete(f"/api/v1/bubbles/{bubble_id}", headers=hub)).status_code == 204
    assert (await service.client.delete(f"/api/v1/bubbles/{bubble_id}", headers=hub)).status_code == 204
    closed = (await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=staff)).json()
    assert closed["closed_at"] is not None
    assert datetime.fromisoformat(closed["closed_at"]) >= datetime.fromisoformat(closed["opened_at"])
    assert [(e["source"], e["kind"]) for e in closed["events"]] == [
        ("service", "session.open"),
        ("service", "session.close"),
    ], "revoking twice closes once"


async def test_a_refused_registration_opens_no_session(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    before = await service.snapshot()
    refused = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": people.username("outsider"), "address": None},
        headers=people.hub_headers(),
    )
    assert refused.status_code == 403
    assert await service.snapshot() == before


@pytest.mark.parametrize("who", ["researcher", "lead", "hub", "bubble", "proxy"])
async def test_only_casd_staff_read_sessions(service: ServiceUnderTest, people: People, who: str) -> None:
    bubble_id = await start_bubble(service, people)
    token = (
        await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=people.hub_headers(),
        )
    ).json()["token"]
    headers = {
        "researcher": people.headers("researcher"),
        "lead": people.headers("lead"),
        "hub": people.hub_headers(),
        "bubble": {"Authorization": f"Bearer {token}"},
        "proxy": service.proxy_headers(),
    }[who]
    answer = await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=headers)
    assert answer.status_code == 403, answer.text
    reasons = {
        "researcher": "only CASD staff may read sessions",
        "lead": "only CASD staff may read sessions",
        "proxy": "the egress proxy may only record egress events",
    }
    if who in reasons:
        assert answer.json()["message"] == reasons[who]


async def test_an_unknown_session_is_404_for_staff_and_403_for_others(
    service: ServiceUnderTest, people: People
) -> None:
    missing = await service.client.get("/api/v1/sessions/0000000000000000", headers=people.headers("staff"))
    assert missing.status_code == 404
    assert missing.json()["message"] == "no session '0000000000000000'"
    refused = await service.client.get("/api/v1/sessions/0000000000000000", headers=people.headers("researcher"))
    assert refused.status_code == 403

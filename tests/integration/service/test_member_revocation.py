"""Removing a member revokes their bubbles of that project: token refused, session closed with the reason, OPA told."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def project_with(service: ServiceUnderTest, people: People, slug: str, *members: str) -> None:
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201, created.text
    for who in members:
        role = "lead" if who == "lead" else "member"
        added = await service.client.put(
            f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code == 200, added.text


async def bubble_of(service: ServiceUnderTest, people: People, slug: str, who: str) -> dict[str, Any]:
    answer = await service.client.post(
        "/api/v1/bubbles",
        json={"project": slug, "username": people.username(who), "address": None},
        headers=people.hub_headers(),
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def bearer(bubble: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {bubble['token']}"}


async def test_removing_a_member_revokes_their_bubbles_of_that_project_only(
    service: ServiceUnderTest, people: People
) -> None:
    await project_with(service, people, "cohort", "lead", "researcher")
    await project_with(service, people, "weather", "researcher")
    researcher = people.username("researcher")
    first, second = (
        await bubble_of(service, people, "cohort", "researcher"),
        await bubble_of(service, people, "cohort", "researcher"),
    )
    elsewhere = await bubble_of(service, people, "weather", "researcher")
    leads = await bubble_of(service, people, "cohort", "lead")
    assert set(service.opa_data("bubbles")) >= {first["id"], second["id"], elsewhere["id"], leads["id"]}

    removed = await service.client.delete(
        f"/api/v1/projects/cohort/members/{researcher}", headers=people.headers("lead")
    )
    assert removed.status_code == 204, removed.text

    # OPA holds it before the answer: the membership and the bubbles are gone from the proxy's data.
    assert researcher not in service.opa_data("members")["cohort"]
    in_opa = set(service.opa_data("bubbles"))
    assert first["id"] not in in_opa
    assert second["id"] not in in_opa
    assert {elsewhere["id"], leads["id"]} <= in_opa
    for revoked in (first, second):
        refused = await service.client.get("/api/v1/projects/cohort", headers=bearer(revoked))
        assert refused.status_code == 401
        assert "revoked" in refused.json()["message"]
    assert (await service.client.get("/api/v1/projects/weather", headers=bearer(elsewhere))).status_code == 200
    assert (await service.client.get("/api/v1/projects/cohort", headers=bearer(leads))).status_code == 200

    staff = people.headers("staff")
    lead = people.username("lead")
    reason = f"{researcher} was removed from project cohort by {lead}"
    for revoked in (first, second):
        session = (await service.client.get(f"/api/v1/sessions/{revoked['id']}", headers=staff)).json()
        assert session["closed_at"] is not None
        assert session["events"][-1]["kind"] == "session.close"
        assert session["events"][-1]["summary"] == f"session closed: {reason}"
    assert (await service.client.get(f"/api/v1/sessions/{elsewhere['id']}", headers=staff)).json()["closed_at"] is None
    events = (await service.client.get("/api/v1/audit?project=cohort", headers=staff)).json()["events"]
    # Oldest first: the removal, then what it revoked, in bubble order.
    low, high = sorted((first["id"], second["id"]))
    assert [(event["action"], event["actor"], event["details"]) for event in events[-3:]] == [
        ("member.remove", lead, {"username": researcher, "role": "member"}),
        ("bubble.revoke", lead, {"bubble": low, "username": researcher, "reason": reason}),
        ("bubble.revoke", lead, {"bubble": high, "username": researcher, "reason": reason}),
    ]
    assert (await service.client.get("/api/v1/audit/verify", headers=staff)).json()["ok"] is True


async def test_a_refused_removal_revokes_nothing(service: ServiceUnderTest, people: People) -> None:
    await project_with(service, people, "cohort", "lead", "researcher", "outsider")
    bubble = await bubble_of(service, people, "cohort", "researcher")
    before = await service.snapshot()
    refused = await service.client.delete(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}", headers=people.headers("outsider")
    )
    assert refused.status_code == 403
    assert await service.snapshot() == before
    assert (await service.client.get("/api/v1/projects/cohort", headers=bearer(bubble))).status_code == 200


async def test_a_member_added_again_needs_a_new_bubble(service: ServiceUnderTest, people: People) -> None:
    await project_with(service, people, "cohort", "researcher")
    staff, researcher = people.headers("staff"), people.username("researcher")
    bubble = await bubble_of(service, people, "cohort", "researcher")
    assert (
        await service.client.delete(f"/api/v1/projects/cohort/members/{researcher}", headers=staff)
    ).status_code == 204
    again = await service.client.put(
        f"/api/v1/projects/cohort/members/{researcher}", json={"role": "member"}, headers=staff
    )
    assert again.status_code == 200
    assert (await service.client.get("/api/v1/projects/cohort", headers=bearer(bubble))).status_code == 401
    assert bubble["id"] not in service.opa_data("bubbles")

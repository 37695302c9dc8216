"""Bubbles as principals: registered by the hub for members, tokens stored as digests, limited to their project."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from infracalc.db import Bubble, create_engine, session_factory
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def setup_projects(service: ServiceUnderTest, people: People) -> None:
    staff = people.headers("staff")
    for slug in ("cohort", "weather"):
        created = await service.client.post("/api/v1/projects", json={"id": slug, "title": slug}, headers=staff)
        assert created.status_code == 201
    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}", json={"role": "member"}, headers=staff
    )
    assert added.status_code == 200


async def stored_bubbles(service: ServiceUnderTest) -> list[Bubble]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(Bubble))).all())
    finally:
        await engine.dispose()


async def test_hub_registers_a_bubble_whose_token_reads_only_its_project(
    service: ServiceUnderTest, people: People
) -> None:
    await setup_projects(service, people)
    researcher = people.username("researcher")
    answer = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": researcher, "address": None},
        headers=people.hub_headers(),
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    token = created["token"]
    assert (created["project"], created["username"]) == ("cohort", researcher)

    (stored,) = await stored_bubbles(service)
    assert stored.token_sha256 == hashlib.sha256(token.rsplit("_", 1)[1].encode()).hexdigest()
    assert token not in repr(vars(stored))
    events = (await service.client.get("/api/v1/audit?action=bubble.create", headers=people.headers("staff"))).json()
    assert events["events"][0]["details"] == {"bubble": created["id"], "username": researcher, "address": None}
    assert token.rsplit("_", 1)[1] not in str(events)

    bubble = {"Authorization": f"Bearer {token}"}
    own = await service.client.get("/api/v1/projects/cohort", headers=bubble)
    assert own.status_code == 200
    other = await service.client.get("/api/v1/projects/weather", headers=bubble)
    assert other.status_code == 403
    assert other.json()["message"] == "bubbles may only read their own project"
    listed = await service.client.get("/api/v1/audit", headers=bubble)
    assert listed.status_code == 403


async def test_revoked_bubble_token_is_refused(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    hub = people.hub_headers()
    created = (
        await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=hub,
        )
    ).json()
    bubble = {"Authorization": f"Bearer {created['token']}"}
    assert (await service.client.get("/api/v1/projects/cohort", headers=bubble)).status_code == 200
    revoked = await service.client.delete(f"/api/v1/bubbles/{created['id']}", headers=hub)
    assert revoked.status_code == 204
    refused = await service.client.get("/api/v1/projects/cohort", headers=bubble)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
    again = await service.client.delete(f"/api/v1/bubbles/{created['id']}", headers=hub)
    assert again.status_code == 204  # revoking twice is harmless, and audited once
    revocations = (
        await service.client.get("/api/v1/audit?action=bubble.revoke", headers=people.headers("staff"))
    ).json()["events"]
    assert len(revocations) == 1


@pytest.mark.parametrize(
    "forged",
    [
        "ibt_0000000000000000_" + "0" * 64,  # well-formed, unknown
        "ibt_short",  # malformed
    ],
)
async def test_forged_bubble_tokens_are_401(service: ServiceUnderTest, people: People, forged: str) -> None:
    await setup_projects(service, people)
    answer = await service.client.get("/api/v1/projects/cohort", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


async def test_a_right_id_with_a_wrong_secret_is_401(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    created = (
        await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=people.hub_headers(),
        )
    ).json()
    forged = created["token"][:-4] + "abcd"
    answer = await service.client.get("/api/v1/projects/cohort", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


async def test_no_bubble_for_a_non_member_and_nothing_written(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    before = await service.snapshot()
    answer = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": people.username("outsider"), "address": None},
        headers=people.hub_headers(),
    )
    assert answer.status_code == 403
    assert answer.json()["message"] == f"{people.username('outsider')} is not a member of project cohort"
    assert await service.snapshot() == before
    assert await stored_bubbles(service) == []


async def test_people_cannot_register_bubbles(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    for who in ("staff", "researcher"):
        answer = await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=people.headers(who),
        )
        assert answer.status_code == 403
    assert await stored_bubbles(service) == []


async def test_hub_token_is_not_a_person(service: ServiceUnderTest, people: People) -> None:
    # The hub's service account has no second factor: it may do the hub's work, never a person's.
    answer = await service.client.post(
        "/api/v1/projects", json={"id": "by-hub", "title": "T"}, headers=people.hub_headers()
    )
    assert answer.status_code == 403
    assert "the hub may only" in answer.json()["message"]

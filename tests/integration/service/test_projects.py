"""Projects, members and governance through the API, with real tokens, real OPA, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def create_project(service: ServiceUnderTest, people: People, slug: str = "cohort", **extra: Any) -> None:
    body = {"id": slug, "title": "Cohort study", **extra}
    answer = await service.client.post("/api/v1/projects", json=body, headers=people.headers("staff"))
    assert answer.status_code == 201, answer.text


async def add_member(service: ServiceUnderTest, people: People, slug: str, who: str, role: str) -> None:
    answer = await service.client.put(
        f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": role}, headers=people.headers("staff")
    )
    assert answer.status_code == 200, answer.text


async def test_staff_create_a_project_recorded_in_audit_and_opa(service: ServiceUnderTest, people: People) -> None:
    answer = await service.client.post(
        "/api/v1/projects", json={"id": "cohort", "title": "Cohort study"}, headers=people.headers("staff")
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["governance"] == "CASD"  # the stricter owner by default
    assert service.opa_data("projects")["cohort"] == {
        "title": "Cohort study",
        "governance": "CASD",
        "sensitive_data": False,
    }
    events = (await service.client.get("/api/v1/audit", headers=people.headers("staff"))).json()["events"]
    assert [(e["action"], e["actor"], e["project_id"], e["governance"]) for e in events] == [
        ("project.create", people.username("staff"), "cohort", "CASD")
    ]


async def test_researcher_cannot_create_a_project_and_nothing_changes(
    service: ServiceUnderTest, people: People
) -> None:
    before = await service.snapshot()
    answer = await service.client.post(
        "/api/v1/projects", json={"id": "mine", "title": "Mine"}, headers=people.headers("researcher")
    )
    assert answer.status_code == 403
    assert answer.json() == {"status": 403, "error": "forbidden", "message": "only CASD staff may create projects"}
    assert await service.snapshot() == before


async def test_members_see_their_projects_and_outsiders_do_not(service: ServiceUnderTest, people: People) -> None:
    await create_project(service, people, "cohort")
    await create_project(service, people, "weather")
    await add_member(service, people, "cohort", "lead", "lead")
    await add_member(service, people, "cohort", "researcher", "member")

    listed = await service.client.get("/api/v1/projects", headers=people.headers("researcher"))
    assert [p["id"] for p in listed.json()] == ["cohort"]
    staff_list = await service.client.get("/api/v1/projects", headers=people.headers("staff"))
    assert [p["id"] for p in staff_list.json()] == ["cohort", "weather"]
    me = (await service.client.get("/api/v1/me", headers=people.headers("researcher"))).json()
    assert me["username"] == people.username("researcher")
    assert "researcher" in me["roles"]
    assert [p["id"] for p in me["projects"]] == ["cohort"]

    project = await service.client.get("/api/v1/projects/cohort", headers=people.headers("researcher"))
    assert project.status_code == 200
    assert {(m["username"], m["role"]) for m in project.json()["members"]} == {
        (people.username("lead"), "lead"),
        (people.username("researcher"), "member"),
    }
    refused = await service.client.get("/api/v1/projects/cohort", headers=people.headers("outsider"))
    assert refused.status_code == 403
    assert people.username("outsider") in refused.json()["message"]


async def test_lead_manages_members_researcher_cannot(service: ServiceUnderTest, people: People) -> None:
    await create_project(service, people)
    await add_member(service, people, "cohort", "lead", "lead")
    await add_member(service, people, "cohort", "researcher", "member")
    outsider = people.username("outsider")

    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{outsider}", json={"role": "member"}, headers=people.headers("lead")
    )
    assert added.status_code == 200, added.text
    assert service.opa_data("members")["cohort"][outsider] == {"role": "member"}

    before = await service.snapshot()
    refused = await service.client.delete(
        f"/api/v1/projects/cohort/members/{outsider}", headers=people.headers("researcher")
    )
    assert refused.status_code == 403
    assert await service.snapshot() == before

    removed = await service.client.delete(f"/api/v1/projects/cohort/members/{outsider}", headers=people.headers("lead"))
    assert removed.status_code == 204
    assert outsider not in service.opa_data("members")["cohort"]


async def test_governance_switch_takes_effect_in_opa_before_the_answer(
    service: ServiceUnderTest, people: People
) -> None:
    await create_project(service, people)
    reason = "Data reclassified as non-sensitive by the producer"
    answer = await service.client.put(
        "/api/v1/projects/cohort/governance",
        json={"owner": "INFRACALC", "reason": reason},
        headers=people.headers("staff"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["governance"] == "INFRACALC"
    assert service.opa_data("projects")["cohort"]["governance"] == "INFRACALC"

    history = await service.client.get("/api/v1/projects/cohort/governance/history", headers=people.headers("staff"))
    (change,) = history.json()
    assert (change["from_owner"], change["to_owner"], change["actor"], change["reason"]) == (
        "CASD",
        "INFRACALC",
        people.username("staff"),
        reason,
    )
    switch = (
        await service.client.get("/api/v1/audit?action=governance.switch", headers=people.headers("staff"))
    ).json()["events"]
    assert [(e["governance"], e["details"]["from"], e["details"]["reason"]) for e in switch] == [
        ("INFRACALC", "CASD", reason)
    ]
    # The switch re-tags the project's stored objects (none yet) and records that it did.
    retag = (await service.client.get("/api/v1/audit?action=governance.retag", headers=people.headers("staff"))).json()[
        "events"
    ]
    assert [(e["details"]["complete"], e["details"]["changed"], e["details"]["unchanged"]) for e in retag] == [
        (True, 0, 0)
    ]
    verified = await service.client.get("/api/v1/audit/verify", headers=people.headers("staff"))
    assert verified.json()["ok"] is True
    assert verified.json()["events_checked"] == 3  # project.create, governance.switch, governance.retag


@pytest.mark.parametrize(
    ("who", "body", "status", "message"),
    [
        ("lead", {"owner": "INFRACALC", "reason": "Because the lead wants it"}, 403, "only CASD staff"),
        ("staff", {"owner": "INFRACALC", "reason": "too short"}, 422, "reason"),
        ("staff", {"owner": "CASD", "reason": "Already CASD, nothing to do"}, 403, "already under CASD"),
        ("staff", {"owner": "NOBODY", "reason": "An owner that does not exist"}, 422, "owner"),
        ("staff", {"owner": "INFRACALC", "reason": "A good reason here", "force": True}, 422, "force"),
    ],
)
async def test_refused_switches_change_nothing(
    service: ServiceUnderTest, people: People, who: str, body: dict[str, Any], status: int, message: str
) -> None:
    await create_project(service, people)
    await add_member(service, people, "cohort", "lead", "lead")
    before = await service.snapshot()
    answer = await service.client.put("/api/v1/projects/cohort/governance", json=body, headers=people.headers(who))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]
    assert await service.snapshot() == before


async def test_unknown_project_is_404(service: ServiceUnderTest, people: People) -> None:
    for method, path in [
        ("GET", "/api/v1/projects/nowhere"),
        ("GET", "/api/v1/projects/nowhere/governance/history"),
    ]:
        answer = await service.client.request(method, path, headers=people.headers("staff"))
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"


async def test_duplicate_project_is_a_conflict(service: ServiceUnderTest, people: People) -> None:
    await create_project(service, people)
    before = await service.snapshot()
    answer = await service.client.post(
        "/api/v1/projects", json={"id": "cohort", "title": "Again"}, headers=people.headers("staff")
    )
    assert answer.status_code == 409
    assert answer.json()["field"] == "id"
    assert await service.snapshot() == before


async def test_unknown_user_cannot_become_a_member(service: ServiceUnderTest, people: People) -> None:
    await create_project(service, people)
    before = await service.snapshot()
    answer = await service.client.put(
        "/api/v1/projects/cohort/members/nobody-by-that-name", json={"role": "member"}, headers=people.headers("staff")
    )
    assert answer.status_code == 404
    assert answer.json()["message"] == "no user 'nobody-by-that-name' in the realm"
    assert await service.snapshot() == before


async def test_researcher_cannot_add_members(service: ServiceUnderTest, people: People) -> None:
    await create_project(service, people)
    await add_member(service, people, "cohort", "researcher", "member")
    before = await service.snapshot()
    answer = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('outsider')}",
        json={"role": "member"},
        headers=people.headers("researcher"),
    )
    assert answer.status_code == 403
    assert "only CASD staff or a lead" in answer.json()["message"]
    assert await service.snapshot() == before

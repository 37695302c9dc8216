"""The egress proxy's events: in the audit log and the bubble's session, from the proxy only, whole or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from infracalc.identity import proxy_secret
from infracalc.proxy.events import EgressEvent, EventBatch
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer
from tests.fixtures.service import People, ServiceUnderTest, service_env

pytestmark = pytest.mark.integration

EVENTS = "/api/v1/egress/events"
#: The events' times: after the opening of any session a test makes, however long the suite ran
#: before it (a timeline is in time order).
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
MADE_UP = "madeupmadeupmade"


@pytest.fixture
async def service_without_proxy(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, tmp_path: Path
) -> AsyncIterator[ServiceUnderTest]:
    """The service started without INFRACALC_EGRESS_PROXY_SECRET_SHA256."""
    settings = ServiceSettings.from_env(service_env(database_url, opa.url, keycloak, tmp_path))
    assert settings.egress_proxy_secret_sha256 is None
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        yield ServiceUnderTest(app, client, settings, opa)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


async def start_bubble(service: ServiceUnderTest, people: People, governance: str = "INFRACALC") -> str:
    """A project ``cohort`` with the researcher as member, and a bubble of theirs; returns the bubble's id."""
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": "cohort", "title": "Cohort", "governance": governance}, headers=staff
    )
    assert created.status_code == 201, created.text
    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}", json={"role": "member"}, headers=staff
    )
    assert added.status_code == 200, added.text
    bubble = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
    )
    assert bubble.status_code == 201, bubble.text
    bubble_id: str = bubble.json()["id"]
    return bubble_id


def proxy_batch(bubble_id: str) -> list[EgressEvent]:
    """What the proxy reports for a bubble's allowed tunnel, a refused plain-HTTP request, and the tunnel's end."""
    return [
        EgressEvent(
            kind="decision",
            at=at(1),
            bubble=bubble_id,
            project="cohort",
            scheme="connect",
            host="api.example.org",
            port=443,
            allow=True,
            reason="rule r1 of project cohort allows api.example.org:443",
            rule_id="r1",
            address="93.184.216.34",
        ),
        EgressEvent(
            kind="decision",
            at=at(2),
            bubble=bubble_id,
            project="cohort",
            scheme="http",
            host="api.example.org",
            port=80,
            method="DELETE",
            path="/v1/items",
            allow=False,
            reason="no approved rule of project cohort allows DELETE /v1/items on api.example.org:80",
        ),
        EgressEvent(
            kind="tunnel_closed",
            at=at(3),
            bubble=bubble_id,
            project="cohort",
            scheme="connect",
            host="api.example.org",
            port=443,
            allow=True,
            reason="closed",
            rule_id="r1",
            bytes_up=517,
            bytes_down=4096,
            seconds=2.0,
        ),
    ]


def made_up_event() -> EgressEvent:
    """A 407: credentials naming a bubble that does not exist, so no project either."""
    return EgressEvent(
        kind="decision",
        at=at(4),
        bubble=MADE_UP,
        scheme="connect",
        host="evil.example.net",
        port=443,
        allow=False,
        reason="unknown bubble or wrong token",
    )


def body(events: list[EgressEvent]) -> bytes:
    return msgspec.json.encode(EventBatch(events=events))


async def post_events(service: ServiceUnderTest, payload: bytes, headers: dict[str, str]) -> Any:
    return await service.client.post(EVENTS, content=payload, headers={**headers, "Content-Type": "application/json"})


async def audit(service: ServiceUnderTest, people: People, query: str) -> list[dict[str, Any]]:
    answer = await service.client.get(f"/api/v1/audit?{query}", headers=people.headers("staff"))
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def test_the_proxy_records_a_batch_in_the_audit_log_and_the_session(
    service: ServiceUnderTest, people: People
) -> None:
    bubble_id = await start_bubble(service, people)
    answer = await post_events(service, body([*proxy_batch(bubble_id), made_up_event()]), service.proxy_headers())
    assert answer.status_code == 204, answer.text

    recorded = await audit(service, people, f"actor=bubble:{bubble_id}")
    assert [(e["action"], e["project_id"], e["governance"]) for e in recorded] == [
        ("egress.connection.allow", "cohort", "INFRACALC"),
        ("egress.connection.deny", "cohort", "INFRACALC"),
        ("egress.connection.close", "cohort", "INFRACALC"),
    ]
    assert recorded[0]["details"] == {
        "kind": "decision",
        "at": at(1),
        "scheme": "connect",
        "host": "api.example.org",
        "port": 443,
        "allow": True,
        "reason": "rule r1 of project cohort allows api.example.org:443",
        "rule_id": "r1",
        "address": "93.184.216.34",
    }
    assert (recorded[1]["details"]["method"], recorded[1]["details"]["path"]) == ("DELETE", "/v1/items")
    assert recorded[2]["details"] == {
        "kind": "tunnel_closed",
        "at": at(3),
        "scheme": "connect",
        "host": "api.example.org",
        "port": 443,
        "reason": "closed",
        "rule_id": "r1",
        "bytes_up": 517,
        "bytes_down": 4096,
        "seconds": 2.0,
    }

    timeline = await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=people.headers("staff"))
    assert timeline.status_code == 200, timeline.text
    session = timeline.json()
    assert (session["id"], session["project"], session["username"], session["governance"]) == (
        bubble_id,
        "cohort",
        people.username("researcher"),
        "INFRACALC",
    )
    assert session["closed_at"] is None
    assert [(e["source"], e["kind"]) for e in session["events"]] == [
        ("service", "session.open"),
        ("proxy", "egress.connection.allow"),
        ("proxy", "egress.connection.deny"),
        ("proxy", "egress.connection.close"),
    ]
    assert [e["at"] for e in session["events"][1:]] == [
        (T0 + timedelta(seconds=s)).isoformat().replace("+00:00", "Z") for s in (1, 2, 3)
    ]
    assert session["events"][1]["summary"] == (
        "allowed CONNECT api.example.org:443 by rule r1: rule r1 of project cohort allows api.example.org:443"
    )
    assert session["events"][2]["summary"].startswith("denied DELETE http://api.example.org:80/v1/items: ")
    assert session["events"][3]["summary"] == (
        "tunnel to api.example.org:443 closed (closed): 517 bytes up, 4096 down in 2 s"
    )
    assert session["events"][1]["details"] == recorded[0]["details"]

    verified = await service.client.get("/api/v1/audit/verify", headers=people.headers("staff"))
    assert verified.json()["ok"] is True, verified.json()


async def test_an_unknown_bubble_goes_to_the_audit_log_only(service: ServiceUnderTest, people: People) -> None:
    await start_bubble(service, people)
    answer = await post_events(service, body([made_up_event()]), service.proxy_headers())
    assert answer.status_code == 204, answer.text
    (event,) = await audit(service, people, f"actor=bubble:{MADE_UP}")
    assert (event["action"], event["project_id"], event["governance"]) == ("egress.connection.deny", None, None)
    assert event["details"]["host"] == "evil.example.net"
    missing = await service.client.get(f"/api/v1/sessions/{MADE_UP}", headers=people.headers("staff"))
    assert missing.status_code == 404


async def test_refusals_before_the_policy_are_recorded_as_the_bubble_or_the_source(
    service: ServiceUnderTest, people: People
) -> None:
    bubble_id = await start_bubble(service, people)
    refused = EgressEvent(
        kind="refusal",
        at=at(5),
        bubble=bubble_id,
        source="10.231.1.2",
        project="cohort",
        allow=False,
        label="bad_host",
        status=400,
        reason="'0xa9fea9fe' is not a host name",
    )
    counted = EgressEvent(
        kind="refusals",
        at=at(6),
        until=at(9),
        source="10.231.1.2",
        allow=False,
        label="proxy_auth",
        status=407,
        count=3,
        reason="the proxy credentials are not a bubble id and its bubble token",
    )
    limited = msgspec.structs.replace(counted, source=None, bubble=bubble_id, project="cohort", label="bubble_rate")
    answer = await post_events(service, body([refused, counted, limited]), service.proxy_headers())
    assert answer.status_code == 204, answer.text
    as_bubble = await audit(service, people, f"actor=bubble:{bubble_id}")
    assert [(event["action"], event["details"]["kind"]) for event in as_bubble] == [
        ("egress.connection.deny", "refusal"),
        ("egress.connection.deny", "refusals"),
    ]
    assert as_bubble[0]["project_id"] == "cohort"
    assert as_bubble[0]["details"] | {"at": None} == {
        "kind": "refusal",
        "at": None,
        "allow": False,
        "source": "10.231.1.2",
        "label": "bad_host",
        "status": 400,
        "reason": "'0xa9fea9fe' is not a host name",
    }
    (by_source,) = await audit(service, people, "actor=source:10.231.1.2")
    assert by_source["action"] == "egress.connection.deny"
    assert (by_source["details"]["count"], by_source["details"]["label"]) == (3, "proxy_auth")
    assert by_source["details"]["until"] == at(9)
    timeline = await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=people.headers("staff"))
    assert timeline.status_code == 200, timeline.text
    summaries = [event["summary"] for event in timeline.json()["events"] if event["source"] == "proxy"]
    assert summaries == [
        "refused before any decision (400 bad_host): '0xa9fea9fe' is not a host name",
        "3 connections refused (407 bubble_rate): the proxy credentials are not a bubble id and its bubble token",
    ]


async def test_a_project_unknown_to_the_service_is_kept_in_the_details(
    service: ServiceUnderTest, people: People
) -> None:
    event = msgspec.structs.replace(made_up_event(), project="vanished")
    assert (await post_events(service, body([event]), service.proxy_headers())).status_code == 204
    (recorded,) = await audit(service, people, "action=egress.connection.deny")
    assert (recorded["project_id"], recorded["governance"]) == (None, None)
    assert recorded["details"]["project"] == "vanished"


async def test_the_governance_recorded_is_the_projects_current_one(service: ServiceUnderTest, people: People) -> None:
    bubble_id = await start_bubble(service, people, governance="INFRACALC")
    switched = await service.client.put(
        "/api/v1/projects/cohort/governance",
        json={"owner": "CASD", "reason": "Data reclassified as sensitive"},
        headers=people.headers("staff"),
    )
    assert switched.status_code == 200, switched.text
    first = proxy_batch(bubble_id)[1]
    assert (await post_events(service, body([first]), service.proxy_headers())).status_code == 204
    (event,) = await audit(service, people, "action=egress.connection.deny")
    assert event["governance"] == "CASD"
    session = (await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=people.headers("staff"))).json()
    assert session["governance"] == "INFRACALC", "the session keeps the governance it opened under"


async def test_a_bubble_id_with_control_characters_is_recorded_escaped(
    service: ServiceUnderTest, people: People
) -> None:
    # Made-up credentials can hold any ASCII; PostgreSQL stores no NUL in text.
    weird = "a\x00b\ncdefghijklmn"
    event = msgspec.structs.replace(made_up_event(), bubble=weird, project="co\x00hort")
    answer = await post_events(service, body([event]), service.proxy_headers())
    assert answer.status_code == 204, answer.text
    (recorded,) = await audit(service, people, "action=egress.connection.deny")
    assert recorded["actor"] == "bubble:a\\x00b\\ncdefghijklmn"
    assert recorded["details"]["bubble"] == weird
    assert (recorded["project_id"], recorded["details"]["project"]) == (None, "co\x00hort")
    verified = await service.client.get("/api/v1/audit/verify", headers=people.headers("staff"))
    assert verified.json()["ok"] is True


async def test_a_full_batch_is_recorded_and_one_more_event_is_refused(
    service: ServiceUnderTest, people: People
) -> None:
    bubble_id = await start_bubble(service, people)
    template = proxy_batch(bubble_id)[1]
    full = [msgspec.structs.replace(template, at=at(i / 1000)) for i in range(1000)]
    before = await service.snapshot()
    too_many = await post_events(service, body([*full, template]), service.proxy_headers())
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["message"] == "events: Expected `array` of length <= 1000"
    assert await service.snapshot() == before

    answer = await post_events(service, body(full), service.proxy_headers())
    assert answer.status_code == 204, answer.text
    page = await audit(service, people, "action=egress.connection.deny&limit=500")
    assert len(page) == 500
    session = (await service.client.get(f"/api/v1/sessions/{bubble_id}", headers=people.headers("staff"))).json()
    assert len(session["events"]) == 1001  # the opening, then the batch
    verified = (await service.client.get("/api/v1/audit/verify", headers=people.headers("staff"))).json()
    assert verified["ok"] is True, verified
    assert verified["events_checked"] >= 1000


@pytest.mark.parametrize("who", ["staff", "researcher", "hub", "bubble", "wrong-proxy-secret", "malformed-secret"])
async def test_only_the_proxy_records_and_a_refusal_writes_nothing(
    service: ServiceUnderTest, people: People, who: str
) -> None:
    bubble_id = await start_bubble(service, people)
    bubble_token = (
        await service.client.post(
            "/api/v1/bubbles",
            json={"project": "cohort", "username": people.username("researcher"), "address": None},
            headers=people.hub_headers(),
        )
    ).json()["token"]
    headers = {
        "staff": people.headers("staff"),
        "researcher": people.headers("researcher"),
        "hub": people.hub_headers(),
        "bubble": {"Authorization": f"Bearer {bubble_token}"},
        "wrong-proxy-secret": {"Authorization": f"Bearer {proxy_secret.mint()}"},
        "malformed-secret": {"Authorization": "Bearer iep_1234"},
    }[who]
    before = await service.snapshot()
    answer = await post_events(service, body(proxy_batch(bubble_id)), headers)
    expected = 401 if who.endswith("secret") else 403
    assert answer.status_code == expected, answer.text
    message = answer.json()["message"]
    if who in {"staff", "researcher"}:
        assert message == "only the egress proxy may record egress events"
    if who == "wrong-proxy-secret":
        assert message == "an unknown egress proxy secret"
    assert await service.snapshot() == before


async def test_a_refused_caller_cannot_make_the_service_read_a_large_body(
    service: ServiceUnderTest, people: People
) -> None:
    # The route accepts large batches from the proxy; anyone else is refused before the body is read.
    await start_bubble(service, people)
    big = body([made_up_event()] * 20_000)
    assert len(big) > service.settings.json_limit
    answer = await post_events(service, big, people.headers("researcher"))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        (b"{not json", 400, None),
        (b'{"events": []}', 422, "events"),
        (b'{"events": [{"kind": "decision"}]}', 422, "events[0]"),
        (b'{"batch": []}', 422, "data"),
    ],
)
async def test_a_malformed_batch_is_refused_and_writes_nothing(
    service: ServiceUnderTest, people: People, payload: bytes, status: int, field: str | None
) -> None:
    await start_bubble(service, people)
    before = await service.snapshot()
    answer = await post_events(service, payload, service.proxy_headers())
    assert answer.status_code == status, answer.text
    assert answer.json().get("field") == field
    assert await service.snapshot() == before


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"port": 0}, "events[2].port", "Expected `int` >= 1"),
        ({"kind": "opened"}, "events[2].kind", "Invalid enum value 'opened'"),
        ({"at": "2026-01-05T09:00:00"}, "events[2].at", "timezone"),
        ({"surprise": True}, "events[2]", "unknown field `surprise`"),
        ({"bytes_up": -5}, "events[2].bytes_up", "Expected `int` >= 0"),
    ],
)
async def test_one_bad_event_refuses_the_whole_batch_naming_its_field(
    service: ServiceUnderTest, people: People, change: dict[str, Any], field: str, message: str
) -> None:
    bubble_id = await start_bubble(service, people)
    events = msgspec.to_builtins(EventBatch(events=proxy_batch(bubble_id)))
    events["events"][2].update(change)
    before = await service.snapshot()
    answer = await post_events(service, msgspec.json.encode(events), service.proxy_headers())
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert message in answer.json()["message"]
    assert await service.snapshot() == before


async def test_without_a_configured_proxy_its_secret_is_refused(service_without_proxy: ServiceUnderTest) -> None:
    answer = await post_events(
        service_without_proxy, body([made_up_event()]), {"Authorization": f"Bearer {proxy_secret.mint()}"}
    )
    assert answer.status_code == 401
    assert answer.json()["message"].startswith("no egress proxy is configured")

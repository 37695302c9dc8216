"""A person's projects (for the hub) and registered networks (for the login policy), against real OPA and Keycloak."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infracalc.db import UserNetwork, create_engine, session_factory
from infracalc.hub.bubbles import ProjectChoice
from infracalc.identity import TokenVerifier
from infracalc.service.app import create_app
from infracalc.service.auth import BubbleScheme, CredentialScheme, KeycloakScheme
from infracalc.service.settings import API_AUDIENCE, ServiceSettings
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer
from tests.fixtures.service import People, ServiceUnderTest, service_env

pytestmark = pytest.mark.integration

#: A username no test creates in Keycloak.
NOBODY = "nobody-00000000"
HOME, OFFICE = "203.0.113.0/24", "2001:db8:a::/48"


async def setup_projects(service: ServiceUnderTest, people: People) -> None:
    """``weather`` (INFRACALC, the researcher a member), ``cohort`` (CASD, the researcher a member, the lead its lead),
    ``archive`` (the lead alone)."""
    staff = people.headers("staff")
    for slug, title, governance in (
        ("weather", "Weather", "INFRACALC"),
        ("cohort", "Birth cohort", "CASD"),
        ("archive", "Archive", "CASD"),
    ):
        created = await service.client.post(
            "/api/v1/projects", json={"id": slug, "title": title, "governance": governance}, headers=staff
        )
        assert created.status_code == 201, created.text
    for slug, who, role in (
        ("weather", "researcher", "member"),
        ("cohort", "researcher", "lead"),
        ("cohort", "lead", "lead"),
        ("archive", "lead", "lead"),
    ):
        added = await service.client.put(
            f"/api/v1/projects/{slug}/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code == 200, added.text


def login_decision(opa: OpaServer, username: str, source_ip: str) -> dict[str, Any]:
    """What ``infracalc.login`` decides for a two-factor sign-in of ``username`` from ``source_ip``."""
    answer = requests.post(
        f"{opa.url}/v1/data/infracalc/login/decision",
        json={"input": {"username": username, "acr": "mfa", "source_ip": source_ip}},
        timeout=5,
    )
    answer.raise_for_status()
    decision: dict[str, Any] = answer.json()["result"]
    return decision


async def stored_networks(service: ServiceUnderTest) -> set[tuple[str, str, str]]:
    engine = create_engine(service.settings.database)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(UserNetwork))).all()
    finally:
        await engine.dispose()
    return {(row.username, row.cidr, row.added_by) for row in rows}


# GET /users/{username}/projects


async def test_the_hub_lists_a_users_projects_in_id_order(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    answer = await service.client.get(
        f"/api/v1/users/{people.username('researcher')}/projects", headers=people.hub_headers()
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == [
        {"id": "cohort", "title": "Birth cohort", "governance": "CASD", "role": "lead"},
        {"id": "weather", "title": "Weather", "governance": "INFRACALC", "role": "member"},
    ]
    # What the hub's client reads, field by field.
    choices = [ProjectChoice(item["id"], item["title"], item["governance"], item["role"]) for item in answer.json()]
    assert [choice.id for choice in choices] == ["cohort", "weather"]


@pytest.mark.parametrize("who", ["staff", "researcher"])
async def test_staff_and_the_person_themself_list_their_projects(
    service: ServiceUnderTest, people: People, who: str
) -> None:
    await setup_projects(service, people)
    answer = await service.client.get(
        f"/api/v1/users/{people.username('researcher')}/projects", headers=people.headers(who)
    )
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()] == ["cohort", "weather"]


async def test_a_known_user_without_projects_has_none(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    answer = await service.client.get(
        f"/api/v1/users/{people.username('outsider')}/projects", headers=people.hub_headers()
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == []


async def test_an_unknown_user_is_404_for_the_hub_and_staff(service: ServiceUnderTest, people: People) -> None:
    for headers in (people.hub_headers(), people.headers("staff")):
        answer = await service.client.get(f"/api/v1/users/{NOBODY}/projects", headers=headers)
        assert answer.status_code == 404, answer.text
        assert answer.json()["message"] == f"no user {NOBODY!r} in the realm"


async def test_others_may_not_list_a_users_projects(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    researcher = people.username("researcher")
    bubble = await service.client.post(
        "/api/v1/bubbles",
        json={"project": "weather", "username": researcher, "address": None},
        headers=people.hub_headers(),
    )
    assert bubble.status_code == 201, bubble.text
    callers = {
        "lead": (
            people.headers("lead"),
            f"only CASD staff or {researcher} themself may list the projects of {researcher}",
        ),
        "bubble": ({"Authorization": f"Bearer {bubble.json()['token']}"}, "bubbles may only read their own project"),
        "proxy": (service.proxy_headers(), "the egress proxy may only record egress events"),
    }
    for who, (headers, reason) in callers.items():
        answer = await service.client.get(f"/api/v1/users/{researcher}/projects", headers=headers)
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["message"] == reason
    # Refused before existence is looked at: a person learns nothing about who exists.
    unknown = await service.client.get(f"/api/v1/users/{NOBODY}/projects", headers=people.headers("lead"))
    assert unknown.status_code == 403


# PUT and GET /users/{username}/networks


async def test_a_person_registers_networks_soon_after_signing_in(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    researcher = people.username("researcher")
    headers = people.headers("researcher")
    answer = await service.client.put(
        f"/api/v1/users/{researcher}/networks",
        json={"networks": ["2001:DB8:A:0::/48", HOME, "198.51.100.128/25", HOME]},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    # Normal form, duplicates dropped, IPv4 first then by address.
    assert answer.json() == {"username": researcher, "networks": ["198.51.100.128/25", HOME, OFFICE]}

    read = await service.client.get(f"/api/v1/users/{researcher}/networks", headers=headers)
    assert read.json() == answer.json()
    assert service.opa_data(f"users/{researcher}") == {"networks": ["198.51.100.128/25", HOME, OFFICE]}
    assert await stored_networks(service) == {
        (researcher, cidr, researcher) for cidr in ("198.51.100.128/25", HOME, OFFICE)
    }
    (event,) = (
        await service.client.get("/api/v1/audit?action=user.networks.set", headers=people.headers("staff"))
    ).json()["events"]
    assert event["actor"] == researcher
    assert event["details"] == {
        "username": researcher,
        "before": [],
        "after": ["198.51.100.128/25", HOME, OFFICE],
    }


async def test_the_login_policy_holds_a_person_to_their_networks(service: ServiceUnderTest, people: People) -> None:
    await setup_projects(service, people)
    researcher = people.username("researcher")
    # A member of a CASD project must register a network before signing in at all.
    refused = login_decision(service.opa, researcher, "198.51.100.7")
    assert refused == {
        "allow": False,
        "reason": "a member of a CASD-governed project must register a network first",
        "code": "network_required",
        "source_ip": "198.51.100.7",
    }

    answer = await service.client.put(
        f"/api/v1/users/{researcher}/networks", json={"networks": [HOME, OFFICE]}, headers=people.headers("researcher")
    )
    assert answer.status_code == 200, answer.text
    assert login_decision(service.opa, researcher, "203.0.113.77")["allow"] is True
    assert login_decision(service.opa, researcher, "2001:db8:a:ff::1")["allow"] is True
    outside = login_decision(service.opa, researcher, "198.51.100.7")
    assert outside == {
        "allow": False,
        "reason": "source address 198.51.100.7 is not a registered network",
        "code": "source_not_registered",
        "source_ip": "198.51.100.7",
    }
    # Another person's networks are theirs alone.
    assert login_decision(service.opa, people.username("outsider"), "198.51.100.7")["allow"] is True


async def test_replacing_keeps_unchanged_networks_and_an_empty_list_removes_all(
    service: ServiceUnderTest, people: People
) -> None:
    researcher = people.username("researcher")
    staff = people.headers("staff")
    url = f"/api/v1/users/{researcher}/networks"
    assert (
        await service.client.put(url, json={"networks": [HOME]}, headers=people.headers("researcher"))
    ).status_code == 200
    # Staff add one: the researcher's own stays theirs.
    changed = await service.client.put(url, json={"networks": [HOME, OFFICE]}, headers=staff)
    assert changed.status_code == 200, changed.text
    assert await stored_networks(service) == {
        (researcher, HOME, researcher),
        (researcher, OFFICE, people.username("staff")),
    }
    # The same list again changes nothing, and is not audited.
    before = await service.snapshot()
    again = await service.client.put(url, json={"networks": [OFFICE, HOME]}, headers=staff)
    assert again.status_code == 200
    assert await service.snapshot() == before

    cleared = await service.client.put(url, json={"networks": []}, headers=staff)
    assert cleared.json() == {"username": researcher, "networks": []}
    assert await stored_networks(service) == set()
    assert service.opa_data(f"users/{researcher}") is None
    events = (await service.client.get("/api/v1/audit?action=user.networks.set", headers=staff)).json()["events"]
    assert [(e["details"]["before"], e["details"]["after"]) for e in events] == [
        ([], [HOME]),
        ([HOME], [HOME, OFFICE]),
        ([HOME, OFFICE], []),
    ]


async def test_a_resync_writes_every_persons_networks(service: ServiceUnderTest, people: People) -> None:
    researcher = people.username("researcher")
    answer = await service.client.put(
        f"/api/v1/users/{researcher}/networks", json={"networks": [HOME]}, headers=people.headers("researcher")
    )
    assert answer.status_code == 200, answer.text
    # OPA loses its data (a restart): the service notices the missing sync marker and resyncs, users included.
    requests.put(f"{service.opa.url}/v1/data/store/infracalc/users", json={}, timeout=5).raise_for_status()
    requests.delete(f"{service.opa.url}/v1/data/store/infracalc/sync", timeout=5).raise_for_status()
    deadline = time.monotonic() + 10
    while service.opa_data("users") == {} and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert service.opa_data("users") == {researcher: {"networks": [HOME]}}


@pytest.mark.parametrize(
    ("networks", "field", "message"),
    [
        (["0.0.0.0/0"], "networks[0]", "'0.0.0.0/0' is every address"),
        ([HOME, "::/0"], "networks[1]", "'::/0' is every address"),
        (["10.0.0.0/8"], "networks[0]", "IPv4 networks may be /16 at widest"),
        (["2001:db8::/32"], "networks[0]", "IPv6 networks may be /48 at widest"),
        (["203.0.113.7/24"], "networks[0]", "has host bits set (did you mean 203.0.113.0/24?)"),
        (["203.0.113.7"], "networks[0]", "is not a network in CIDR form"),
        (["203.0.113.0/255.255.255.0"], "networks[0]", "is not a network in CIDR form"),
        (["fe80::%eth0/64"], "networks[0]", "is not a network in CIDR form"),
        (["203.0.113.0/33"], "networks[0]", "is not a valid IPv4 or IPv6 network"),
        (["::ffff:203.0.113.0/120"], "networks[0]", "write it as IPv4 (203.0.113.0/24)"),
        (["home"], "networks[0]", "is not a network in CIDR form"),
        ([f"10.{i}.0.0/16" for i in range(21)], "networks", "length <= 20"),
        ([42], "networks[0]", "Expected `str`"),
    ],
)
async def test_bad_networks_are_422_naming_the_field_and_nothing_is_written(
    service: ServiceUnderTest, people: People, networks: list[Any], field: str, message: str
) -> None:
    researcher = people.username("researcher")
    before = await service.snapshot()
    answer = await service.client.put(
        f"/api/v1/users/{researcher}/networks", json={"networks": networks}, headers=people.headers("researcher")
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert message in answer.json()["message"]
    assert await service.snapshot() == before


async def test_others_may_not_read_or_change_a_persons_networks(service: ServiceUnderTest, people: People) -> None:
    researcher = people.username("researcher")
    url = f"/api/v1/users/{researcher}/networks"
    before = await service.snapshot()
    lead = await service.client.put(url, json={"networks": [HOME]}, headers=people.headers("lead"))
    assert lead.status_code == 403
    assert lead.json()["message"] == (
        f"only CASD staff or {researcher} themself may change the registered networks of {researcher}"
    )
    hub = await service.client.put(url, json={"networks": [HOME]}, headers=people.hub_headers())
    assert hub.status_code == 403
    assert hub.json()["message"].startswith("the hub may only")
    proxy = await service.client.put(url, json={"networks": [HOME]}, headers=service.proxy_headers())
    assert proxy.status_code == 403
    read = await service.client.get(url, headers=people.headers("lead"))
    assert read.status_code == 403
    assert read.json()["message"] == (
        f"only CASD staff or {researcher} themself may read the registered networks of {researcher}"
    )
    assert await service.snapshot() == before


async def test_staff_may_not_register_networks_of_an_unknown_user(service: ServiceUnderTest, people: People) -> None:
    before = await service.snapshot()
    answer = await service.client.put(
        f"/api/v1/users/{NOBODY}/networks", json={"networks": [HOME]}, headers=people.headers("staff")
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["message"] == f"no user {NOBODY!r} in the realm"
    read = await service.client.get(f"/api/v1/users/{NOBODY}/networks", headers=people.headers("staff"))
    assert read.status_code == 404
    assert await service.snapshot() == before


# Changing one's own networks needs a recent login


@pytest.fixture
async def service_ten_minutes_later(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, tmp_path: Path
) -> AsyncIterator[ServiceUnderTest]:
    """The service with a clock 10 minutes ahead: every login looks 10 minutes old (tokens stay valid)."""
    settings = ServiceSettings.from_env(service_env(database_url, opa.url, keycloak, tmp_path))
    verifier = TokenVerifier(settings.issuer, audience=API_AUDIENCE, jwks_url=settings.jwks_url)
    schemes: list[CredentialScheme] = [KeycloakScheme(verifier, clock=lambda: time.time() + 600), BubbleScheme()]
    app = create_app(settings, verifier=verifier, credential_schemes=schemes)
    async with AsyncTestClient(app) as client:
        yield ServiceUnderTest(app, client, settings, opa)


async def test_a_stale_login_may_not_change_ones_own_networks(
    service_ten_minutes_later: ServiceUnderTest, people: People
) -> None:
    service = service_ten_minutes_later
    researcher = people.username("researcher")
    url = f"/api/v1/users/{researcher}/networks"
    before = await service.snapshot()
    answer = await service.client.put(url, json={"networks": [HOME]}, headers=people.headers("researcher"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"] == "change your registered networks within 5 minutes of signing in"
    assert await service.snapshot() == before
    # Reading them needs no recent login, and staff change them whenever they signed in.
    assert (await service.client.get(url, headers=people.headers("researcher"))).status_code == 200
    by_staff = await service.client.put(url, json={"networks": [HOME]}, headers=people.headers("staff"))
    assert by_staff.status_code == 200, by_staff.text

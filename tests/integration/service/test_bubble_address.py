"""A bubble's credentials are bound to the address it runs at: given at registration, or once the hub knows it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def member_project(service: ServiceUnderTest, people: People) -> None:
    staff = people.headers("staff")
    assert (
        await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "c"}, headers=staff)
    ).is_success
    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}", json={"role": "member"}, headers=staff
    )
    assert added.status_code == 200


async def register(service: ServiceUnderTest, people: People, **address: Any) -> Any:
    return await service.client.post(
        "/api/v1/bubbles",
        json={"project": "cohort", "username": people.username("researcher"), **address},
        headers=people.hub_headers(),
    )


async def test_the_hub_gives_the_address_at_registration_and_opa_binds_the_bubble_to_it(
    service: ServiceUnderTest, people: People
) -> None:
    await member_project(service, people)
    answer = await register(service, people, address="FD00:233::2")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["address"] == "fd00:233::2"  # written as the proxy writes the addresses it sees
    assert service.opa_data("bubbles")[created["id"]]["address"] == "fd00:233::2"
    events = (await service.client.get("/api/v1/audit?action=bubble.create", headers=people.headers("staff"))).json()
    assert events["events"][0]["details"]["address"] == "fd00:233::2"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Object missing required field `address`"),
        ({"address": "10.233.0.0/30"}, "'10.233.0.0/30' is not an IP address"),
        ({"address": "0.0.0.0"}, "0.0.0.0 cannot be the address a bubble connects from"),  # noqa: S104 - refused
        ({"address": "bubble.local"}, "'bubble.local' is not an IP address"),
    ],
)
async def test_a_registration_without_a_usable_address_is_refused_and_writes_nothing(
    service: ServiceUnderTest, people: People, body: dict[str, Any], message: str
) -> None:
    await member_project(service, people)
    before = await service.snapshot()
    answer = await register(service, people, **body)
    assert answer.status_code in (400, 422), answer.text
    assert message in answer.json()["message"]
    assert await service.snapshot() == before


async def test_an_address_known_after_start_is_given_once_and_never_changed(
    service: ServiceUnderTest, people: People
) -> None:
    await member_project(service, people)
    hub, staff = people.hub_headers(), people.headers("staff")
    created = (await register(service, people, address=None)).json()
    bubble = created["id"]
    assert created["address"] is None
    assert service.opa_data("bubbles")[bubble]["address"] is None  # the proxy refuses it meanwhile

    bound = await service.client.put(f"/api/v1/bubbles/{bubble}/address", json={"address": "172.30.0.7"}, headers=hub)
    assert bound.status_code == 200, bound.text
    assert bound.json()["address"] == "172.30.0.7"
    assert service.opa_data("bubbles")[bubble]["address"] == "172.30.0.7"
    session = (await service.client.get(f"/api/v1/sessions/{bubble}", headers=staff)).json()
    assert session["events"][-1]["kind"] == "bubble.address"
    assert session["events"][-1]["summary"] == "the bubble runs at 172.30.0.7"
    (event,) = (await service.client.get("/api/v1/audit?action=bubble.address", headers=staff)).json()["events"]
    assert event["details"] == {"bubble": bubble, "username": people.username("researcher"), "address": "172.30.0.7"}

    before = await service.snapshot()
    again = await service.client.put(f"/api/v1/bubbles/{bubble}/address", json={"address": "172.30.0.7"}, headers=hub)
    assert again.status_code == 200
    assert await service.snapshot() == before  # the same address again changes nothing
    moved = await service.client.put(f"/api/v1/bubbles/{bubble}/address", json={"address": "172.30.0.8"}, headers=hub)
    assert moved.status_code == 409
    assert "bound to another address already" in moved.json()["message"]
    assert await service.snapshot() == before


async def test_only_the_hub_gives_an_address_to_a_live_bubble(service: ServiceUnderTest, people: People) -> None:
    await member_project(service, people)
    hub = people.hub_headers()
    created = (await register(service, people, address=None)).json()
    bubble, token = created["id"], created["token"]
    before = await service.snapshot()
    for headers, status in (
        (people.headers("staff"), 403),
        (people.headers("researcher"), 403),
        ({"Authorization": f"Bearer {token}"}, 403),
    ):
        answer = await service.client.put(
            f"/api/v1/bubbles/{bubble}/address", json={"address": "10.0.0.2"}, headers=headers
        )
        assert answer.status_code == status, answer.text
    for address, status in (("not an address", 422), ("ff02::1", 422)):
        answer = await service.client.put(f"/api/v1/bubbles/{bubble}/address", json={"address": address}, headers=hub)
        assert answer.status_code == status, answer.text
    unknown = await service.client.put(
        "/api/v1/bubbles/0000000000000000/address", json={"address": "10.0.0.2"}, headers=hub
    )
    assert unknown.status_code == 404
    assert await service.snapshot() == before
    assert (await service.client.delete(f"/api/v1/bubbles/{bubble}", headers=hub)).status_code == 204
    revoked = await service.client.put(f"/api/v1/bubbles/{bubble}/address", json={"address": "10.0.0.2"}, headers=hub)
    assert revoked.status_code == 409
    assert "revoked" in revoked.json()["message"]

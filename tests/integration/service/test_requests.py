"""Every kind of bad request gets the right status and a clear JSON message, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def test_health_needs_no_token(service: ServiceUnderTest) -> None:
    answer = await service.client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "alive"}


async def test_openapi_describes_the_api(service: ServiceUnderTest) -> None:
    schema = (await service.client.get("/schema/openapi.json")).json()
    assert "/api/v1/projects/{project_id}/governance" in schema["paths"]
    assert schema["components"]["securitySchemes"]["keycloak"]["scheme"] == "bearer"


async def test_missing_token_is_401_with_a_challenge(service: ServiceUnderTest) -> None:
    answer = await service.client.get("/api/v1/projects")
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
    assert "Bearer" in answer.json()["message"]
    assert answer.headers["www-authenticate"].startswith('Bearer realm="infracalc"')


async def test_garbage_token_is_401(service: ServiceUnderTest) -> None:
    answer = await service.client.get("/api/v1/projects", headers={"Authorization": "Bearer not.a.token"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"


async def test_token_without_second_factor_is_401_asking_for_mfa(
    service: ServiceUnderTest, keycloak: KeycloakServer
) -> None:
    token = keycloak.service_account_token()  # a real token of the realm, but no password+TOTP login behind it
    answer = await service.client.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert 'acr_values="mfa"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"id": "cohort", "title": ', 400, None),  # not JSON at all
        (b'{"id": "cohort", "title": "T", "owner": "me"}', 422, "owner"),  # unknown field
        (b'{"id": "cohort", "title": 5}', 422, "title"),  # wrong type
        (b'{"id": "Cohort Study!", "title": "T"}', 422, "id"),  # invalid slug
        (b'{"id": "cohort", "title": "T", "governance": "NOBODY"}', 422, "governance"),
        (b'{"title": "T"}', 422, "id"),  # missing field
    ],
)
async def test_invalid_bodies_name_the_field_and_change_nothing(
    service: ServiceUnderTest, people: People, body: bytes, status: int, field: str | None
) -> None:
    before = await service.snapshot()
    headers = {**people.headers("staff"), "Content-Type": "application/json"}
    answer = await service.client.post("/api/v1/projects", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    payload: dict[str, Any] = answer.json()
    assert payload["status"] == status
    if field is not None:
        assert field in payload["message"]
    assert await service.snapshot() == before


async def test_oversize_body_is_413(service: ServiceUnderTest, people: People) -> None:
    before = await service.snapshot()
    title = "x" * (service.settings.json_limit + 1)
    answer = await service.client.post(
        "/api/v1/projects", json={"id": "big", "title": title}, headers=people.headers("staff")
    )
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    assert await service.snapshot() == before


async def test_unknown_route_and_wrong_method_are_json(service: ServiceUnderTest, people: People) -> None:
    missing = await service.client.get("/api/v1/nothing-here", headers=people.headers("staff"))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await service.client.patch("/api/v1/projects", json={}, headers=people.headers("staff"))
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_body_is_415(service: ServiceUnderTest, people: People, content_type: str | None) -> None:
    before = await service.snapshot()
    headers = people.headers("staff")
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = await service.client.post("/api/v1/projects", content=b'{"id": "cohort", "title": "T"}', headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"] == "unsupported_media_type"
    assert await service.snapshot() == before


async def test_member_username_is_validated(service: ServiceUnderTest, people: People) -> None:
    created = await service.client.post(
        "/api/v1/projects", json={"id": "cohort", "title": "T"}, headers=people.headers("staff")
    )
    assert created.status_code == 201
    before = await service.snapshot()
    answer = await service.client.put(
        "/api/v1/projects/cohort/members/bruno", json={"role": "owner"}, headers=people.headers("staff")
    )
    assert answer.status_code == 422
    assert "role" in answer.json()["message"]
    assert await service.snapshot() == before

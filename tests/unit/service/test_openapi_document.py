"""The OpenAPI document describes the service's error answers (the running service is held to it by schemathesis)."""

from __future__ import annotations

from typing import Any

import pytest

from infracalc.service.app import create_app
from infracalc.service.openapi import CONFLICTS, NAMED_IN_BODY
from infracalc.service.settings import ServiceSettings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    settings = ServiceSettings.from_env({"INFRACALC_API_CLIENT_SECRET": "x", "INFRACALC_HOME": str(home)})
    schema: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1")
    ]


def test_every_api_operation_documents_its_errors_in_the_services_shape(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) > 40
    for method, path, operation in found:
        responses = operation["responses"]
        assert {"401", "403", "503"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"status", "error", "message", "field"}
    assert sorted(body["required"]) == ["error", "message", "status"]


def test_the_tables_of_conflicts_and_named_resources_name_real_operations(document: dict[str, Any]) -> None:
    known = {(method, path) for method, path, _ in operations(document)}
    assert known >= CONFLICTS, CONFLICTS - known
    assert known >= NAMED_IN_BODY, NAMED_IN_BODY - known
    for method, path, operation in operations(document):
        assert ("409" in operation["responses"]) == ((method, path) in CONFLICTS), (method, path)


def test_ready_documents_its_own_503(document: dict[str, Any]) -> None:
    schema = document["paths"]["/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Readiness"}

"""The real OPA server loads ``policies/`` and answers decisions over its REST API."""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.servers import OpaServer

pytestmark = pytest.mark.integration

DATA = {
    "users": {"alice": {"networks": ["203.0.113.0/24"]}},
    "projects": {"cohort": {"governance": "CASD"}},
    "members": {"cohort": {"claire": {"role": "member"}}},
}


def decide(opa: OpaServer, payload: dict[str, str]) -> dict[str, object]:
    response = requests.post(f"{opa.url}/v1/data/infracalc/login/decision", json={"input": payload}, timeout=5)
    response.raise_for_status()
    result = response.json()["result"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def opa_with_data(opa: OpaServer) -> OpaServer:
    # Data lives under data.store.infracalc, a root apart from the policy packages (data.infracalc.*),
    # one document per key, so the service can replace one kind of data without touching the policies.
    for key, value in DATA.items():
        response = requests.put(f"{opa.url}/v1/data/store/infracalc/{key}", json=value, timeout=5)
        assert response.status_code == 204, response.text
    return opa


def test_policy_from_repository_is_loaded(opa: OpaServer) -> None:
    policies = requests.get(f"{opa.url}/v1/policies", timeout=5).json()["result"]
    assert any(policy["id"].endswith("infracalc/login/login.rego") for policy in policies)


def test_decision_allows_registered_network(opa_with_data: OpaServer) -> None:
    decision = decide(opa_with_data, {"username": "alice", "acr": "mfa", "source_ip": "203.0.113.40"})
    assert decision == {
        "allow": True,
        "reason": "second factor used from a registered network",
        "code": "registered_network",
    }


def test_decision_denies_with_a_reason(opa_with_data: OpaServer) -> None:
    decision = decide(opa_with_data, {"username": "alice", "acr": "mfa", "source_ip": "198.51.100.1"})
    assert decision["allow"] is False
    assert decision["reason"] == "source address 198.51.100.1 is not a registered network"


def test_decision_denies_without_second_factor(opa_with_data: OpaServer) -> None:
    decision = decide(opa_with_data, {"username": "alice", "acr": "1", "source_ip": "203.0.113.40"})
    assert decision["allow"] is False


def test_casd_member_needs_a_registered_network(opa_with_data: OpaServer) -> None:
    decision = decide(opa_with_data, {"username": "claire", "acr": "mfa", "source_ip": "198.51.100.1"})
    assert decision["allow"] is False


def test_unknown_package_is_undefined(opa: OpaServer) -> None:
    # No `result` key: callers must read this as a denial.
    response = requests.post(f"{opa.url}/v1/data/infracalc/nonexistent/decision", json={"input": {}}, timeout=5)
    assert response.status_code == 200
    assert "result" not in response.json()

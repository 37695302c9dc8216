"""Every answer carries a request id that names its line in the service's log; errors keep internals to the log."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from infracalc.stack.ports import free_port
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService, start_live_service
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import People

pytestmark = pytest.mark.integration


def log_lines_of(service: LiveService, request_id: str) -> list[str]:
    return [line for line in service.log().splitlines() if f"[request {request_id}]" in line]


def test_each_answer_has_an_id_of_its_own_and_a_log_line_with_it(live_service: LiveService, people: People) -> None:
    staff = people.headers("staff")
    calls = [
        ("GET", "/health", {}, None, 200),
        ("GET", "/api/v1/projects", staff, None, 200),
        ("GET", "/api/v1/projects", {}, None, 401),
        ("GET", "/api/v1/nothing-here", staff, None, 404),
        ("PATCH", "/api/v1/projects", staff, b"{}", 405),
        ("POST", "/api/v1/projects", {**staff, "Content-Type": "application/json"}, b'{"id": ', 400),
        ("POST", "/api/v1/projects", {**staff, "Content-Type": "application/json"}, b'{"id": 5}', 422),
    ]
    seen: set[str] = set()
    for method, path, headers, body, status in calls:
        answer = requests.request(method, live_service.url + path, headers=headers, data=body, timeout=30)
        assert answer.status_code == status, (method, path, answer.text)
        request_id = answer.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{16}", request_id)
        assert request_id not in seen
        seen.add(request_id)
        # The line is written once the answer is sent: give the log a moment.
        lines = _wait_for_lines(live_service, request_id)
        assert any(f"-> {status} in " in line for line in lines), lines


def test_a_callers_request_id_is_logged_beside_ours_never_instead(live_service: LiveService) -> None:
    answer = requests.get(f"{live_service.url}/health", headers={"X-Request-ID": "edge-42"}, timeout=30)
    request_id = answer.headers["X-Request-ID"]
    assert request_id != "edge-42"
    assert any("upstream id edge-42" in line for line in _wait_for_lines(live_service, request_id))


def test_a_route_with_a_secret_in_its_path_logs_its_template(live_service: LiveService) -> None:
    secret = "enroll-token-" + "x" * 30
    answer = requests.get(f"{live_service.url}/enroll/{secret}", timeout=30)
    lines = _wait_for_lines(live_service, answer.headers["X-Request-ID"])
    assert lines
    assert secret not in live_service.log()


def test_keys_out_of_reach_answer_503_without_the_internal_address_which_the_log_has(
    opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, people: People, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    service = start_live_service(
        opa.url, keycloak, s3, tmp_path, extra_env={"INFRACALC_KEYCLOAK_INTERNAL_URL": dead}, ready_path="/health"
    )
    try:
        answer = requests.get(f"{service.url}/api/v1/projects", headers=people.headers("staff"), timeout=30)
        assert answer.status_code == 503, answer.text
        message = answer.json()["message"]
        assert message == "the sign-in service's keys cannot be fetched now; try again later"
        assert answer.headers["Retry-After"] == "10"
        for internal in (dead, "127.0.0.1", "Errno", "certs", "refused"):
            assert internal not in answer.text
        lines = _wait_for_lines(service, answer.headers["X-Request-ID"])
        assert any(f"{dead}/realms/infracalc/protocol/openid-connect/certs" in line for line in lines), lines
        assert any("-> 503 in " in line for line in lines)
    finally:
        service.stop()


def _wait_for_lines(service: LiveService, request_id: str) -> list[str]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = log_lines_of(service, request_id)
        if any(" -> " in line for line in lines):
            return lines
        time.sleep(0.05)
    return log_lines_of(service, request_id)

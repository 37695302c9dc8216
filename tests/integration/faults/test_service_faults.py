"""The service under faults of its collaborators and of itself: OPA killed, the service killed under writers,
PostgreSQL restarted under load. Each checks what the person sees, what is stored and the audit log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.live_service import LiveService, start_live_service
from tests.fixtures.servers import OpaServer, S3Server
from tests.fixtures.service import People
from tests.integration.faults.conftest import PrivatePostgres, Restartable
from tests.integration.faults.support import audit_intact, eventually, rows

pytestmark = pytest.mark.integration


def create(service: LiveService, headers: dict[str, str], slug: str) -> requests.Response:
    return requests.post(f"{service.api}/projects", json={"id": slug, "title": slug}, headers=headers, timeout=30)


def test_opa_killed_means_503_and_nothing_written_then_whole_again_once_it_returns(
    private_opa: Restartable, keycloak: KeycloakServer, s3: S3Server, people: People, tmp_path: Path
) -> None:
    url = private_opa.spec.health_url.removesuffix("/health")
    service = start_live_service(url, keycloak, s3, tmp_path)
    try:
        staff = people.headers("staff")
        assert create(service, staff, "before").status_code == 201
        events_before = rows(service, "SELECT count(*) FROM audit_events")

        private_opa.kill()

        refused = create(service, staff, "during")
        assert refused.status_code == 503, refused.text
        assert refused.json()["message"] == "the policy engine cannot be reached: nothing is allowed until it can"
        assert requests.get(f"{service.api}/projects", headers=staff, timeout=30).status_code == 503
        assert rows(service, "SELECT id FROM projects ORDER BY id") == [("before",)]
        assert rows(service, "SELECT count(*) FROM audit_events") == events_before

        private_opa.start()  # an empty OPA: the service must push its data again

        def whole() -> bool:
            listed = requests.get(f"{service.api}/projects", headers=staff, timeout=30)
            return listed.status_code == 200 and {project["id"] for project in listed.json()} == {"before"}

        took = eventually(whole, 10, "whole again")
        print(f"whole again {took:.2f} s after OPA answered")
        assert create(service, staff, "after").status_code == 201
        audit_intact(service, staff)
    finally:
        service.stop()


def _writers(service: LiveService, headers: dict[str, str], count: int, stop: threading.Event) -> list[list[str]]:
    """``count`` loops creating projects until ``stop``; each returns the ids the service acknowledged (201)."""
    acknowledged: list[list[str]] = [[] for _ in range(count)]

    def loop(number: int) -> None:
        for sequence in range(10_000):
            if stop.is_set():
                return
            slug = f"w{number}-{sequence}"
            try:
                if create(service, headers, slug).status_code == 201:
                    acknowledged[number].append(slug)
            except requests.RequestException:
                time.sleep(0.05)  # the service is down: keep trying until told to stop

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(60)
    return acknowledged


def test_service_killed_under_four_writers_loses_no_acknowledged_write(
    live_service: LiveService, people: People
) -> None:
    staff = people.headers("staff")
    stop = threading.Event()
    result: list[list[list[str]]] = []
    runner = threading.Thread(target=lambda: result.append(_writers(live_service, staff, 4, stop)), daemon=True)
    runner.start()
    eventually(lambda: len(rows(live_service, "SELECT id FROM projects")) >= 20, 60, "writes before the kill")

    live_service.kill()
    time.sleep(0.5)
    live_service.start()
    eventually(lambda: len(rows(live_service, "SELECT id FROM projects")) >= 40, 60, "writes after the restart")
    stop.set()
    runner.join(60)

    acknowledged = {slug for loop in result[0] for slug in loop}
    stored = {slug for (slug,) in rows(live_service, "SELECT id FROM projects")}
    assert acknowledged <= stored, sorted(acknowledged - stored)
    created = {event["project_id"] for event in _project_creations(live_service, staff)}
    assert acknowledged <= created  # each acknowledged write has its audit event
    audit_intact(live_service, staff)


def _project_creations(service: LiveService, headers: dict[str, str]) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    after = 0
    while True:
        page = requests.get(
            f"{service.api}/audit",
            params={"action": "project.create", "after": after, "limit": 500},
            headers=headers,
            timeout=30,
        ).json()
        events += page["events"]
        if not page["events"]:
            return events
        after = page["events"][-1]["seq"]


@pytest.fixture
def service_on_private_postgres(
    opa: OpaServer, keycloak: KeycloakServer, s3: S3Server, private_postgres: PrivatePostgres, tmp_path: Path
) -> Iterator[LiveService]:
    service = start_live_service(
        opa.url, keycloak, s3, tmp_path, extra_env={"INFRACALC_DATABASE_URL": private_postgres.url}
    )
    try:
        yield service
    finally:
        service.stop()


def test_postgres_restarted_under_load_the_service_reconnects_without_a_restart(
    service_on_private_postgres: LiveService, private_postgres: PrivatePostgres, people: People
) -> None:
    service = service_on_private_postgres
    staff = people.headers("staff")
    stop = threading.Event()
    result: list[list[list[str]]] = []
    statuses: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                statuses.append(requests.get(f"{service.api}/projects", headers=staff, timeout=30).status_code)
            except requests.RequestException:
                statuses.append(0)

    threads = [
        threading.Thread(target=lambda: result.append(_writers(service, staff, 4, stop)), daemon=True),
        threading.Thread(target=reader, daemon=True),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)

    private_postgres.stop("fast")  # every connection cut
    time.sleep(2)
    down = statuses[-5:]
    private_postgres.start()
    took = eventually(lambda: create(service, staff, f"after-{time.monotonic_ns()}").status_code == 201, 30, "back")
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(60)

    # What people saw: while PostgreSQL was down, 503 (never a 500); afterwards, answers again.
    failures = [line for line in service.log().splitlines() if "-> 500" in line or "unexpected error" in line]
    assert 500 not in statuses, failures
    assert set(down) <= {503}, down
    assert statuses[-1] == 200
    print(f"writes accepted again {took:.2f} s after PostgreSQL answered")
    acknowledged = {slug for loop in result[0] for slug in loop}
    listed = requests.get(f"{service.api}/projects", headers=staff, timeout=30).json()
    assert acknowledged <= {project["id"] for project in listed}
    audit_intact(service, staff)

"""OPA decides every access: when it is down nothing is allowed, and after a restart its data comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from infracalc.audit import AuditCheckpoint, AuditEvent
from infracalc.config import SOURCE_ROOT
from infracalc.db import create_engine, session_factory
from infracalc.service.app import create_app
from infracalc.service.settings import ServiceSettings
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess
from infracalc.stack.servers import opa_spec
from infracalc.tools import Tools
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer
from tests.fixtures.service import People, ServiceUnderTest, service_env

pytestmark = pytest.mark.integration


class RestartableOpa:
    """An OPA of one test's own, which the test may stop and start again on the same port."""

    def __init__(self, tools: Tools, logs_dir: Path) -> None:
        self.port = free_port()
        spec = opa_spec(tools.opa, host="127.0.0.1", port=self.port, policies_dir=SOURCE_ROOT / "policies")
        self.process = ManagedProcess(spec, logs_dir / "opa-restartable.log")
        self.log_path = self.process.log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()
        self.process.wait_healthy()

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def own_opa(tools: Tools, logs_dir: Path) -> Iterator[RestartableOpa]:
    opa = RestartableOpa(tools, logs_dir)
    opa.start()
    yield opa
    opa.stop()


@pytest.fixture
async def service_on_own_opa(
    database_url: str, own_opa: RestartableOpa, keycloak: KeycloakServer, tmp_path: Path
) -> AsyncIterator[ServiceUnderTest]:
    settings = ServiceSettings.from_env(service_env(database_url, own_opa.url, keycloak, tmp_path))
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        yield ServiceUnderTest(app, client, settings, OpaServer(own_opa.url, own_opa.log_path))


async def test_opa_restart_is_noticed_and_data_pushed_again(
    service_on_own_opa: ServiceUnderTest, own_opa: RestartableOpa, people: People
) -> None:
    service = service_on_own_opa
    staff = people.headers("staff")
    created = await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "T"}, headers=staff)
    assert created.status_code == 201
    added = await service.client.put(
        f"/api/v1/projects/cohort/members/{people.username('researcher')}", json={"role": "member"}, headers=staff
    )
    assert added.status_code == 200
    member = people.headers("researcher")
    assert (await service.client.get("/api/v1/projects/cohort", headers=member)).status_code == 200

    own_opa.stop()
    # The same question was answered less than a second ago and may be answered from the decision
    # cache until its entry is a second old, or the data watch finds OPA gone: then nothing passes.
    await asyncio.sleep(1.1)
    assert (await service.client.get("/api/v1/projects/cohort", headers=member)).status_code == 503
    own_opa.start()  # a fresh OPA: policies loaded, data empty
    deadline = time.monotonic() + 10
    while service.opa_data("members") != {"cohort": {people.username("researcher"): {"role": "member"}}}:
        assert time.monotonic() < deadline, "the service did not push its data to the restarted OPA"
        await asyncio.sleep(0.2)
    assert (await service.client.get("/api/v1/projects/cohort", headers=member)).status_code == 200


async def test_opa_down_allows_nothing(
    database_url: str, keycloak: KeycloakServer, people: People, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = ServiceSettings.from_env(service_env(database_url, dead, keycloak, tmp_path))
    async with AsyncTestClient(create_app(settings)) as client:
        for who in ("staff", "researcher"):
            answer = await client.get("/api/v1/projects", headers=people.headers(who))
            assert answer.status_code == 503
            assert answer.json()["error"] == "unavailable"
        created = await client.post(
            "/api/v1/projects", json={"id": "x-y-z", "title": "T"}, headers=people.headers("staff")
        )
        assert created.status_code == 503
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert "opa" in ready.json()["down"]


async def test_ready_when_everything_answers(service: ServiceUnderTest) -> None:
    ready = await service.client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "ready": True,
        "checks": {"database": "ok", "opa": "ok", "s3": "ok", "keycloak_keys": "ok"},
        "down": [],
    }


async def test_shutdown_seals_the_audit_log(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, people: People, tmp_path: Path
) -> None:
    env = {**service_env(database_url, opa.url, keycloak, tmp_path), "INFRACALC_AUDIT_CHECKPOINT_EVERY": "1000"}
    settings = ServiceSettings.from_env(env)
    async with AsyncTestClient(create_app(settings)) as client:
        for slug in ("first", "second", "third"):
            created = await client.post(
                "/api/v1/projects", json={"id": slug, "title": "T"}, headers=people.headers("staff")
            )
            assert created.status_code == 201
    engine = create_engine(settings.database)
    try:
        async with session_factory(engine)() as session:
            last_event = await session.scalar(select(func.max(AuditEvent.seq)))
            last_sealed = await session.scalar(select(func.max(AuditCheckpoint.seq)))
    finally:
        await engine.dispose()
    assert last_event == 3
    assert last_sealed == 3


async def test_user_directory_down_adds_no_member(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, people: People, tmp_path: Path
) -> None:
    # A wrong client secret: Keycloak refuses the service account, so nobody can be looked up.
    env = {**service_env(database_url, opa.url, keycloak, tmp_path), "INFRACALC_API_CLIENT_SECRET": "wrong-secret"}
    async with AsyncTestClient(create_app(ServiceSettings.from_env(env))) as client:
        staff = people.headers("staff")
        assert (
            await client.post("/api/v1/projects", json={"id": "cohort", "title": "T"}, headers=staff)
        ).status_code == 201
        answer = await client.put(
            f"/api/v1/projects/cohort/members/{people.username('researcher')}", json={"role": "member"}, headers=staff
        )
        assert answer.status_code == 503
        assert "user directory" in answer.json()["message"]
        project = (await client.get("/api/v1/projects/cohort", headers=staff)).json()
        assert project["members"] == []

"""The write path's guarantees, with OPA's writes held back by a relay so that a broken order shows.

An answer to a change comes after the change and its audit event are committed and after OPA holds
the copy; one change is one request to OPA; pushes that overlap cannot leave OPA with the older
state; concurrent changes share requests; an OPA that lost its data gets all of it back within the
change's own push; a removal of what OPA does not hold still succeeds.

The service runs as ``infracalc serve`` (Litestar's test client would hold the test's event loop
during a request, so a test could not look at the state while a write is held).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from sqlalchemy import func, select

from infracalc.audit import AuditEvent
from infracalc.db import DatabaseSettings, EgressRule, Member, Project, create_engine, session_factory
from infracalc.stack.ports import free_port
from tests.fixtures.keycloak import KeycloakServer
from tests.fixtures.servers import OpaServer
from tests.fixtures.service import People, service_env
from tests.support.processes import answers, start_server, stop
from tests.support.slow_opa import SlowOpa, slow_opa

pytestmark = pytest.mark.integration

JUSTIFICATION = "the cohort study needs the public weather API"
#: How long a held write is left waiting before a test checks that nothing answered meanwhile.
HOLD = 0.5


@dataclass
class Relayed:
    """The running service, its client, the relay its OPA writes go through, and the real OPA behind."""

    client: httpx.AsyncClient
    relay: SlowOpa
    opa: OpaServer
    database_url: str

    def opa_data(self, document: str) -> Any:
        """What OPA holds now at ``data.store.infracalc.<document>`` (``None`` when undefined), read directly."""
        return requests.get(f"{self.opa.url}/v1/data/store/infracalc/{document}", timeout=5).json().get("result")

    async def rows(self) -> dict[str, Any]:
        """What the database holds now: projects, memberships, the number of egress rules and audit events."""
        engine = create_engine(DatabaseSettings.from_url(self.database_url))
        try:
            async with session_factory(engine, read_only=True)() as session:
                projects = {p.id: (p.title, p.governance.value) for p in (await session.scalars(select(Project)))}
                members = {(m.project_id, m.username, m.role.value) for m in await session.scalars(select(Member))}
                rules = await session.scalar(select(func.count()).select_from(EgressRule))
                events = await session.scalar(select(func.count()).select_from(AuditEvent))
        finally:
            await engine.dispose()
        return {"projects": projects, "members": members, "egress_rules": rules, "audit_events": events}

    async def until(self, condition: Callable[[dict[str, Any]], bool]) -> None:
        """Wait until the database's state (:meth:`rows`) meets ``condition``."""
        deadline = time.monotonic() + 60
        while not condition(await self.rows()):
            assert time.monotonic() < deadline, "the changes were not committed"
            await asyncio.sleep(0.1)


@pytest.fixture
async def relayed(
    database_url: str, opa: OpaServer, keycloak: KeycloakServer, tmp_path: Path
) -> AsyncIterator[Relayed]:
    """``infracalc serve`` talking to the real OPA through a relay that can hold its writes."""
    with slow_opa(opa.url) as relay:
        port = free_port()
        env = {
            **service_env(database_url, relay.url, keycloak, tmp_path),
            "INFRACALC_HOST": "127.0.0.1",
            "INFRACALC_SERVICE_PORT": str(port),
            # Held writes must not time out while a test inspects the state around them.
            "INFRACALC_OPA_TIMEOUT": "60",
        }
        url = f"http://127.0.0.1:{port}"
        process = start_server(
            [sys.executable, "-m", "infracalc", "serve"],
            env={**os.environ, **env},
            log_path=tmp_path / "service.log",
            ready=answers(f"{url}/health"),
            what="the service",
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                relay.writes.clear()  # the start-up resync
                yield Relayed(client, relay, opa, database_url)
        finally:
            stop(process)


async def test_the_answer_comes_after_the_change_its_audit_event_and_opas_copy(
    relayed: Relayed, people: People
) -> None:
    service, relay = relayed, relayed.relay
    staff = people.headers("staff")
    relay.gate.clear()
    relay.write_arrived.clear()
    answer = asyncio.create_task(
        service.client.post("/api/v1/projects", json={"id": "cohort", "title": "Cohort"}, headers=staff)
    )
    await relay.wait_for_write()
    # OPA's copy is on its way and held: the change and its audit event are committed already...
    state = await service.rows()
    assert state["projects"] == {"cohort": ("Cohort", "CASD")}
    assert state["audit_events"] == 1
    assert service.opa_data("projects") in ({}, None)
    # ... and no answer has been sent while OPA does not hold the copy.
    await asyncio.sleep(HOLD)
    assert not answer.done()
    relay.gate.set()
    created = await answer
    assert created.status_code == 201, created.text
    assert service.opa_data("projects") == {
        "cohort": {"title": "Cohort", "governance": "CASD", "sensitive_data": False}
    }
    assert service.opa_data("members") == {"cohort": {}}
    # One change, one request: a JSON Patch of the project's documents and its revision.
    assert relay.writes == [("PATCH", "store/infracalc", 204)]


async def test_an_older_push_held_back_never_overwrites_a_newer_change(relayed: Relayed, people: People) -> None:
    service, relay = relayed, relayed.relay
    staff = people.headers("staff")
    researcher = people.username("researcher")
    assert (
        await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "T"}, headers=staff)
    ).status_code == 201
    member = f"/api/v1/projects/cohort/members/{researcher}"
    assert (await service.client.put(member, json={"role": "member"}, headers=staff)).status_code == 200

    relay.gate.clear()
    relay.write_arrived.clear()
    first = asyncio.create_task(service.client.put(member, json={"role": "lead"}, headers=staff))
    await relay.wait_for_write()  # the push of "lead" is on its way, held
    second = asyncio.create_task(service.client.put(member, json={"role": "member"}, headers=staff))
    await service.until(lambda state: ("cohort", researcher, "member") in state["members"])
    # The database says "member" (committed last) while the push of "lead" is still held: let it land.
    relay.gate.set()
    assert (await first).status_code == 200
    assert (await second).status_code == 200
    assert service.opa_data("members") == {"cohort": {researcher: {"role": "member"}}}


async def test_concurrent_changes_share_their_requests_to_opa(relayed: Relayed, people: People) -> None:
    service, relay = relayed, relayed.relay
    staff = people.headers("staff")
    created = await service.client.post(
        "/api/v1/projects", json={"id": "cohort", "title": "T", "governance": "INFRACALC"}, headers=staff
    )
    assert created.status_code == 201
    relay.writes.clear()
    relay.gate.clear()
    relay.write_arrived.clear()
    changes = [
        asyncio.create_task(
            service.client.post(
                "/api/v1/projects/cohort/egress-requests",
                json={"host": f"api{i}.example.org", "justification": JUSTIFICATION},
                headers=staff,
            )
        )
        for i in range(20)
    ]
    await relay.wait_for_write()
    await service.until(lambda state: state["egress_rules"] == len(changes))
    await asyncio.sleep(1)  # from its commit to asking for its push, a request takes well under a second
    relay.gate.set()
    answers = await asyncio.gather(*changes)
    assert [answer.status_code for answer in answers] == [201] * len(changes)
    # The first push was held while the 19 others committed: they all wait for one next batch.
    assert relay.writes == [("PATCH", "store/infracalc", 204)] * 2


async def test_a_change_after_opa_lost_its_data_puts_everything_back_before_the_answer(
    relayed: Relayed, people: People
) -> None:
    service, relay = relayed, relayed.relay
    staff = people.headers("staff")
    for slug in ("first", "second"):
        created = await service.client.post("/api/v1/projects", json={"id": slug, "title": "T"}, headers=staff)
        assert created.status_code == 201
    requests.delete(f"{service.opa.url}/v1/data/store/infracalc", timeout=5).raise_for_status()
    relay.writes.clear()

    created = await service.client.post("/api/v1/projects", json={"id": "third", "title": "T"}, headers=staff)

    assert created.status_code == 201
    assert sorted(service.opa_data("projects")) == ["first", "second", "third"]
    assert set(service.opa_data("sync")) == {"generation"}  # written by a full write only
    # The patch found no parents; the same push wrote the whole document instead.
    assert relay.writes == [("PATCH", "store/infracalc", 404), ("PUT", "store/infracalc", 204)]


async def test_removing_a_document_opa_does_not_hold_still_answers(relayed: Relayed, people: People) -> None:
    service, relay = relayed, relayed.relay
    staff = people.headers("staff")
    researcher = people.username("researcher")
    networks = f"/api/v1/users/{researcher}/networks"

    cleared = await service.client.put(networks, json={"networks": []}, headers=staff)

    assert cleared.status_code == 200, cleared.text
    assert researcher not in (service.opa_data("users") or {})
    assert relay.writes == [
        ("PATCH", "store/infracalc", 404),
        ("DELETE", f"store/infracalc/users/{researcher}", 404),
    ]
    relay.writes.clear()
    registered = await service.client.put(networks, json={"networks": ["203.0.113.0/24"]}, headers=staff)
    assert registered.status_code == 200
    assert service.opa_data("users")[researcher] == {"networks": ["203.0.113.0/24"]}
    cleared = await service.client.put(networks, json={"networks": []}, headers=staff)
    assert cleared.status_code == 200
    assert researcher not in service.opa_data("users")
    assert relay.writes == [("PATCH", "store/infracalc", 204)] * 2

"""The hottest reads: one statement, outside any transaction, on an engine that does not check connections first."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from infracalc.db import DatabaseSettings, create_engine
from tests.fixtures.service import People, ServiceUnderTest

pytestmark = pytest.mark.integration


async def test_a_project_reads_the_same_through_the_hot_path(service: ServiceUnderTest, people: People) -> None:
    staff = people.headers("staff")
    created = await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "Cohort"}, headers=staff)
    assert created.status_code == 201
    empty = (await service.client.get("/api/v1/projects/cohort", headers=staff)).json()
    assert empty == {**created.json(), "members": []}  # a project without members is one row of nulls
    for who, role in (("researcher", "member"), ("lead", "lead")):
        added = await service.client.put(
            f"/api/v1/projects/cohort/members/{people.username(who)}", json={"role": role}, headers=staff
        )
        assert added.status_code == 200
    read = (await service.client.get("/api/v1/projects/cohort", headers=staff)).json()
    assert [member["username"] for member in read["members"]] == sorted(
        people.username(who) for who in ("researcher", "lead")
    )
    assert (await service.client.get("/api/v1/projects/nowhere", headers=staff)).status_code == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no server to drop a connection
async def test_a_hot_read_survives_connections_the_database_dropped(
    service: ServiceUnderTest, people: People, database_url: str
) -> None:
    staff = people.headers("staff")
    assert (
        await service.client.post("/api/v1/projects", json={"id": "cohort", "title": "T"}, headers=staff)
    ).status_code == 201
    assert (await service.client.get("/api/v1/projects/cohort", headers=staff)).status_code == 200
    # What a PostgreSQL restart does to the service's pooled connections.
    admin = create_engine(DatabaseSettings.from_url(database_url))
    try:
        async with admin.connect() as connection:
            dropped = (
                await connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
    finally:
        await admin.dispose()
    assert dropped >= 1
    answer = await service.client.get("/api/v1/projects/cohort", headers=staff)
    assert answer.status_code == 200, answer.text

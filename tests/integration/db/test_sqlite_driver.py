"""The SQLite driver: one trip to aiosqlite's thread per statement, with the same results and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from infracalc.db import DatabaseSettings, Governance, Project, create_engine, session_factory, sqlite_driver, upgrade

pytestmark = pytest.mark.integration


@pytest.fixture(params=["plain", "writer"])
async def engine(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """An engine whose statements take a trip each (``plain``), or the service's writer, inline after BEGIN."""
    settings = DatabaseSettings.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    await upgrade(settings)
    engine = create_engine(settings, writer=request.param == "writer")
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function run in a connection's thread (one per trip)."""
    seen: list[str] = []
    original = sqlite_driver.Connection._execute

    async def counted(self: sqlite_driver.Connection, function: object, *args: object, **kwargs: object) -> object:
        seen.append(getattr(getattr(function, "func", function), "__name__", repr(function)))
        return await original(self, function, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.Connection, "_execute", counted)
    return seen


async def test_a_write_transaction_takes_one_trip_per_statement(engine: AsyncEngine, trips: list[str]) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(select(Project))  # the connection is made and tuned here
    trips.clear()
    async with sessions() as session, session.begin():
        assert (await session.scalars(select(Project.id))).all() == []
        session.add(Project(id="p1", title="t", governance=Governance.CASD))
        await session.flush()
        changed = await session.execute(update(Project).where(Project.id == "p1").values(title="u"))
        assert changed.rowcount == 1
    # BEGIN, SELECT, INSERT, UPDATE, COMMIT; nothing left to roll back when the connection goes back. The
    # writer's statements run inline once BEGIN IMMEDIATE holds the write lock: only BEGIN and COMMIT travel.
    if engine.pool.size() == 1:  # the writer engine
        assert trips == ["_execute", "commit"]
    else:
        assert trips == ["_execute", "_execute", "_execute", "_execute", "commit"]


async def test_hot_reads_take_no_trip(tmp_path: Path, trips: list[str]) -> None:
    settings = DatabaseSettings.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    await upgrade(settings)
    engine = create_engine(settings, one_statement=True)
    try:
        async with engine.connect() as connection:  # the connection is made and tuned here
            assert (await connection.execute(select(Project.id))).all() == []
        trips.clear()
        for _ in range(3):
            async with engine.connect() as connection:
                assert (await connection.execute(select(func.count()).select_from(Project))).scalar_one() == 0
        assert trips == []
    finally:
        await engine.dispose()


async def test_rows_counts_and_errors_are_the_drivers_own(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(Project), [{"id": f"p{i}", "title": "t", "governance": Governance.CASD} for i in range(3)]
        )
        assert (await connection.execute(select(func.count()).select_from(Project))).scalar_one() == 3
        rows = (await connection.execute(select(Project.id).order_by(Project.id))).all()
        assert [row.id for row in rows] == ["p0", "p1", "p2"]
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(Project).values(id="p1", title="again", governance=Governance.CASD))
    async with engine.connect() as connection:  # the failed transaction was rolled back, the connection is usable
        assert (await connection.execute(select(Project.title).where(Project.id == "p1"))).scalar_one() == "t"

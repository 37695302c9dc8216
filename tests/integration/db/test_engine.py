"""The engine: SQLite tuned for concurrent writers (WAL, foreign keys, BEGIN IMMEDIATE), read-only sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.db import DatabaseSettings, Governance, Project, create_engine, session_factory, upgrade

pytestmark = pytest.mark.integration


async def sqlite_engine(tmp_path: Path, busy_timeout_ms: int = 30_000) -> AsyncEngine:
    settings = DatabaseSettings.from_url(
        f"sqlite:///{tmp_path / 'sub' / 'dir' / 'x.db'}", busy_timeout_ms=busy_timeout_ms
    )
    await upgrade(settings)
    return create_engine(settings)


async def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = await sqlite_engine(tmp_path, busy_timeout_ms=1234)
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 1234}


async def test_sqlite_writers_queue_at_begin_instead_of_failing_late(tmp_path: Path) -> None:
    """Two transactions that read then write: with deferred BEGIN the second would fail (SQLITE_BUSY)."""
    engine = await sqlite_engine(tmp_path)
    sessions = session_factory(engine)
    order: list[str] = []
    first_has_read = asyncio.Event()

    async def read_then_write(name: str) -> None:
        if name == "second":
            await first_has_read.wait()
        async with sessions() as session, session.begin():
            count = len((await session.scalars(select(Project))).all())
            order.append(f"{name} read {count}")
            if name == "first":
                first_has_read.set()
                await asyncio.sleep(0.3)  # the second transaction starts meanwhile
            session.add(Project(id=f"p-{name}", title=name, governance=Governance.CASD))
        order.append(f"{name} committed")

    try:
        await asyncio.gather(read_then_write("first"), read_then_write("second"))
    finally:
        await engine.dispose()
    # The second transaction waited at BEGIN for the first to commit, then saw its row.
    assert order == ["first read 0", "first committed", "second read 1", "second committed"]


async def test_a_writer_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    engine = await sqlite_engine(tmp_path, busy_timeout_ms=100)
    sessions = session_factory(engine)
    try:
        async with sessions() as holder, holder.begin():
            await holder.execute(select(Project))
            with pytest.raises(OperationalError, match="database is locked"):
                async with sessions() as other, other.begin():
                    await other.execute(select(Project))
    finally:
        await engine.dispose()


async def test_sqlite_read_only_sessions_do_not_take_the_write_lock(tmp_path: Path) -> None:
    engine = await sqlite_engine(tmp_path, busy_timeout_ms=100)
    try:
        async with session_factory(engine, read_only=True)() as reader, reader.begin():
            assert (await reader.scalars(select(Project))).all() == []
            async with session_factory(engine)() as writer, writer.begin():
                writer.add(Project(id="p1", title="t", governance=Governance.CASD))
            # The reader's snapshot predates the write (WAL): it still sees nothing.
            assert (await reader.scalars(select(Project))).all() == []
    finally:
        await engine.dispose()


async def test_read_only_sessions_refuse_writes_on_postgresql(postgres_test_database: str) -> None:
    engine = create_engine(DatabaseSettings.from_url(postgres_test_database))
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with session_factory(engine, read_only=True)() as session, session.begin():
                await session.execute(text("CREATE TABLE refused (x integer)"))
    finally:
        await engine.dispose()


async def test_sessions_keep_objects_usable_after_commit(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        async with session.begin():
            project = Project(id="p1", title="Kept", governance=Governance.INFRACALC)
            session.add(project)
        assert project.title == "Kept"  # no expired attributes, no implicit I/O after commit


async def concurrent_writers(engine: AsyncEngine, count: int = 20) -> None:
    """``count`` write transactions at once, each reading then writing, on connections that never wait for a lock."""

    @event.listens_for(engine.sync_engine, "connect")
    def no_waiting(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")  # SQLite refuses a second writer at once, instead of polling
        cursor.close()

    sessions = session_factory(engine)

    async def write(index: int) -> None:
        async with sessions() as session, session.begin():
            await session.execute(select(Project))
            await asyncio.sleep(0.01)  # the other writers arrive meanwhile
            session.add(Project(id=f"p{index}", title="t", governance=Governance.CASD))

    await asyncio.gather(*(write(index) for index in range(count)))


async def test_sqlite_writers_of_the_writer_engine_take_turns_without_meeting_the_lock(tmp_path: Path) -> None:
    settings = DatabaseSettings.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    await upgrade(settings)
    engine = create_engine(settings, writer=True)
    try:
        await concurrent_writers(engine)
        async with session_factory(engine)() as session:
            assert len((await session.scalars(select(Project))).all()) == 20
    finally:
        await engine.dispose()


async def test_the_same_writers_on_several_connections_meet_the_lock(tmp_path: Path) -> None:
    """Through an ordinary engine the same writers collide in SQLite: the test above could fail."""
    settings = DatabaseSettings.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    await upgrade(settings)
    engine = create_engine(settings)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            await concurrent_writers(engine)
    finally:
        await engine.dispose()


async def test_the_one_statement_engine_reads_outside_any_transaction(database_url: str) -> None:
    engine = create_engine(DatabaseSettings.from_url(database_url), one_statement=True)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        for _ in range(2):  # a fresh connection, then one from the pool
            statements.clear()
            async with engine.connect() as connection:
                assert (await connection.execute(select(Project.id))).all() == []
            assert [statement.split()[0] for statement in statements] == ["SELECT"]  # no BEGIN before it
        if engine.dialect.name == "postgresql":
            # PostgreSQL begins no transaction through a cursor: in autocommit, each statement is its own
            # transaction, so now() moves between two statements (inside one transaction it would not).
            async with engine.connect() as connection:
                first = (await connection.execute(select(func.now()))).scalar_one()
                await asyncio.sleep(0.01)
                assert (await connection.execute(select(func.now()))).scalar_one() > first
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite connections cost no server process
@pytest.mark.parametrize("engine_kind", ["one_statement", "writer"])
async def test_postgresql_hot_reads_and_writers_keep_the_connections_they_open(
    database_url: str, engine_kind: str
) -> None:
    """More concurrent statements than the pool holds wait for a connection rather than open and close one each."""
    engine = create_engine(DatabaseSettings.from_url(database_url), **{engine_kind: True})
    connects: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda *args: connects.append(args))

    async def read() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_sleep(0.01)"))

    try:
        for _ in range(3):
            await asyncio.gather(*(read() for _ in range(30)))
        assert 1 <= len(connects) <= engine.pool.size() <= 10
    finally:
        await engine.dispose()

"""The async engine and session factory, created in one place with each database's settings.

SQLite is tuned for a service with concurrent writers:

- WAL journal, so readers never wait for the writer and the writer never waits for readers;
- ``foreign_keys=ON`` (SQLite ignores foreign keys otherwise);
- ``busy_timeout``, so a writer waits for the write lock instead of failing at once;
- statements go through :mod:`infracalc.db.sqlite_driver`, one trip to aiosqlite's thread each (none on
  the writer's and the hot reads' connections, where a statement cannot wait for a lock);
- write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front, so concurrent
  writers queue at BEGIN rather than failing late (``SQLITE_BUSY`` when a deferred transaction that
  has already read tries to write). The Python driver's own transaction handling is switched off
  and SQLAlchemy emits BEGIN itself (SQLAlchemy's documented recipe for pysqlite/aiosqlite).

Read-only sessions (:func:`session_factory` with ``read_only=True``) start with a plain deferred
``BEGIN`` on SQLite, so long reads such as audit verification never hold the write lock; on
PostgreSQL they are ``READ ONLY`` transactions, refused any write.

The service writes through an engine of its own made with ``writer=True``: on SQLite it holds one
connection, so that write transactions queue for it in the event loop, in order, and each starts
as soon as the previous one ends. With several connections they would queue inside SQLite instead,
whose busy handler polls the lock with sleeps of up to 100 ms: under fifty concurrent writes that
turned a few milliseconds of work into seconds. SQLite admits one writer at a time anyway, so
nothing is lost; reads go through another engine and never wait for it. On PostgreSQL
``writer=True`` changes nothing (row locks wait in the server, without polling).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from infracalc.db import sqlite_driver
from infracalc.db.settings import DatabaseSettings

#: Execution option marking a connection's transactions as read-only (deferred BEGIN on SQLite).
READ_ONLY_OPTION = "infracalc_read_only"
#: Execution option of a connection that runs one statement at a time, without BEGIN (see :func:`create_engine`).
ONE_STATEMENT_OPTION = "infracalc_one_statement"


def create_engine(settings: DatabaseSettings, *, writer: bool = False, one_statement: bool = False) -> AsyncEngine:
    """The async engine for ``settings``; on SQLite, creates the database's directory when missing.

    Args:
        settings: the database.
        writer: the engine of the service's write transactions (see the module docstring): one
            connection on SQLite, for which writers wait in turn (up to the busy timeout).
        one_statement: an engine for the hottest reads, one statement per connection, outside any
            transaction: SQLite reads a lone statement in a snapshot of its own, PostgreSQL runs it in
            autocommit, without the pool's liveness check. That spares a ``BEGIN`` and a ``ROLLBACK``
            (on PostgreSQL, four round trips of five). Two statements on one of its connections would
            each see their own snapshot: use it for single statements only. Reads only.
    """
    read_only: dict[str, Any] = {READ_ONLY_OPTION: True, ONE_STATEMENT_OPTION: True} if one_statement else {}
    if settings.backend == "postgresql":
        # The pool's liveness check costs a round trip per checkout: the hot reads skip it and find a
        # dropped connection by their statement failing (see ServiceContext.read_rows, which retries once).
        hot: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_pre_ping": False} if one_statement else {}
        engine = create_async_engine(
            settings.url, **{"pool_pre_ping": True, **_postgres_pool(writer, one_statement), **hot}
        )
        return engine.execution_options(**read_only) if read_only else engine
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = (
        {"pool_size": 1, "max_overflow": 0, "pool_timeout": settings.busy_timeout_ms / 1000} if writer else {}
    )
    if path is not None:
        # One trip to aiosqlite's thread per statement (see infracalc.db.sqlite_driver).
        # The writer's and the hot reads' statements run inline, where they cannot wait (see there).
        options["async_creator"] = partial(sqlite_driver.connect, str(path), inline=writer or one_statement)
    engine = create_async_engine(settings.url, **options)
    _tune_sqlite(engine, settings.busy_timeout_ms)
    return engine.execution_options(**read_only) if read_only else engine


def _postgres_pool(writer: bool, one_statement: bool) -> dict[str, Any]:
    """The pool of a PostgreSQL engine: the writer's and the hot reads' keep every connection they open.

    A pool's overflow connections are closed when they come back: under more concurrent requests
    than its size, each request beyond it opened a connection (a new server process, authentication)
    and closed it, which cost more than the statement (20 clients reading: 117 requests/s, against
    365 on SQLite). Requests beyond the pool wait for a connection instead. Writers take turns at
    the audit head's row lock anyway, so five connections serve them; hot reads take ten. Small
    pools also keep replicas within the server's ``max_connections``.
    """
    if one_statement:
        return {"pool_size": 10, "max_overflow": 0}
    if writer:
        return {"pool_size": 5, "max_overflow": 0}
    return {}


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver: BEGIN is emitted by on_begin below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            # With WAL, NORMAL loses no committed transaction on a crash of the process, only on power loss.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(ONE_STATEMENT_OPTION, False):
            return  # SQLite runs a lone statement in a read transaction of its own
        connection.exec_driver_sql("BEGIN DEFERRED" if options.get(READ_ONLY_OPTION, False) else "BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine, *, read_only: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; objects stay usable after commit (``expire_on_commit=False``).

    Use ``async with factory() as session, session.begin():`` so that the change and its audit event
    commit together. ``read_only=True`` gives sessions for queries only (see the module docstring).
    """
    bind = engine
    if read_only:
        options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        bind = engine.execution_options(**options)
    return async_sessionmaker(bind, expire_on_commit=False)

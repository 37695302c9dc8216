"""The async engine and session factory, created in one place with each database's settings.

SQLite is tuned for a service with concurrent writers:

- WAL journal, so readers never wait for the writer and the writer never waits for readers;
- ``foreign_keys=ON`` (SQLite ignores foreign keys otherwise);
- ``busy_timeout``, so a writer waits for the write lock instead of failing at once;
- write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front, so concurrent
  writers queue at BEGIN rather than failing late (``SQLITE_BUSY`` when a deferred transaction that
  has already read tries to write). The Python driver's own transaction handling is switched off
  and SQLAlchemy emits BEGIN itself (SQLAlchemy's documented recipe for pysqlite/aiosqlite).

Read-only sessions (:func:`session_factory` with ``read_only=True``) start with a plain deferred
``BEGIN`` on SQLite, so long reads such as audit verification never hold the write lock; on
PostgreSQL they are ``READ ONLY`` transactions, refused any write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from infracalc.db.settings import DatabaseSettings

#: Execution option marking a connection's transactions as read-only (deferred BEGIN on SQLite).
READ_ONLY_OPTION = "infracalc_read_only"


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """The async engine for ``settings``; on SQLite, creates the database's directory when missing."""
    if settings.backend == "postgresql":
        return create_async_engine(settings.url, pool_pre_ping=True)
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(settings.url)
    _tune_sqlite(engine, settings.busy_timeout_ms)
    return engine


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
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


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

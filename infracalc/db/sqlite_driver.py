"""aiosqlite with one trip to its thread per statement instead of three or four.

aiosqlite runs each SQLite call in a thread of its own connection and hands the result back to the
event loop. Through SQLAlchemy, one statement makes several such trips: open a cursor, execute,
fetch the rows, close the cursor. Each trip hands the GIL to that thread and back; on a busy
machine it costs about a millisecond of the event loop's time (measured with cProfile: ``put_nowait``
of aiosqlite's queue, about 1 ms a call, 17 calls per audit append and 21 per push's reads). A
write transaction of seven statements made some twenty-five trips.

:class:`Connection` is aiosqlite's connection whose :meth:`~Connection.cursor` gives a
:class:`Cursor` that does everything in one trip: :meth:`Cursor.execute` creates a sqlite3 cursor,
executes, reads every row when the statement returns rows, and closes it, in the connection's
thread; fetching and closing then cost nothing. SQLAlchemy's own cursor fetches every row right
after executing anyway (it is not a server-side cursor), so what the database does is unchanged:
the same statements, on the same connection, in the same order. SQLAlchemy accepts it through
``create_async_engine(..., async_creator=...)``, its documented way to supply the driver's
connection (:func:`connect`). Everything else (transactions, ``Connection.execute`` used by audit
verification) is aiosqlite's own.

A connection made with ``inline=True`` goes further: its statements run in the caller's thread (the
event loop's), with no trip at all, except those that may wait for a lock (``BEGIN``, ``PRAGMA``),
and ``COMMIT`` (aiosqlite's own, which may also checkpoint the WAL). On a loaded machine a trip costs
more than the statement: the thread must take the GIL from the event loop, which holds it until it
waits or for up to the interpreter's switch interval (5 ms). That is safe only where no other statement
can wait: the service's write connection once ``BEGIN IMMEDIATE`` holds the write lock (nothing else
writes), and its hot reads (one short statement in WAL mode, where readers take no lock a writer
holds). Long reads (audit verification) keep to connections that are not inline.

It relies on two attributes aiosqlite keeps private, stable since its first releases: ``_execute``
(run a function in the connection's thread) and ``_conn`` (the sqlite3 connection, to be used in
that thread only). Every database test exercises this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite

#: What one trip brings back: description, rowcount, lastrowid, rows.
_Outcome = tuple[Any, int, int | None, list[Any]]


class Cursor:
    """A DB-API cursor for SQLAlchemy's aiosqlite adapter whose statements each take one trip to the thread."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        """Execute ``sql`` and read its rows, in one trip to the connection's thread (or none, inline)."""
        self._keep(await self._connection.run(sql, partial(_execute, self._connection, sql, parameters)))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        """Execute ``sql`` once per parameter set, in one trip (or none, inline)."""
        self._keep(await self._connection.run(sql, partial(_execute_many, self._connection, sql, parameters)))
        return self

    def _keep(self, outcome: _Outcome) -> None:
        self.description, self.rowcount, self.lastrowid, self._rows = outcome

    async def fetchone(self) -> Any:
        """The next row read, or ``None``."""
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` of the rows read."""
        count = self.arraysize if size is None else size
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def fetchall(self) -> list[Any]:
        """Every row read and not fetched yet."""
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed in the thread."""
        self._rows = []


def _execute(connection: Connection, sql: str, parameters: Sequence[Any] | dict[str, Any] | None) -> _Outcome:
    """In the connection's thread: execute, read, close."""
    cursor = connection.sqlite_connection.cursor()
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _execute_many(connection: Connection, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> _Outcome:
    cursor = connection.sqlite_connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


#: Statements that may wait for a lock: always run in the connection's thread.
_MAY_WAIT = ("BEGIN", "PRAGMA")


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, whose cursors take one trip per statement (none when :attr:`inline`)."""

    #: Statements run in the caller's thread, except those of :data:`_MAY_WAIT` (see the module docstring).
    inline = False

    async def run(self, sql: str, function: Any) -> Any:
        """Run ``function()``, the execution of ``sql``: inline when it cannot wait, else in the thread."""
        if self.inline and not sql.lstrip()[:6].upper().startswith(_MAY_WAIT):
            return function()
        return await self.run_in_thread(function)

    def cursor(self) -> Cursor:  # type: ignore[override]  # SQLAlchemy only enters it (``__aenter__``)
        """A :class:`Cursor` (made here, without a trip)."""
        return Cursor(self)

    async def rollback(self) -> None:
        """Roll back the transaction in progress; with none (after a commit, or a lone statement), no trip at all.

        SQLAlchemy rolls back when a connection goes back to its pool, committed or not. Between two
        statements nothing runs on the connection, so reading its state from the event loop is safe.
        """
        if self.sqlite_connection.in_transaction:
            await super().rollback()

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        """The sqlite3 connection; use it only in the connection's thread (from :meth:`run_in_thread`)."""
        return self._conn

    async def run_in_thread(self, function: Any) -> Any:
        """Run ``function()`` in the connection's thread; its result or its exception."""
        return await self._execute(function)  # type: ignore[no-untyped-call]  # aiosqlite's, untyped


async def connect(database: str, *, inline: bool = False) -> Connection:
    """A started connection to the SQLite file ``database`` (for ``create_async_engine(async_creator=...)``).

    ``inline``: run its statements in the caller's thread (see the module docstring).
    """
    # As SQLAlchemy's aiosqlite dialect connects to a file: the connection moves to aiosqlite's thread.
    connection = Connection(partial(sqlite3.connect, database, check_same_thread=False), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never hold the process at exit
    await connection  # starts the thread and connects; gives back the connection itself
    connection.inline = inline
    return connection

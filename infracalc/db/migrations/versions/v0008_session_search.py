"""Session search: the words of each event, and a full-text index over them on each database.

``session_events.search_text`` holds the words of an event's summary and of its details' values,
lowercased, one space apart (``infracalc.casd.sessions.indexed_text``). SQLite indexes it with an
FTS5 table that reads its text from ``session_events`` (external content) and is kept in step by
triggers; PostgreSQL with a GIN index on ``to_tsvector('simple', search_text)``. Existing events are
back-filled.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of infracalc.casd.sessions.words and indexed_text as they were when this revision was written: a
# migration must give the same result whatever the code becomes.
_WORD = re.compile(r"[^\W_]+")
_MAX_WORD_LENGTH = 200
_BATCH = 500

_SQLITE_CREATE = (
    # remove_diacritics 0: PostgreSQL's 'simple' configuration keeps accents too, so both match alike.
    "CREATE VIRTUAL TABLE session_events_fts USING fts5("
    "search_text, content='session_events', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER session_events_fts_insert AFTER INSERT ON session_events BEGIN "
    "INSERT INTO session_events_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER session_events_fts_delete AFTER DELETE ON session_events BEGIN "
    "INSERT INTO session_events_fts(session_events_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER session_events_fts_update AFTER UPDATE OF search_text ON session_events BEGIN "
    "INSERT INTO session_events_fts(session_events_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO session_events_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS session_events_fts_update",
    "DROP TRIGGER IF EXISTS session_events_fts_delete",
    "DROP TRIGGER IF EXISTS session_events_fts_insert",
    "DROP TABLE IF EXISTS session_events_fts",
)


def _words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if len(word) <= _MAX_WORD_LENGTH]


def _indexed_text(summary: str, details: Any) -> str:
    found = _words(summary)
    pending: list[Any] = [details]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            pending.extend(reversed(value))
        elif isinstance(value, str):
            found.extend(_words(value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.extend(_words(str(value)))
    return " ".join(found)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _existing_events(connection: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """Existing events in batches of ids and their search text, by id (keyset, so memory stays flat)."""
    last = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT id, summary, details FROM session_events WHERE id > :last ORDER BY id LIMIT :batch"),
            {"last": last, "batch": _BATCH},
        ).all()
        if not rows:
            return
        # The drivers give JSON columns as text here (a plain SQL query carries no column types).
        yield [{"event_id": row.id, "text": _indexed_text(row.summary, _json(row.details))} for row in rows]
        last = rows[-1].id


def upgrade() -> None:
    """Add and back-fill ``session_events.search_text``; create the full-text index of the database."""
    op.add_column("session_events", sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    connection = op.get_bind()
    for batch in _existing_events(connection):
        connection.execute(sa.text("UPDATE session_events SET search_text = :text WHERE id = :event_id"), batch)
    if connection.dialect.name == "sqlite":
        for statement in _SQLITE_CREATE:
            op.execute(statement)
        # The triggers cover new events; 'rebuild' indexes the ones already there.
        op.execute("INSERT INTO session_events_fts(session_events_fts) VALUES ('rebuild')")
    else:
        op.execute(
            "CREATE INDEX ix_session_events_search ON session_events USING gin (to_tsvector('simple', search_text))"
        )


def downgrade() -> None:
    """Drop the full-text index and ``session_events.search_text``."""
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DROP:
            op.execute(statement)
    else:
        op.execute("DROP INDEX IF EXISTS ix_session_events_search")
    with op.batch_alter_table("session_events") as batch:
        batch.drop_column("search_text")

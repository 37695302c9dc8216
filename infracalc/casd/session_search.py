"""Session search: CASD staff find sessions by user, project, time and the words of their events.

A search gives the sessions that match every criterion given, newest first, a page at a time:

- ``username``, ``project``: exact;
- ``since`` / ``until``: the session overlaps that range (opened before ``until``, and still open or
  closed after ``since``);
- ``text``: at least one event of the session contains every word of the text, in its summary or
  its details (the proxy's hosts and reasons, a code cell's source...). Words are runs of letters
  and digits, matched whole and without regard to case (:func:`infracalc.casd.sessions.words`):
  ``pd.read_csv`` finds events holding ``pd``, ``read`` and ``csv``.

The text is a person's input: it is cut into words here and each word is passed to the database as
a bound value (SQLite: an FTS5 query of quoted strings; PostgreSQL: ``plainto_tsquery``), so quotes,
``*``, ``NEAR``, ``-`` or ``OR`` are searched for as words, or ignored, and never change the query.

Both databases use the index made by migration 0008: the FTS5 table ``session_events_fts`` on
SQLite, a GIN index on ``to_tsvector('simple', search_text)`` on PostgreSQL. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.casd.sessions import WORD, SessionError, one_line, words
from infracalc.db import SessionEvent, SessionRecord

#: The largest page.
MAX_LIMIT = 100
#: The longest search text, in characters, and the most words it may hold.
MAX_TEXT = 500
MAX_WORDS = 32
#: How many characters of an event a snippet shows around the first word found.
SNIPPET_BEFORE = 60
SNIPPET_AFTER = 100

#: The FTS5 table of migration 0008 (SQLite), as SQLAlchemy sees it: its rowid is the event's id.
_FTS = sa.table("session_events_fts", sa.column("rowid"), sa.column("session_events_fts"))
#: PostgreSQL's text search configuration; the GIN index of migration 0008 is built with the same one.
_CONFIG: sa.ColumnClause[str] = sa.literal_column("'simple'")


class InvalidSearch(SessionError):
    """A search criterion that cannot be used as given; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """What to look for; every criterion left ``None`` matches everything."""

    username: str | None = None
    project: str | None = None
    #: The range the session must overlap; timezone-aware.
    since: datetime | None = None
    until: datetime | None = None
    #: Words that one event of the session must all contain.
    text: str | None = None
    limit: int = 50
    #: Where the previous page ended (:attr:`SearchPage.next_cursor`).
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class FoundSession:
    """A session that matched, with what matched of its events when the search had a text."""

    session: SessionRecord
    #: How many of its events contain every word (``None`` without a text).
    matching_events: int | None = None
    #: A line of its newest matching event, around the first word found (``None`` without a text).
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of sessions, newest first, and the cursor of the next page (``None`` on the last)."""

    sessions: list[FoundSession]
    next_cursor: str | None


def search_words(text: str) -> list[str]:
    """The words of a search text, deduplicated in order; checked against the limits.

    Raises:
        InvalidSearch: the text is too long, has too many words, or none.
    """
    if len(text) > MAX_TEXT:
        raise InvalidSearch(f"q: at most {MAX_TEXT} characters, got {len(text)}", field="q")
    found = list(dict.fromkeys(words(text)))
    if not found:
        raise InvalidSearch("q: give at least one word (letters or digits) to search for", field="q")
    if len(found) > MAX_WORDS:
        raise InvalidSearch(f"q: at most {MAX_WORDS} different words, got {len(found)}", field="q")
    return found


def fts5_query(terms: list[str]) -> str:
    """An FTS5 query matching rows that hold every one of ``terms``: each a quoted string, so never an operator."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def encode_cursor(record: SessionRecord) -> str:
    """The cursor of the page after ``record``: its opening time and id, opaque to callers."""
    raw = json.dumps([record.opened_at.isoformat(), record.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(opened_at, id)`` of a cursor from :func:`encode_cursor`.

    Raises:
        InvalidSearch: it is not such a cursor.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        opened, session_id = json.loads(raw)
        at = datetime.fromisoformat(opened)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidSearch(
            "cursor: not a cursor this service gave (take next_cursor from a previous page)", field="cursor"
        ) from None
    if not isinstance(session_id, str) or not session_id.isprintable() or at.tzinfo is None:
        raise InvalidSearch(
            "cursor: not a cursor this service gave (take next_cursor from a previous page)", field="cursor"
        )
    return at, session_id


def _check(query: SessionQuery) -> None:
    # PostgreSQL refuses a NUL even as a query parameter, and no name holds a control character.
    for name, given in (("user", query.username), ("project", query.project)):
        if given is not None and not given.isprintable():
            raise InvalidSearch(f"{name}: printable characters only, got {given!r}", field=name)
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidSearch(f"limit: 1 to {MAX_LIMIT}, got {query.limit}", field="limit")
    for name, value in (("from", query.since), ("to", query.until)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InvalidSearch(f"{name}: give a time zone (2026-01-05T09:00:00Z), got {value.isoformat()}", field=name)
    if query.since is not None and query.until is not None and query.since > query.until:
        raise InvalidSearch(f"from ({query.since.isoformat()}) is after to ({query.until.isoformat()})", field="from")


async def search_sessions(db_session: AsyncSession, query: SessionQuery) -> SearchPage:
    """The page of sessions matching ``query``, newest first (by opening time, then id).

    Raises:
        InvalidSearch: a criterion is out of bounds, the text has no word, or the cursor is not one of ours.
    """
    _check(query)
    terms = search_words(query.text) if query.text else None
    after = decode_cursor(query.cursor) if query.cursor else None

    conditions: list[sa.ColumnElement[bool]] = []
    if query.username is not None:
        conditions.append(SessionRecord.username == query.username)
    if query.project is not None:
        conditions.append(SessionRecord.project_id == query.project)
    if query.until is not None:
        conditions.append(SessionRecord.opened_at <= query.until)
    if query.since is not None:
        conditions.append(sa.or_(SessionRecord.closed_at.is_(None), SessionRecord.closed_at >= query.since))
    if after is not None:
        at, session_id = after
        conditions.append(
            sa.or_(SessionRecord.opened_at < at, sa.and_(SessionRecord.opened_at == at, SessionRecord.id < session_id))
        )
    newest_first = (SessionRecord.opened_at.desc(), SessionRecord.id.desc())

    found: list[FoundSession]
    if terms is None:
        records = await db_session.scalars(
            sa.select(SessionRecord).where(*conditions).order_by(*newest_first).limit(query.limit + 1)
        )
        found = [FoundSession(record) for record in records.all()]
    else:
        statement = (
            sa.select(SessionRecord, sa.func.count(SessionEvent.id), sa.func.max(SessionEvent.id))
            .join(SessionEvent, SessionEvent.session_id == SessionRecord.id)
            .where(_matches(db_session, terms), *conditions)
            .group_by(SessionRecord.id)
            .order_by(*newest_first)
            .limit(query.limit + 1)
        )
        rows = (await db_session.execute(statement)).all()
        newest = {event_id for _, _, event_id in rows[: query.limit]}
        events = await db_session.scalars(sa.select(SessionEvent).where(SessionEvent.id.in_(newest)))
        snippets = {event.id: snippet(event.summary, event.details, terms) for event in events.all()}
        found = [FoundSession(record, count, snippets.get(event_id)) for record, count, event_id in rows]
    more = len(found) > query.limit
    found = found[: query.limit]
    next_cursor = encode_cursor(found[-1].session) if more and found else None
    return SearchPage(found, next_cursor)


def _matches(db_session: AsyncSession, terms: list[str]) -> sa.ColumnElement[bool]:
    """The condition that an event holds every one of ``terms``, in the database's full-text index."""
    if db_session.get_bind().dialect.name == "sqlite":
        in_index = sa.select(_FTS.c.rowid).where(_FTS.c.session_events_fts.match(fts5_query(terms)))
        return SessionEvent.id.in_(in_index)
    document = sa.func.to_tsvector(_CONFIG, SessionEvent.search_text)
    return document.bool_op("@@")(sa.func.plainto_tsquery(_CONFIG, " ".join(terms)))


def snippet(summary: str, details: Mapping[str, Any], terms: list[str]) -> str:
    """One line of an event around the first of ``terms`` in the text that holds most of them (summary or details).

    Its summary when none holds any (a word found only after :data:`~infracalc.casd.sessions.MAX_WORD_LENGTH`...).
    """
    wanted = set(terms)
    best: tuple[int, str, int] | None = None  # (distinct terms held, text, where the first one starts)
    for text in _texts(summary, details):
        starts = [(start, word) for start, word in _word_starts(text) if word in wanted]
        if starts and (best is None or len({word for _, word in starts}) > best[0]):
            best = (len({word for _, word in starts}), text, starts[0][0])
    if best is None:
        return one_line(summary[: SNIPPET_BEFORE + SNIPPET_AFTER])
    _, text, start = best
    begin = max(0, start - SNIPPET_BEFORE)
    end = start + SNIPPET_AFTER
    return one_line(("…" if begin > 0 else "") + text[begin:end] + ("…" if end < len(text) else ""))


def _texts(summary: str, details: Mapping[str, Any]) -> Iterator[str]:
    yield summary
    pending: list[Any] = [details]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            pending.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            pending.extend(reversed(value))
        elif isinstance(value, str):
            yield value


def _word_starts(text: str) -> Iterator[tuple[int, str]]:
    for match in WORD.finditer(text):
        yield match.start(), match.group().lower()

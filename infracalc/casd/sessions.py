"""Sessions: the record of each bubble run, and its timeline.

One session per bubble run, its id the bubble's id. It is opened when the hub registers the
bubble and closed when the bubble is stopped or revoked, each in the transaction that makes that
change; it keeps who worked, on which project, and under which governance the project was when
the session opened. Its timeline gathers what happened meanwhile, from every source: the egress
proxy's decisions and tunnels (``proxy``), the hub (``hub``), the service itself (``service``).

Nothing here commits: every function works in the caller's transaction, so a session and the
change that opens or closes it (and their audit events) commit or roll back together::

    async with sessions() as db_session, db_session.begin():
        ...  # register the bubble
        await open_session(db_session, session_id=bubble.id, project_id=project.id,
                           username=bubble.username, governance=project.governance)

Each event also stores the text full-text search indexes (:func:`indexed_text`): the words of its
summary and of its details' values; :mod:`infracalc.casd.session_search` queries it.

Errors, all under :class:`SessionError`: :class:`SessionExists` (opening an id twice),
:class:`UnknownSession` (appending to a session that does not exist), and a :class:`SessionError`
for an event that cannot be stored as given (a source or kind too long).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.db import Governance, SessionEvent, SessionRecord, utc_now
from infracalc.errors import InfracalcError

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]

#: The longest ``source`` and ``kind`` stored (the columns' lengths).
SOURCE_LENGTH = 32
KIND_LENGTH = 64

#: The source of the events this module writes itself.
SERVICE = "service"

#: A word, for full-text search: letters and digits (``_`` and punctuation separate words, as in SQLite's FTS5).
WORD = re.compile(r"[^\W_]+")
#: Longer words are left out of the index: a blob is not searched by its content, and PostgreSQL would skip it.
MAX_WORD_LENGTH = 200


class SessionError(InfracalcError):
    """Root of the session module's errors."""


class SessionExists(SessionError):
    """A session with this id is already recorded."""


class UnknownSession(SessionError):
    """No session has this id."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to add to a session's timeline."""

    #: When it happened, timezone-aware (the reporter's clock).
    at: datetime
    #: Who reports it: ``proxy``, ``hub``, ``service``.
    source: str
    #: What happened, dotted: ``egress.connection.allow``, ``egress.connection.close``...
    kind: str
    #: One line for people; control characters are escaped when it is stored.
    summary: str
    #: Everything else, as plain JSON.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timeline:
    """A session and its events, oldest first."""

    session: SessionRecord
    events: list[SessionEvent]


async def open_session(
    db_session: AsyncSession,
    *,
    session_id: str,
    project_id: str,
    username: str,
    governance: Governance | str,
    clock: Clock = utc_now,
) -> SessionRecord:
    """Record a new session, with a first event saying so; does not commit.

    Raises:
        SessionExists: a session with ``session_id`` is recorded already.
    """
    if await db_session.get(SessionRecord, session_id) is not None:
        raise SessionExists(f"session {session_id!r} is recorded already")
    owner = Governance(governance)
    record = SessionRecord(id=session_id, project_id=project_id, username=username, governance=owner, opened_at=clock())
    db_session.add(record)
    await db_session.flush()  # so that append_events finds it
    opened = NewEvent(
        at=record.opened_at,
        source=SERVICE,
        kind="session.open",
        summary=f"session opened for {username} on project {project_id} ({owner.value} governance)",
        details={"username": username, "project": project_id, "governance": owner.value},
    )
    await append_events(db_session, session_id, [opened])
    return record


async def close_session(
    db_session: AsyncSession, session_id: str, *, clock: Clock = utc_now, reason: str | None = None
) -> SessionRecord | None:
    """Close the session, with a last event saying so (and why, when ``reason`` is given); does not commit.

    Closing a closed session changes nothing (it keeps its first ``closed_at``).

    Returns:
        The session, or None when there is none with this id (a bubble registered before sessions were
        recorded).
    """
    record = await db_session.get(SessionRecord, session_id)
    if record is None or record.closed_at is not None:
        return record
    record.closed_at = clock()
    closed = NewEvent(
        at=record.closed_at,
        source=SERVICE,
        kind="session.close",
        summary="session closed" if reason is None else f"session closed: {reason}",
        details={} if reason is None else {"reason": reason},
    )
    await append_events(db_session, session_id, [closed])
    return record


async def append_events(db_session: AsyncSession, session_id: str, events: Iterable[NewEvent]) -> int:
    """Add ``events`` to the session's timeline, open or closed (a tunnel may end after its bubble); does not commit.

    Returns:
        How many events were added.

    Raises:
        UnknownSession: there is no session with this id.
        SessionError: an event's source or kind is longer than the columns hold, or its time is naive.
    """
    rows = [_row(session_id, event) for event in events]
    if not rows:
        return 0
    if await db_session.get(SessionRecord, session_id) is None:
        raise UnknownSession(f"no session {session_id!r}")
    db_session.add_all(rows)
    await db_session.flush()
    return len(rows)


async def timeline(db_session: AsyncSession, session_id: str) -> Timeline | None:
    """The session and its events in time order (ties in the order they were added), or None when unknown."""
    record = await db_session.get(SessionRecord, session_id)
    if record is None:
        return None
    events = await db_session.scalars(
        select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.at, SessionEvent.id)
    )
    return Timeline(session=record, events=list(events.all()))


def _row(session_id: str, event: NewEvent) -> SessionEvent:
    if not 0 < len(event.source) <= SOURCE_LENGTH:
        raise SessionError(f"an event's source must be 1 to {SOURCE_LENGTH} characters, got {event.source!r}")
    if not 0 < len(event.kind) <= KIND_LENGTH:
        raise SessionError(f"an event's kind must be 1 to {KIND_LENGTH} characters, got {event.kind!r}")
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise SessionError(f"an event's time must have a time zone, got {event.at.isoformat()}")
    return SessionEvent(
        session_id=session_id,
        at=event.at,
        source=event.source,
        kind=event.kind,
        summary=one_line(event.summary),
        details=dict(event.details),
        search_text=indexed_text(event.summary, event.details),
    )


def words(text: str) -> list[str]:
    """The words of ``text`` as full-text search sees them: runs of letters and digits, lowercased.

    ``np.mean(my_var)`` gives ``np``, ``mean``, ``my``, ``var``. Documents and queries are cut alike, so
    that PostgreSQL's parser (which would keep ``np.mean`` whole, as a host name) and SQLite's FTS5
    agree on what matches.
    """
    return [word for word in WORD.findall(text.lower()) if len(word) <= MAX_WORD_LENGTH]


def indexed_text(summary: str, details: Mapping[str, Any]) -> str:
    """What full-text search indexes of an event: the words of its summary and of its details' values (not keys)."""
    found = words(summary)
    pending: list[Any] = [details]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            pending.extend(reversed(list(value.values())))
        elif isinstance(value, list | tuple):
            pending.extend(reversed(value))
        elif isinstance(value, str):
            found.extend(words(value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.extend(words(str(value)))
    return " ".join(found)


def one_line(text: str) -> str:
    r"""``text`` on one line: control characters (line breaks, NUL...) and backslashes written as escapes (``\n``)."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        character if character.isprintable() and character != "\\" else character.encode("unicode_escape").decode()
        for character in text
    )

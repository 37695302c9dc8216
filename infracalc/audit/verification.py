"""Verification of the sealed audit log: recompute every hash, check every checkpoint, report the first fault.

The log is read in ``seq`` order, in batches selected by key (``seq > last``), as plain rows (no ORM
objects), so memory stays constant and 100,000 events take well under a second. For each event:

1. its ``seq`` follows the previous one (a jump means deleted events);
2. its ``prev_hash`` is the previous event's hash;
3. its hash equals ``sha256(prev_hash || canonical(event))`` (see :mod:`infracalc.audit.canonical`);
4. when a checkpoint seals its ``seq``: the checkpoint names the trusted key, its Ed25519 signature
   is valid, and it seals this event's hash.

Then no valid checkpoint and not the head row may point past the last event (a truncated tail).
When a check fails, a short diagnosis tells an inserted, renumbered or reordered event from a
modified one, so the report names the kind of tampering and the first bad sequence number.

Verification is safe while the service appends: the seals (head row, last checkpoint) are read
before the events, and everything they cover was committed before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import String, Text, func, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from infracalc.audit.canonical import GENESIS_HASH, event_text
from infracalc.audit.chain import (
    ChainPosition,
    CheckpointRow,
    EventRow,
    seal_problem,
    signature_problem,
    time_text,
    walk,
)
from infracalc.audit.errors import AuditError
from infracalc.audit.models import AuditCheckpoint, AuditEvent, AuditHead
from infracalc.audit.segments import SQLITE_EVENTS, SegmentReport, SegmentRequest, check_segment, read_report
from infracalc.audit.signer import key_id
from infracalc.db.engine import create_engine, session_factory
from infracalc.db.settings import DatabaseSettings

_log = logging.getLogger(__name__)

#: Events read per query.
BATCH_SIZE = 10_000
#: Fewest events worth a worker process of their own: a worker costs a process start (about 0.1 s).
MIN_SEGMENT = 25_000
#: About as many events as this process walks while a worker process starts (0.1 to 0.2 s).
WORKER_START_EVENTS = 10_000
#: Most worker processes one verification starts.
MAX_WORKERS = 8

_EVENTS = AuditEvent.__table__.c
_CHECKPOINTS = AuditCheckpoint.__table__.c
# Raw column values: the details as stored text, the governance as a plain string.
_EVENT_COLUMNS = (
    _EVENTS.seq,
    type_coerce(_EVENTS.at, String),
    _EVENTS.actor,
    _EVENTS.action,
    _EVENTS.project_id,
    type_coerce(_EVENTS.governance, String),
    type_coerce(_EVENTS.details, Text),
    _EVENTS.prev_hash,
    _EVENTS.hash,
)
_CHECKPOINT_COLUMNS = (
    _CHECKPOINTS.seq,
    _CHECKPOINTS.hash,
    type_coerce(_CHECKPOINTS.at, String),
    _CHECKPOINTS.signature,
    _CHECKPOINTS.key_id,
)


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The outcome of :func:`verify`."""

    #: True when every event and checkpoint checked out.
    ok: bool
    #: Events whose hash was recomputed and found right.
    events_checked: int
    #: Checkpoints whose signature and sealed hash were found right.
    checkpoints_checked: int
    #: The first sequence number found wrong (missing, altered, inserted...), or None.
    first_bad_seq: int | None = None
    #: One sentence saying what is wrong, or None.
    problem: str | None = None

    def summary(self) -> str:
        """A one-line result for people."""
        if self.ok:
            return f"audit log intact: {self.events_checked} events and {self.checkpoints_checked} checkpoints verified"
        where = "" if self.first_bad_seq is None else f" at seq {self.first_bad_seq}"
        return f"audit log NOT intact{where}: {self.problem}"


class _Fault(Exception):
    """Internal: stops the walk at the first fault."""

    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


def _event_hash(prev_hash: str, seq: int, fields: Sequence[Any]) -> str | None:
    """The hash of an event with ``fields`` (at, actor, action, project, governance, details) at ``seq``."""
    at, actor, action, project_id, governance, details = fields
    try:
        text = event_text(seq, time_text(at), actor, action, project_id, governance, details)
        return hashlib.sha256((prev_hash + text).encode()).hexdigest()
    except (TypeError, ValueError, IndexError, UnicodeError):
        # A value of the wrong type (SQLite stores anything anywhere) cannot hash to the stored hash.
        return None


class _Walk:
    """One verification pass; keeps only the last two hashes and the counters."""

    def __init__(self, session: AsyncSession, public_key: Ed25519PublicKey, batch_size: int) -> None:
        self.session = session
        self.public_key = public_key
        self.trusted_key_id = key_id(public_key)
        self.batch_size = batch_size
        self.checkpoints = 0
        self.position = ChainPosition()
        self.pending: asyncio.Future[Sequence[EventRow]] | None = None

    @property
    def events(self) -> int:
        """Events checked so far."""
        return self.position.walked

    async def run(self) -> None:
        # Seals first: what they cover was committed before them, so concurrent appends cannot fool the checks.
        head = (
            await self.session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))
        ).one_or_none()
        last_sealed = await self.session.scalar(select(func.max(AuditCheckpoint.seq)))
        if head is None:
            raise _Fault(None, "the audit head row is missing: the table was emptied or the database never migrated")
        self.position.head_seq = head.seq
        fetch = await self._event_fetcher()
        # Read ahead: the next batch is fetched (in SQLite's driver thread, or over the network) while
        # this one is checked. Anything else that queries first waits for it (_quiet).
        self.pending = asyncio.ensure_future(fetch(0))
        try:
            while rows := await self.pending:
                checkpoints = await self._checkpoints(self.position.walked, rows[-1][0])
                self.pending = asyncio.ensure_future(fetch(rows[-1][0]))
                await asyncio.sleep(0)  # let the read-ahead start before the CPU-bound loop
                await self._check_rows(rows, checkpoints)
        finally:
            await self._quiet()
        last_seq = self.position.walked
        await self._check_tail(last_seq, last_sealed)
        if head.seq > last_seq:
            raise _Fault(
                last_seq + 1,
                f"the log was truncated: it ends at seq {last_seq} but its head records seq {head.seq}, "
                f"so events {last_seq + 1} to {head.seq} were deleted",
            )
        if self.position.head_hash is not None and self.position.head_hash != head.hash:
            raise _Fault(
                head.seq,
                f"the head records another hash for seq {head.seq} than event {head.seq} has: the log was rewritten",
            )

    async def _quiet(self) -> None:
        """Wait for the read-ahead, so that the session (or the driver connection) is free for a query."""
        if self.pending is not None and not self.pending.done():
            with contextlib.suppress(Exception):
                await self.pending

    async def _check_rows(self, rows: Sequence[EventRow], checkpoints: dict[int, CheckpointRow]) -> None:
        """Check one batch of events in order, and the checkpoints sealing them; stop at the first fault."""
        sealed: list[tuple[CheckpointRow, str]] = []
        stop = walk(rows, self.position, checkpoints, sealed)
        for checkpoint, event_hash in sealed:  # in seq order, all before the event that stopped the walk
            self._check_checkpoint(checkpoint, event_hash)
        if stop is None:
            return
        row = rows[stop]
        if row[0] != self.position.expected:
            raise _Fault(self.position.expected, _missing(self.position.expected, row[0]))
        if row[-2] != self.position.prev:
            await self._diagnose_link(row, self.position.before_prev)
        await self._diagnose_content(row)

    async def _event_fetcher(self) -> Callable[[int], Awaitable[Sequence[EventRow]]]:
        """A function returning the next batch of events after a given seq, as plain tuples."""
        connection = await self.session.connection()
        if connection.dialect.name == "sqlite":
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None:
                raise AuditError("the SQLite connection was closed during verification")

            async def fetch_sqlite(after: int) -> Sequence[EventRow]:
                cursor = await driver.execute(SQLITE_EVENTS, (after, self.batch_size))
                try:
                    rows: Sequence[EventRow] = await cursor.fetchall()
                finally:
                    await cursor.close()
                return rows

            return fetch_sqlite

        async def fetch(after: int) -> Sequence[EventRow]:
            query = select(*_EVENT_COLUMNS).where(_EVENTS.seq > after).order_by(_EVENTS.seq).limit(self.batch_size)
            return (await self.session.execute(query)).all()

        return fetch

    async def _checkpoints(self, after: int, through: int) -> dict[int, CheckpointRow]:
        query = select(*_CHECKPOINT_COLUMNS).where(_CHECKPOINTS.seq <= through)
        if after > 0:
            query = query.where(_CHECKPOINTS.seq > after)
        return {row[0]: row for row in (await self.session.execute(query)).all()}

    def _check_signature(self, checkpoint: CheckpointRow) -> None:
        problem = signature_problem(checkpoint, self.public_key, self.trusted_key_id)
        if problem is not None:
            raise _Fault(checkpoint[0], problem)

    def _check_checkpoint(self, checkpoint: CheckpointRow, event_hash: str) -> None:
        self._check_signature(checkpoint)
        problem = seal_problem(checkpoint, event_hash)
        if problem is not None:
            raise _Fault(checkpoint[0], problem)
        self.checkpoints += 1

    async def _check_tail(self, last_seq: int, last_sealed: int | None) -> None:
        if last_sealed is None or last_sealed <= last_seq:
            return
        beyond = (
            await self.session.execute(
                select(*_CHECKPOINT_COLUMNS)
                .where(_CHECKPOINTS.seq > last_seq, _CHECKPOINTS.seq <= last_sealed)
                .order_by(_CHECKPOINTS.seq)
                .limit(1)
            )
        ).one()
        self._check_signature(beyond)
        raise _Fault(
            last_seq + 1,
            f"the log was truncated: it ends at seq {last_seq} but a valid checkpoint seals seq {beyond[0]}, "
            f"so events {last_seq + 1} to {beyond[0]} were deleted",
        )

    async def _diagnose_link(self, row: EventRow, before_prev: str) -> None:
        """Event ``seq`` does not link to its predecessor: find out why, and stop."""
        await self._quiet()
        seq, *fields, prev_hash, digest = row
        if prev_hash == before_prev:
            raise _Fault(seq - 1, f"event {seq - 1} was inserted: event {seq} links to event {seq - 2}, skipping it")
        if _event_hash(prev_hash, seq + 1, fields) == digest:
            raise _Fault(
                seq,
                f"event {seq} was deleted and the later events renumbered: event {seq} holds what was event {seq + 1}",
            )
        await self._diagnose_reorder(row)
        raise _Fault(seq, f"event {seq} was modified: its prev_hash does not link to event {seq - 1}")

    async def _diagnose_content(self, row: EventRow) -> None:
        """Event ``seq`` links right but does not match its hash: moved contents, or modified."""
        await self._quiet()
        seq, own_prev = row[0], row[-2]
        next_prev = await self.session.scalar(select(_EVENTS.prev_hash).where(_EVENTS.seq == seq + 1))
        if next_prev is not None and next_prev == own_prev:
            raise _Fault(seq, f"event {seq} was inserted: event {seq + 1} links to event {seq - 1}, skipping it")
        await self._diagnose_reorder(row)
        raise _Fault(seq, f"event {seq} was modified: its contents no longer match its hash")

    async def _diagnose_reorder(self, row: EventRow) -> None:
        """Stop with "reordered" when event ``seq``'s contents belong at a later position of the log.

        Two kinds of swap: whole rows (the event keeps its own prev_hash and hash, only ``seq`` is
        foreign) and contents only (the fields hash right with the other position's chain values).
        Scans the rest of the log once: the price is paid only when the log is already found bad.
        """
        seq, *fields, own_prev, own_hash = row
        after = seq
        while True:
            rows = (
                await self.session.execute(
                    select(_EVENTS.seq, _EVENTS.prev_hash, _EVENTS.hash)
                    .where(_EVENTS.seq > after)
                    .order_by(_EVENTS.seq)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return
            for other, other_prev, other_hash in rows:
                if not isinstance(other_prev, str):
                    continue
                if (
                    _event_hash(own_prev, other, fields) == own_hash
                    or _event_hash(other_prev, other, fields) == other_hash
                ):
                    raise _Fault(
                        seq,
                        f"events {seq} and {other} were reordered: event {seq} holds the contents of event {other}",
                    )
            after = rows[-1][0]


def _missing(expected: int, found: int) -> str:
    if expected == 1:
        return f"event 1 is missing: the log starts at seq {found} (events 1 to {found - 1} were deleted)"
    if found < expected:
        return f"event {expected} is missing: seq {found} appears out of order"
    return f"event {expected} is missing: the log jumps from seq {expected - 1} to {found} (events were deleted)"


async def verify(
    session: AsyncSession,
    public_key: Ed25519PublicKey,
    *,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    min_segment: int = MIN_SEGMENT,
) -> VerificationReport:
    """Recompute the whole chain and check every checkpoint; report the first fault.

    A long log in a SQLite file is first verified a segment per CPU, the first here and the others by
    worker processes (see :mod:`infracalc.audit.segments`); when they cannot all vouch for their
    segment, or the database is PostgreSQL, one pass here walks the log and names the first fault.

    Args:
        session: a session on the database (a read-only one from
            :func:`~infracalc.db.session_factory` keeps SQLite's write lock free while verifying).
        public_key: the trusted checkpoint key (see :func:`~infracalc.audit.load_public_key`).
        batch_size: events read per query.
        workers: most worker processes (default: the CPUs this process may use, at most
            :data:`MAX_WORKERS`); 1 verifies in this process only.
        min_segment: fewest events per worker.

    Returns:
        The report; ``ok`` is False with ``first_bad_seq`` and ``problem`` when the log was tampered with.
    """
    if workers is None:
        workers = min(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, MAX_WORKERS
        )
    if workers > 1:
        vouched = await verify_in_segments(
            session, public_key, workers=workers, min_segment=min_segment, batch_size=batch_size
        )
        if vouched is not None:
            return vouched
    walk = _Walk(session, public_key, batch_size)
    try:
        await walk.run()
    except _Fault as fault:
        return VerificationReport(
            ok=False,
            events_checked=walk.events,
            checkpoints_checked=walk.checkpoints,
            first_bad_seq=fault.seq,
            problem=fault.problem,
        )
    return VerificationReport(ok=True, events_checked=walk.events, checkpoints_checked=walk.checkpoints)


async def verify_in_segments(
    session: AsyncSession,
    public_key: Ed25519PublicKey,
    *,
    workers: int,
    min_segment: int = MIN_SEGMENT,
    batch_size: int = BATCH_SIZE,
) -> VerificationReport | None:
    """The log verified intact by up to ``workers`` processes at once, or None when they cannot say so.

    None means: the database is not a SQLite file, the log is shorter than two segments of
    ``min_segment`` events, a worker failed, or a segment or a seam between two is not right. Only
    a full pass (:func:`verify`) then says whether the log was tampered with, and where.
    """
    connection = await session.connection()
    database = connection.engine.url.database
    if connection.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    head = (await session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))).one_or_none()
    last_sealed = await session.scalar(select(func.max(AuditCheckpoint.seq)))
    last_seq = await session.scalar(select(func.max(AuditEvent.seq)))
    if head is None or not isinstance(last_seq, int):
        return None
    count = min(workers, last_seq // max(min_segment, 1))
    if count < 2:  # noqa: PLR2004 - one segment is the single pass, without a process to start
        return None
    raw_key = public_key.public_bytes_raw().hex()
    requests = [
        SegmentRequest(
            database=database,
            first=first,
            last=None if index == count - 1 else last,  # the last segment reads to the end
            head_seq=head.seq,
            public_key=raw_key,
            batch_size=batch_size,
        )
        for index, (first, last) in enumerate(_segment_bounds(last_seq, count))
    ]
    # The first segment is walked here (in a thread, so the event loop keeps turning) while the
    # others' processes start.
    reports = await asyncio.gather(
        _walk_segment_here(requests[0]), *(_run_segment(request) for request in requests[1:])
    )
    return _stitched(reports, head_seq=head.seq, head_hash=head.hash, last_sealed=last_sealed or 0)


def _segment_bounds(events: int, count: int) -> list[tuple[int, int]]:
    """``count`` consecutive ranges of seq covering 1 to ``events``, the first longer by a process start.

    The first segment is walked in this process, the others by workers that must start first: the
    first gets up to :data:`WORKER_START_EVENTS` more events than the others (at most twice their
    share), so that all end together.
    """
    first_length = min(events // count + min(WORKER_START_EVENTS, events // count), events - (count - 1))
    share, extra = divmod(events - first_length, count - 1)
    bounds = [(1, first_length)]
    for index in range(count - 1):
        first = bounds[-1][1] + 1
        bounds.append((first, first + share + (index < extra) - 1))
    return bounds


def _usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


async def _walk_segment_here(request: SegmentRequest) -> SegmentReport | None:
    """Walk one segment in a thread of this process; its report, or None when the database failed."""
    try:
        return await asyncio.to_thread(check_segment, request)
    except sqlite3.Error as error:
        _log.warning("audit verification of events %d and on failed: %s", request.first, error)
        return None


async def _run_segment(request: SegmentRequest) -> SegmentReport | None:
    """Run one worker process; its report, or None when it failed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infracalc.audit.segments",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate(json.dumps(asdict(request)).encode())
    if process.returncode != 0:
        last_line = (errors.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        _log.warning("audit verification worker for events %d and on failed: %s", request.first, last_line)
        return None
    try:
        return read_report(output.decode())
    except ValueError as error:
        _log.warning("audit verification worker for events %d and on answered nonsense: %s", request.first, error)
        return None


def _stitched(
    reports: Sequence[SegmentReport | None], *, head_seq: int, head_hash: str, last_sealed: int
) -> VerificationReport | None:
    """The whole log's report from its segments' (in order), or None unless every segment and seam is right."""
    seam = GENESIS_HASH
    checkpoints = 0
    seen_head: str | None = None
    walked = 0
    for report in reports:
        if report is None or not report.right or report.first_prev != seam or report.last_hash is None:
            return None
        seam, walked = report.last_hash, report.last_seq
        checkpoints += report.checkpoints
        seen_head = report.head_hash or seen_head
    if head_seq > walked or last_sealed > walked or (head_seq > 0 and seen_head != head_hash):
        return None
    return VerificationReport(ok=True, events_checked=walked, checkpoints_checked=checkpoints)


async def verify_database(settings: DatabaseSettings, public_key: Ed25519PublicKey) -> VerificationReport:
    """Open the database in ``settings`` read-only, :func:`verify` its log, and close it (for the CLI).

    Raises:
        AuditError: the database cannot be reached or holds no audit log.
    """
    engine = create_engine(settings)
    try:
        async with session_factory(engine, read_only=True)() as session, session.begin():
            return await verify(session, public_key)
    except (SQLAlchemyError, OSError) as error:  # asyncpg lets "connection refused" through as OSError
        # The driver's message names the host or table, never the password; the URL is shown without it.
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        where = settings.url.render_as_string(hide_password=True)
        raise AuditError(f"cannot read the audit log from {where}: {reason}") from None
    finally:
        await engine.dispose()

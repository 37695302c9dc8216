"""Verifying a long SQLite audit log in several processes at once, one segment of the chain each.

The chain can be checked in pieces: inside a segment ``[first, last]`` every event must follow the
one before it and hash right, and each segment's first ``prev_hash`` must be the last hash of the
segment before. So each worker process walks one segment of the database file (read-only, with the
standard library's driver) and reports its two ends; :func:`infracalc.audit.verification.verify` stitches
the reports. Verification is CPU-bound and Python holds one core per process: two cores verify a
long log about twice as fast.

A segment's report says only "right" or "not right". When any is not right, the caller verifies the
whole log again in one pass, which finds and names the first fault: tampering is rare, and the
second pass costs time only then.

A worker runs as ``python -m infracalc.audit.segments``, reads a :class:`SegmentRequest` as JSON on
standard input and prints a :class:`SegmentReport` as JSON. It imports the standard library and
``cryptography`` only, so that it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infracalc.audit.canonical import GENESIS_HASH
from infracalc.audit.chain import ChainPosition, CheckpointRow, seal_problem, signature_problem, walk
from infracalc.audit.signer import key_id

#: The events after a seq, as verification reads them from SQLite (every column is stored as text
#: there, ``at`` as SQLAlchemy writes datetimes).
_SELECT_EVENTS = "SELECT seq, at, actor, action, project_id, governance, details, prev_hash, hash FROM audit_events"
SQLITE_EVENTS = f"{_SELECT_EVENTS} WHERE seq > ? ORDER BY seq LIMIT ?"
_SQLITE_SEGMENT_EVENTS = f"{_SELECT_EVENTS} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
_SQLITE_CHECKPOINTS = "SELECT seq, hash, at, signature, key_id FROM audit_checkpoints WHERE seq > ? AND seq <= ?"
_T = TypeVar("_T")
#: ``last`` of the final segment, which reads to the end of the log.
_END = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    """One worker's job: walk events ``first`` to ``last`` (to the end when None) of a SQLite file."""

    #: Path of the SQLite database file.
    database: str
    first: int
    last: int | None
    #: The seq the audit head row records: the worker reports that event's hash when it walks it.
    head_seq: int
    #: The trusted checkpoint key, raw (32 bytes) as hex.
    public_key: str
    #: Events read per query.
    batch_size: int


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """What a worker found in its segment."""

    #: Every event of the segment was there, linked and hashed right, and every checkpoint in it was
    #: validly signed by the trusted key and sealed its event's hash.
    right: bool
    #: Checkpoints found right.
    checkpoints: int = 0
    #: The prev_hash of the segment's first event (what the segment before must end with).
    first_prev: str | None = None
    #: The seq and hash of the last event walked.
    last_seq: int = 0
    last_hash: str | None = None
    #: The hash of event ``head_seq`` when it lies in the segment.
    head_hash: str | None = None


def check_segment(request: SegmentRequest) -> SegmentReport:
    """Walk one segment of the log in ``request`` and report its ends (see the module's description).

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(request.public_key))
    trusted = key_id(public_key)
    last = _END if request.last is None else request.last
    uri = f"file:{quote(str(Path(request.database).resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        position = ChainPosition(expected=request.first, head_seq=request.head_seq)
        first_prev: str | None = GENESIS_HASH if request.first == 1 else None
        checkpoints = 0
        after = request.first - 1
        while rows := connection.execute(_SQLITE_SEGMENT_EVENTS, (after, last, request.batch_size)).fetchall():
            if first_prev is None:
                first_prev = rows[0][7] if isinstance(rows[0][7], str) else None
                if first_prev is None:
                    return SegmentReport(right=False)
                position.prev = first_prev
            sealing = {row[0]: row for row in connection.execute(_SQLITE_CHECKPOINTS, (after, rows[-1][0]))}
            sealed: list[tuple[CheckpointRow, str]] = []
            stop = walk(rows, position, sealing, sealed)
            if stop is not None or not _all_sealed_right(sealed, public_key, trusted):
                return SegmentReport(right=False)
            checkpoints += len(sealed)
            after = rows[-1][0]
        walked_to = position.expected - 1
        if walked_to < request.first or (request.last is not None and walked_to != request.last):
            return SegmentReport(right=False)  # events missing at the end of the segment, or all of it
        return SegmentReport(
            right=True,
            checkpoints=checkpoints,
            first_prev=first_prev,
            last_seq=walked_to,
            last_hash=position.prev,
            head_hash=position.head_hash,
        )
    finally:
        connection.close()


def _all_sealed_right(sealed: list[tuple[CheckpointRow, str]], public_key: Ed25519PublicKey, trusted: str) -> bool:
    return all(
        signature_problem(checkpoint, public_key, trusted) is None and seal_problem(checkpoint, event_hash) is None
        for checkpoint, event_hash in sealed
    )


def read_request(text: str) -> SegmentRequest:
    """The request in ``text`` (JSON).

    Raises:
        ValueError: ``text`` is not a request.
    """
    return _from_json(SegmentRequest, text)


def read_report(text: str) -> SegmentReport:
    """The report in ``text`` (JSON), as a worker prints it.

    Raises:
        ValueError: ``text`` is not a report.
    """
    return _from_json(SegmentReport, text)


def _from_json(kind: type[_T], text: str) -> _T:
    try:
        return kind(**json.loads(text))
    except TypeError as error:
        raise ValueError(f"not a {kind.__name__}: {error}") from None


def _main() -> int:
    try:
        report = check_segment(read_request(sys.stdin.read()))
    except (ValueError, sqlite3.Error) as error:
        print(f"cannot verify this segment: {error}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())

"""Walking a run of stored audit events along the hash chain: the loop verification spends its time in.

:func:`walk` checks events in ``seq`` order against a :class:`ChainPosition` and stops at the first
event that is not right, without saying why: finding out what happened (deleted, inserted,
reordered, modified) is the caller's slower job (:mod:`infracalc.audit.verification`). Checkpoints met on
the way are not checked here either, only collected with the event hash they should seal, so that
the caller verifies signatures in order before it diagnoses the event that stopped the walk.

The standard library and ``cryptography`` only, so that the verification worker
(:mod:`infracalc.audit.segments`) starts in a few tens of milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infracalc.audit.canonical import GENESIS_HASH, checkpoint_message, format_time
from infracalc.audit.signer import signature_valid

#: A stored event as read for verification: seq, at, actor, action, project_id, governance, details,
#: prev_hash, hash (``at`` as SQLite's text or PostgreSQL's datetime; ``details`` as stored JSON text).
EventRow = Sequence[Any]
#: A stored checkpoint as read for verification: seq, hash, at, signature (hex), key_id.
CheckpointRow = Sequence[Any]


@dataclass(slots=True)
class ChainPosition:
    """Where a walk stands: the next ``seq`` expected and the last two hashes met."""

    #: The seq the next event must have.
    expected: int = 1
    #: The hash of the last event walked (the next event's prev_hash).
    prev: str = GENESIS_HASH
    #: The hash of the event before that ("" before the second event).
    before_prev: str = ""
    #: The seq the audit head row records; its event's hash is kept in :attr:`head_hash`.
    head_seq: int = 0
    #: The hash of event :attr:`head_seq`, once walked.
    head_hash: str | None = None

    @property
    def walked(self) -> int:
        """Events walked so far, counted from seq 1."""
        return self.expected - 1


def time_text(at: object) -> str:
    """The canonical time of a stored ``at``: SQLite gives text, PostgreSQL a datetime.

    SQLite's text (``YYYY-MM-DD HH:MM:SS.ffffff``, always six digits) converts by position. Only
    the space at index 10 is checked: any other difference from what was hashed changes the result,
    so it cannot go unnoticed.

    Raises:
        TypeError: ``at`` is neither (SQLite stores anything anywhere): the event cannot be right.
        IndexError: the text is too short to be a time.
    """
    if type(at) is str and at[10] == " ":
        return f"{at[:10]}T{at[11:]}Z"
    if isinstance(at, datetime):
        return format_time(at)
    raise TypeError(f"not a stored time: {at!r}")


def signature_problem(checkpoint: CheckpointRow, public_key: Ed25519PublicKey, trusted_key_id: str) -> str | None:
    """Why ``checkpoint``'s signature proves nothing, or None when ``public_key`` signed it as it is."""
    seq, sealed_hash, at, signature, signer_id = checkpoint
    if signer_id != trusted_key_id:
        return (
            f"checkpoint at seq {seq} is signed by key {signer_id}, not by the trusted key "
            f"{trusted_key_id}: it was forged with another key"
        )
    try:
        message = checkpoint_message(seq, sealed_hash, time_text(at), signer_id)
        valid = signature_valid(public_key, bytes.fromhex(signature), message)
    except (TypeError, ValueError, IndexError):
        valid = False
    return None if valid else f"checkpoint at seq {seq} has an invalid signature: it was forged or altered"


def seal_problem(checkpoint: CheckpointRow, event_hash: str) -> str | None:
    """Why ``checkpoint`` does not seal the event with ``event_hash`` at its seq, or None when it does."""
    seq = checkpoint[0]
    if checkpoint[1] == event_hash:
        return None
    return (
        f"checkpoint at seq {seq} does not match event {seq}: the log up to seq {seq} was rewritten after it was sealed"
    )


def walk(
    rows: Sequence[EventRow],
    position: ChainPosition,
    checkpoints: dict[int, CheckpointRow],
    sealed: list[tuple[CheckpointRow, str]],
) -> int | None:
    """Walk ``rows`` from ``position``; return the index of the first row that is not right, or None.

    A row is right when its seq is the one expected, its prev_hash is the last hash, and its hash
    is ``sha256(prev_hash || canonical(event))``. Each right row moves ``position`` on; a checkpoint
    in ``checkpoints`` at its seq is moved to ``sealed`` with the row's hash, for the caller to check.
    """
    expected, prev, before_prev, head_seq = position.expected, position.prev, position.before_prev, position.head_seq
    sha256 = hashlib.sha256
    # Actors, actions, projects and owners repeat: quote each distinct value once per call.
    quoted: dict[str | None, str] = {None: "null"}

    def quote(value: str) -> str:
        text = quoted[value] = encode_basestring(value)  # TypeError for what is not text: a bad event
        return text

    lookup = quoted.get
    try:
        for index, row in enumerate(rows):
            seq, at, actor, action, project_id, governance, details, prev_hash, digest = row
            if seq != expected or prev_hash != prev:
                return index
            try:
                # canonical.event_text and time_text, inlined: this runs for every event, and a call costs a
                # tenth of it. Any difference from event_text would make every intact log of the tests fail.
                at_text = f"{at[:10]}T{at[11:]}Z" if type(at) is str and at[10] == " " else time_text(at)
                hashed = (
                    f'{prev}{{"action":{lookup(action) or quote(action)},"actor":{lookup(actor) or quote(actor)},'
                    f'"at":"{at_text}","details":{details},"governance":{lookup(governance) or quote(governance)},'
                    f'"project_id":{lookup(project_id) or quote(project_id)},"seq":{seq}}}'
                )
                if sha256(hashed.encode()).hexdigest() != digest:
                    return index
            except (TypeError, ValueError, IndexError, UnicodeError):
                return index
            if checkpoints and seq in checkpoints:
                sealed.append((checkpoints.pop(seq), digest))
            if seq == head_seq:
                position.head_hash = digest
            before_prev, prev = prev, digest
            expected += 1
        return None
    finally:
        position.expected, position.prev, position.before_prev = expected, prev, before_prev

"""The canonical byte encoding of audit events and checkpoints, and the hash chain over it.

An event is encoded as one JSON object, UTF-8, keys sorted, no whitespace, non-ASCII characters
kept as they are (``ensure_ascii=False``), NaN and infinities refused::

    {"action":"project.create","actor":"alice","at":"2025-01-31T09:30:00.000000Z",
     "details":{"title":"Été"},"governance":"CASD","project_id":"p1","seq":1}

(shown on two lines here; the real encoding is one line). ``at`` is the event's time in UTC with
exactly six fractional digits and a ``Z``; ``project_id`` and ``governance`` are ``null`` when
absent; ``details`` is itself canonical JSON (nested keys sorted too). Each event's hash is::

    hash(n) = sha256(ascii(hash(n - 1)) || canonical(event n)).hexdigest()

with ``hash(0)`` = :data:`GENESIS_HASH` (64 zeros) and ``ascii(h)`` the 64 lowercase hex characters.
Because ``seq`` is inside the encoding, an event cannot move to another position unnoticed.

A checkpoint signs :data:`CHECKPOINT_DOMAIN` followed by the canonical JSON object
``{"at":...,"hash":...,"key_id":...,"seq":...}`` of the head it seals.

The encoder below writes the JSON by hand, field by field, because verification runs it for
every event; ``tests/unit/audit`` proves it equals ``json.dumps(..., sort_keys=True, ...)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring  # the C string encoder json.dumps uses
from typing import Any, Final

#: ``prev_hash`` of the first event.
GENESIS_HASH: Final = "0" * 64

#: Prefix of every signed checkpoint message, so a signature can never be replayed for another purpose.
CHECKPOINT_DOMAIN: Final = b"infracalc-audit-checkpoint-v1\n"

_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_quote: Final = encode_basestring


def canonical_json(value: Mapping[str, Any]) -> str:
    """``value`` as canonical JSON text (sorted keys, no whitespace, ``ensure_ascii=False``).

    Raises:
        ValueError: ``value`` holds something JSON cannot represent exactly (NaN, a datetime, a set...).
    """
    try:
        return _dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"audit details must be plain JSON: {error}") from None


def format_time(at: datetime) -> str:
    """``at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; naive datetimes are refused.

    Raises:
        ValueError: ``at`` has no time zone.
    """
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()} refused: audit times are UTC-aware")
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def event_text(  # noqa: PLR0917 - positional on purpose: verification calls it for every event
    seq: int,
    at: str,
    actor: str,
    action: str,
    project_id: str | None,
    governance: str | None,
    details_json: str,
) -> str:
    """The canonical encoding of one event, as text (``at`` from :func:`format_time`, ``details_json`` canonical)."""
    return (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},"at":"{at}","details":{details_json},'
        f'"governance":{"null" if governance is None else _quote(governance)},'
        f'"project_id":{"null" if project_id is None else _quote(project_id)},"seq":{seq}}}'
    )


def chain_hash(prev_hash: str, text: str) -> str:
    """``sha256(prev_hash || text)`` as 64 lowercase hex characters (both encoded as UTF-8)."""
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def checkpoint_message(seq: int, head_hash: str, at: str, key_id: str) -> bytes:
    """The bytes a checkpoint's signature covers (``at`` from :func:`format_time`)."""
    body = f'{{"at":"{at}","hash":{_quote(head_hash)},"key_id":{_quote(key_id)},"seq":{seq}}}'
    return CHECKPOINT_DOMAIN + body.encode()

"""The canonical encoding and the hash chain: deterministic, equal to the documented JSON form."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from infracalc.audit import GENESIS_HASH, canonical_json, chain_hash, event_text, format_time
from infracalc.audit.canonical import CHECKPOINT_DOMAIN, checkpoint_message

AT = datetime(2025, 1, 31, 9, 30, 0, 0, tzinfo=UTC)


def reference(
    *, seq: int, at: str, actor: str, action: str, project: str | None, owner: str | None, details: Any
) -> str:
    """The documented encoding, built with the standard library's JSON encoder."""
    event = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "project_id": project,
        "governance": owner,
        "details": details,
    }
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    ("actor", "action", "project", "owner", "details"),
    [
        ("alice", "project.create", "p1", "CASD", {"title": "Été", "b": 1, "a": [1, 2, {"z": None, "y": True}]}),
        ("bob", "member.add", None, None, {}),
        ('quote"back\\slash', "x\ny\tz\x00\x1f", "p-2", "INFRACALC", {"k": "\u2028 line separator", "n": -1.5}),
        ("日本語", "emoji 🦊", "p3", None, {"nested": {"b": {"d": 4, "c": 3}, "a": []}}),
    ],
)
def test_event_text_equals_sorted_compact_json(
    actor: str, action: str, project: str | None, owner: str | None, details: dict[str, Any]
) -> None:
    at = format_time(AT)
    text = event_text(7, at, actor, action, project, owner, canonical_json(details))
    assert text == reference(seq=7, at=at, actor=actor, action=action, project=project, owner=owner, details=details)
    assert json.loads(text)["details"] == details


def test_canonical_json_sorts_keys_at_every_depth_and_keeps_unicode() -> None:
    assert canonical_json({"b": {"y": 1, "x": 2}, "a": "é"}) == '{"a":"é","b":{"x":2,"y":1}}'


@pytest.mark.parametrize("value", [{"x": math.nan}, {"x": math.inf}, {"when": AT}, {"s": {1, 2}}])
def test_canonical_json_refuses_what_json_cannot_represent_exactly(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="plain JSON"):
        canonical_json(value)


def test_format_time_is_utc_with_six_fraction_digits_and_z() -> None:
    assert format_time(AT) == "2025-01-31T09:30:00.000000Z"
    paris = timezone(timedelta(hours=1))
    assert format_time(datetime(2025, 1, 31, 10, 30, 0, 12, tzinfo=paris)) == "2025-01-31T09:30:00.000012Z"


def test_format_time_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2025, 1, 31, 9, 30))


def test_chain_hash_is_sha256_of_previous_hash_then_event_text() -> None:
    text = event_text(1, format_time(AT), "alice", "project.create", "p1", "CASD", "{}")
    expected = hashlib.sha256(("0" * 64 + text).encode("utf-8")).hexdigest()
    assert GENESIS_HASH == "0" * 64
    assert chain_hash(GENESIS_HASH, text) == expected
    assert len(expected) == 64


def test_every_field_changes_the_hash() -> None:
    fields = [3, format_time(AT), "alice", "project.create", "p1", "CASD", '{"a":1}']
    base = chain_hash(GENESIS_HASH, event_text(*fields))  # type: ignore[arg-type]
    variants = [
        [4, *fields[1:]],
        [3, format_time(AT + timedelta(microseconds=1)), *fields[2:]],
        [*fields[:2], "alicf", *fields[3:]],
        [*fields[:3], "project.delete", *fields[4:]],
        [*fields[:4], None, *fields[5:]],
        [*fields[:5], "INFRACALC", fields[6]],
        [*fields[:6], '{"a":2}'],
    ]
    hashes = {chain_hash(GENESIS_HASH, event_text(*variant)) for variant in variants}  # type: ignore[arg-type]
    assert base not in hashes
    assert len(hashes) == len(variants)
    assert chain_hash("1" * 64, event_text(*fields)) != base  # type: ignore[arg-type]


def test_checkpoint_message_is_domain_separated_canonical_json() -> None:
    message = checkpoint_message(100, "ab" * 32, format_time(AT), "0123456789abcdef")
    assert message.startswith(CHECKPOINT_DOMAIN)
    body = json.loads(message[len(CHECKPOINT_DOMAIN) :])
    assert body == {"at": "2025-01-31T09:30:00.000000Z", "hash": "ab" * 32, "key_id": "0123456789abcdef", "seq": 100}
    assert message[len(CHECKPOINT_DOMAIN) :].decode() == json.dumps(body, sort_keys=True, separators=(",", ":"))

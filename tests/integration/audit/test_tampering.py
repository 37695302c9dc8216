"""Every kind of tampering, done directly in SQL, is found and named, with the first bad sequence number.

Each test builds the same log (12 events, checkpoints at 5 and 10), alters the database as an
attacker with SQL access would, and checks ``verify``'s report. They run with small batches (4
events per query, so faults fall on batch boundaries), with the default batch size, and with four
segments walked at once (on SQLite; see test_segments.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infracalc.audit import AuditLog, CheckpointSigner, chain_hash, event_text, format_time
from infracalc.audit.canonical import checkpoint_message
from infracalc.db import DatabaseSettings, create_engine, upgrade
from infracalc.db import session_factory as make_session_factory
from tests.integration.audit.support import START, FakeClock, append_events, execute, verify_now

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
SHIFT = 1_000_000
COLUMNS = "seq, at, actor, action, project_id, governance, details, prev_hash, hash"


async def rows(sessions: Sessions) -> dict[int, Any]:
    async with sessions() as session:
        result = await session.execute(text(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq"))  # noqa: S608
        return {row.seq: row for row in result}


async def checkpoint_row(sessions: Sessions, seq: int) -> Any:
    async with sessions() as session:
        return (
            await session.execute(text("SELECT seq, hash, at FROM audit_checkpoints WHERE seq = :s"), {"s": seq})
        ).one()


def stored_at(value: object) -> str:
    """The canonical time of a raw ``at`` (SQLite text or PostgreSQL datetime)."""
    if isinstance(value, str):
        return value.replace(" ", "T") + "Z"
    return format_time(value)  # type: ignore[arg-type]


def rehash(seq: int, prev_hash: str, row: Any, **changes: Any) -> str:
    fields = {
        "at": stored_at(row.at),
        "actor": row.actor,
        "action": row.action,
        "project_id": row.project_id,
        "governance": row.governance,
        "details": row.details,
    } | changes
    return chain_hash(prev_hash, event_text(seq, fields["at"], fields["actor"], fields["action"],
                                            fields["project_id"], fields["governance"], fields["details"]))  # fmt: skip


async def sign_checkpoint(sessions: Sessions, seq: int, signer: CheckpointSigner, key_id: str) -> None:
    checkpoint = await checkpoint_row(sessions, seq)
    message = checkpoint_message(seq, checkpoint.hash, stored_at(checkpoint.at), key_id)
    await execute(
        sessions,
        "UPDATE audit_checkpoints SET signature = :sig, key_id = :kid WHERE seq = :s",
        sig=signer.sign(message).hex(),
        kid=key_id,
        s=seq,
    )


# --- the tamperings --------------------------------------------------------------------------


async def modify_actor(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(sessions, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 7")


async def modify_details(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(sessions, """UPDATE audit_events SET details = '{"role":"lead"}' WHERE seq = 7""")


async def modify_time(sessions: Sessions, _signer: CheckpointSigner) -> None:
    # Backdate it to the time of the event before (a plausible, small change).
    await execute(sessions, "UPDATE audit_events SET at = (SELECT at FROM audit_events WHERE seq = 6) WHERE seq = 7")


async def modify_prev_hash(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(sessions, "UPDATE audit_events SET prev_hash = :h WHERE seq = 7", h="e" * 64)


async def delete_event(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(sessions, "DELETE FROM audit_events WHERE seq = 7")


async def delete_first_event(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(sessions, "DELETE FROM audit_events WHERE seq = 1")


async def delete_and_renumber(sessions: Sessions, _signer: CheckpointSigner) -> None:
    await execute(
        sessions,
        "DELETE FROM audit_events WHERE seq = 7",
        "UPDATE audit_events SET seq = seq + :shift WHERE seq > 7",
        "UPDATE audit_events SET seq = seq - :shift - 1 WHERE seq > :shift",
        shift=SHIFT,
    )


async def insert_event(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Make room at 7 and insert a well-formed event there, chained to event 6."""
    log = await rows(sessions)
    forged_hash = rehash(7, log[6].hash, log[6], actor="mallory", action="member.add")
    await execute(
        sessions,
        "UPDATE audit_events SET seq = seq + :shift WHERE seq >= 7",
        "UPDATE audit_events SET seq = seq - :shift + 1 WHERE seq > :shift",
        "INSERT INTO audit_events (seq, at, actor, action, project_id, governance, details, prev_hash, hash) "
        "SELECT 7, at, 'mallory', 'member.add', project_id, governance, details, hash, :forged "
        "FROM audit_events WHERE seq = 6",
        forged=forged_hash,
        shift=SHIFT,
    )


async def insert_event_badly(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Insert at 7 with the right link but a made-up hash."""
    await execute(
        sessions,
        "UPDATE audit_events SET seq = seq + :shift WHERE seq >= 7",
        "UPDATE audit_events SET seq = seq - :shift + 1 WHERE seq > :shift",
        "INSERT INTO audit_events (seq, at, actor, action, project_id, governance, details, prev_hash, hash) "
        "SELECT 7, at, 'mallory', action, project_id, governance, details, hash, :made_up "
        "FROM audit_events WHERE seq = 6",
        made_up="a" * 64,
        shift=SHIFT,
    )


async def swap_rows(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Reorder: events 4 and 7 trade places, each with its own hashes."""
    await execute(
        sessions,
        "UPDATE audit_events SET seq = :shift WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 7",
        "UPDATE audit_events SET seq = 7 WHERE seq = :shift",
        shift=SHIFT,
    )


async def swap_contents(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Reorder: events 4 and 7 trade what happened, who and when; the chain columns stay."""
    log = await rows(sessions)
    for target, source in ((4, log[7]), (7, log[4])):
        await execute(
            sessions,
            "UPDATE audit_events SET at = :at, actor = :actor, action = :action, project_id = :project_id, "
            "governance = :governance, details = :details WHERE seq = :target",
            at=source.at,
            actor=source.actor,
            action=source.action,
            project_id=source.project_id,
            governance=source.governance,
            details=source.details,
            target=target,
        )


async def truncate_before_checkpoint(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Cut the tail below the last checkpoint, and rewind the head to hide it."""
    log = await rows(sessions)
    await execute(
        sessions,
        "DELETE FROM audit_events WHERE seq > 7",
        "UPDATE audit_head SET seq = 7, hash = :h",
        h=log[7].hash,
    )


async def truncate_after_checkpoint(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Cut the unsealed tail (11, 12) but leave the head: the head still counts 12."""
    await execute(sessions, "DELETE FROM audit_events WHERE seq > 10")


async def forge_signature(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """A checkpoint signed by another key that claims the trusted key's id."""
    await sign_checkpoint(sessions, 5, CheckpointSigner.generate(), _signer.key_id)


async def forge_with_other_key(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """A checkpoint honestly signed by another key."""
    mallory = CheckpointSigner.generate()
    await sign_checkpoint(sessions, 5, mallory, mallory.key_id)


async def forge_checkpoint_past_the_end(sessions: Sessions, signer: CheckpointSigner) -> None:
    await execute(
        sessions,
        "INSERT INTO audit_checkpoints (seq, hash, at, signature, key_id) "
        "SELECT 99, hash, at, signature, key_id FROM audit_checkpoints WHERE seq = 10",
    )


async def rewrite_chain(sessions: Sessions, _signer: CheckpointSigner) -> None:
    """Modify event 3 and recompute every later hash and the head: only the checkpoint at 5 can tell."""
    log = await rows(sessions)
    prev = log[2].hash
    for seq in range(3, 13):
        digest = rehash(seq, prev, log[seq], **({"actor": "mallory"} if seq == 3 else {}))
        await execute(
            sessions,
            "UPDATE audit_events SET actor = :actor, prev_hash = :p, hash = :h WHERE seq = :s",
            actor="mallory" if seq == 3 else log[seq].actor,
            p=prev,
            h=digest,
            s=seq,
        )
        prev = digest
    await execute(sessions, "UPDATE audit_head SET hash = :h", h=prev)


Tampering = Callable[[Sessions, CheckpointSigner], Awaitable[None]]

CASES: list[tuple[Tampering, int, str]] = [
    (modify_actor, 7, r"^event 7 was modified: its contents no longer match its hash$"),
    (modify_details, 7, r"^event 7 was modified: its contents"),
    (modify_time, 7, r"^event 7 was modified: its contents"),
    (modify_prev_hash, 7, r"^event 7 was modified: its prev_hash does not link to event 6$"),
    (delete_event, 7, r"^event 7 is missing: the log jumps from seq 6 to 8 \(events were deleted\)$"),
    (delete_first_event, 1, r"^event 1 is missing: the log starts at seq 2"),
    (delete_and_renumber, 7, r"^event 7 was deleted and the later events renumbered"),
    (insert_event, 7, r"^event 7 was inserted: event 8 links to event 6, skipping it$"),
    (insert_event_badly, 7, r"^event 7 was inserted: event 8 links to event 6, skipping it$"),
    (swap_rows, 4, r"^events 4 and 7 were reordered: event 4 holds the contents of event 7$"),
    (swap_contents, 4, r"^events 4 and 7 were reordered: event 4 holds the contents of event 7$"),
    (truncate_before_checkpoint, 8, r"^the log was truncated: it ends at seq 7 but a valid checkpoint seals seq 10"),
    (truncate_after_checkpoint, 11, r"^the log was truncated: it ends at seq 10 but its head records seq 12"),
    (forge_signature, 5, r"^checkpoint at seq 5 has an invalid signature: it was forged or altered$"),
    (forge_with_other_key, 5, r"^checkpoint at seq 5 is signed by key [0-9a-f]{16}, not by the trusted key"),
    (forge_checkpoint_past_the_end, 99, r"^checkpoint at seq 99 has an invalid signature"),
    (rewrite_chain, 5, r"^checkpoint at seq 5 does not match event 5: the log up to seq 5 was rewritten"),
]


@pytest.fixture(params=[(4, 1), (5_000, 1), (4, 4)], ids=["batch4", "batch5000", "segments4"])
def way(request: pytest.FixtureRequest) -> tuple[int, int]:
    """How to verify: events per query, and segments walked at once (1: one pass; more: SQLite only)."""
    batch_size, segments = request.param
    return int(batch_size), int(segments)


@pytest.fixture(params=[1, 4], ids=["one-pass", "segments4"])
def segments(request: pytest.FixtureRequest) -> int:
    """One pass, or four segments walked at once (on SQLite; PostgreSQL always walks in one pass)."""
    return int(request.param)


async def test_an_untouched_log_is_intact(
    engine: AsyncEngine,
    session_factory: Sessions,
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    segments: int,
) -> None:
    await append_events(session_factory, audit_log, 12)
    report = await verify_now(engine, checkpoint_signer, segments=segments)
    assert report.ok
    assert (report.events_checked, report.checkpoints_checked) == (12, 2)
    assert (report.first_bad_seq, report.problem) == (None, None)
    assert report.summary() == "audit log intact: 12 events and 2 checkpoints verified"


@pytest.mark.parametrize(("tamper", "first_bad", "problem"), CASES, ids=[case[0].__name__ for case in CASES])
async def test_tampering_is_found_and_named(
    *,
    engine: AsyncEngine,
    session_factory: Sessions,
    audit_log: AuditLog,
    checkpoint_signer: CheckpointSigner,
    way: tuple[int, int],
    tamper: Tampering,
    first_bad: int,
    problem: str,
) -> None:
    await append_events(session_factory, audit_log, 12)
    assert audit_log.clock() > START
    await tamper(session_factory, checkpoint_signer)
    batch_size, segments = way
    report = await verify_now(engine, checkpoint_signer, batch_size=batch_size, segments=segments)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report.problem
    assert report.problem is not None
    assert re.search(problem, report.problem), report.problem
    assert report.summary().startswith(f"audit log NOT intact at seq {first_bad}: ")


def test_each_kind_of_tampering_has_its_own_message() -> None:
    kinds = {
        "modified": r"was modified",
        "deleted": r"is missing|deleted and the later events renumbered",
        "inserted": r"was inserted",
        "reordered": r"were reordered",
        "truncated": r"was truncated",
        "forged checkpoint": r"invalid signature|not by the trusted key",
        "rewritten": r"was rewritten",
    }
    for _tamper, _seq, pattern in CASES:
        matching = [kind for kind, words in kinds.items() if re.search(words, pattern)]
        assert len(matching) == 1, (pattern, matching)
    assert {kind for kind, words in kinds.items() for *_, p in CASES if re.search(words, p)} == set(kinds)


@pytest.mark.parametrize(
    ("statement", "first_bad"),
    [
        ("UPDATE audit_events SET actor = X'6d616c6c6f7279' WHERE seq = 3", 3),  # a blob where text belongs
        ("UPDATE audit_events SET at = 'x' WHERE seq = 3", 3),  # too short to be a time
        ("UPDATE audit_events SET at = replace(at, ' ', 'T') WHERE seq = 3", 3),  # same digits, other form
        ("UPDATE audit_events SET details = X'7b7d' WHERE seq = 4", 4),  # '{}' as a blob
        ("UPDATE audit_checkpoints SET at = 'soon' WHERE seq = 5", 5),
        ("UPDATE audit_checkpoints SET signature = 'not hex' WHERE seq = 5", 5),
    ],
)
async def test_values_of_the_wrong_shape_are_faults_not_crashes(
    tmp_path: Path, checkpoint_signer: CheckpointSigner, segments: int, statement: str, first_bad: int
) -> None:
    """SQLite stores any type in any column: verification must report it, never raise."""
    settings = DatabaseSettings.from_url(f"sqlite:///{tmp_path / 'odd.db'}")
    await upgrade(settings)
    engine = create_engine(settings)
    try:
        sessions = make_session_factory(engine)
        await append_events(sessions, AuditLog(checkpoint_signer, clock=FakeClock(), checkpoint_every=5), 6)
        await execute(sessions, statement)
        report = await verify_now(engine, checkpoint_signer, segments=segments)
    finally:
        await engine.dispose()
    assert (report.ok, report.first_bad_seq) == (False, first_bad), report.problem

"""A long audit log made quickly: chained events and signed checkpoints inserted straight into the tables.

The load bench (``api_load.py``) needs a log of a million events to show that writes stay flat as
the log grows; appending them through the API would take hours. :func:`fill_audit_log` computes
the chain with the audit module's own encoding and hash (:func:`~infracalc.audit.event_text`,
:func:`~infracalc.audit.chain_hash`), signs a checkpoint every ``checkpoint_every`` events with the
service's own key, and writes the rows with the driver's fastest path: ``executemany`` of plain
tuples on SQLite, ``COPY`` on PostgreSQL. It continues the chain from the log's current head, so
the result is a log that ``infracalc audit verify`` finds intact and that the service appends to.

Run alone (``make bench`` does), it fills a temporary SQLite database with a million events, then
times ``verify`` over it: the rate of the fill, and the proof that what it made is a valid log.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from infracalc.audit import AuditHead, CheckpointSigner, canonical_json, chain_hash, event_text, format_time, verify
from infracalc.audit.canonical import checkpoint_message
from infracalc.db import DatabaseSettings, create_engine, session_factory, upgrade

#: Rows per insert batch (and per COPY on PostgreSQL): large enough that round trips do not count.
BATCH = 20_000
#: How many distinct projects and people the synthetic events name.
PROJECTS, PEOPLE = 200, 400

_EVENT_COLUMNS = ("seq", "at", "actor", "action", "project_id", "governance", "details", "prev_hash", "hash")
_CHECKPOINT_COLUMNS = ("seq", "hash", "at", "signature", "key_id")
_SQLITE_EVENTS = (
    "INSERT INTO audit_events (seq, at, actor, action, project_id, governance, details, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_CHECKPOINTS = "INSERT INTO audit_checkpoints (seq, hash, at, signature, key_id) VALUES (?, ?, ?, ?, ?)"


def _sqlite_time(at: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (the text :func:`infracalc.audit.chain.time_text` reads)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _events(
    first_seq: int, count: int, prev_hash: str, *, start: datetime, signer: CheckpointSigner, checkpoint_every: int
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...] | None]]:
    """Each synthetic event (seq, at, ...) chained to the last, with the checkpoint sealing it when one is due.

    Values are of the kinds real events carry: member and egress changes over :data:`PROJECTS` projects.
    """
    prev = prev_hash
    for offset in range(count):
        seq = first_seq + offset
        at = start + timedelta(microseconds=offset * 250)
        at_text = format_time(at)
        project = f"project-{seq % PROJECTS}"
        governance = "CASD" if seq % 3 else "INFRACALC"
        actor = f"person{seq % PEOPLE}"
        if seq % 2:
            action = "member.add"
            details = canonical_json({"previous_role": None, "role": "member", "username": f"researcher{seq % 997}"})
        else:
            action = "egress.request"
            details = canonical_json(
                {"host": f"api{seq % 1009}.example.org", "justification": "Données de référence n°" + str(seq)}
            )
        digest = chain_hash(prev, event_text(seq, at_text, actor, action, project, governance, details))
        event = (seq, at, actor, action, project, governance, details, prev, digest)
        checkpoint = None
        if seq % checkpoint_every == 0 or offset == count - 1:
            message = checkpoint_message(seq, digest, at_text, signer.key_id)
            checkpoint = (seq, digest, at, signer.sign(message).hex(), signer.key_id)
        yield event, checkpoint
        prev = digest


async def fill_audit_log(
    settings: DatabaseSettings, signer: CheckpointSigner, events: int, *, checkpoint_every: int = 100
) -> float:
    """Append ``events`` chained events (and their checkpoints) after the current head; return the seconds taken.

    The events are timed just before now, 250 µs apart, so that the service's next event follows them.
    The last one is always sealed: the log is left as a quiet service leaves it.
    """
    started = time.perf_counter()
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            head = (await connection.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))).one()
            start = datetime.now(UTC) - timedelta(microseconds=events * 250 + 1_000_000)
            rows = _events(
                head.seq + 1, events, head.hash, start=start, signer=signer, checkpoint_every=checkpoint_every
            )
            last_seq, last_hash = head.seq, head.hash
            batch: list[tuple[Any, ...]] = []
            checkpoints: list[tuple[Any, ...]] = []
            for event, checkpoint in rows:
                batch.append(event)
                if checkpoint is not None:
                    checkpoints.append(checkpoint)
                if len(batch) == BATCH:
                    await _insert(connection, settings, batch, checkpoints)
                    batch, checkpoints = [], []
                last_seq, last_hash = event[0], event[-1]
            await _insert(connection, settings, batch, checkpoints)
            await connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=last_seq, hash=last_hash))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def _insert(
    connection: AsyncConnection,
    settings: DatabaseSettings,
    events: list[tuple[Any, ...]],
    checkpoints: list[tuple[Any, ...]],
) -> None:
    if not events:
        return
    raw = (await connection.get_raw_connection()).driver_connection
    if settings.backend == "postgresql":
        await raw.copy_records_to_table("audit_events", records=events, columns=_EVENT_COLUMNS)
        await raw.copy_records_to_table("audit_checkpoints", records=checkpoints, columns=_CHECKPOINT_COLUMNS)
        return
    await raw.executemany(_SQLITE_EVENTS, [(e[0], _sqlite_time(e[1]), *e[2:]) for e in events])
    await raw.executemany(_SQLITE_CHECKPOINTS, [(c[0], c[1], _sqlite_time(c[2]), *c[3:]) for c in checkpoints])


async def main(events: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = DatabaseSettings.from_url(f"sqlite:///{Path(directory) / 'fill.db'}")
        await upgrade(settings)
        signer = CheckpointSigner.generate()
        seconds = await fill_audit_log(settings, signer, events)
        engine = create_engine(settings)
        try:
            started = time.perf_counter()
            async with session_factory(engine, read_only=True)() as session, session.begin():
                report = await verify(session, signer.public_key)
            verified = time.perf_counter() - started
        finally:
            await engine.dispose()
    print(f"audit log filled directly on SQLite: {events:,} events in {seconds:.1f} s ({events / seconds:,.0f}/s)")
    print(f"  verify: {'intact' if report.ok else 'NOT INTACT'}, {report.events_checked:,} events in {verified:.1f} s")
    if not report.ok:
        raise SystemExit(f"the filled log does not verify: {report}")


if __name__ == "__main__":
    asyncio.run(main())

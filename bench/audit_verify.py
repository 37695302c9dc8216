"""How fast ``verify`` checks a 100,000-event audit log on SQLite, beside two floors measured in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/audit_verify.py``). Builds, in a temporary
SQLite database, 100,000 chained events with a signed checkpoint every 100 (bulk insert), then
times, best of three:

- ``verify``: the whole verification (reads, canonical encoding, SHA-256, 1,000 Ed25519 checks), as
  deployed: one worker process per usable CPU, each walking a segment of the chain;
- ``verify`` in one process (``workers=1``), as before segments, and as on PostgreSQL;
- read floor: the same batched query over the same rows (SQLite's driver, as verify), without any checking;
- hash floor: SHA-256 of the same canonical bytes in a tight loop (no database at all).

Absolute rates depend on the machine and on what else runs on it (the load average is printed);
the ratios to the floors, and the rates per CPU-second, are what to compare across runs.
Target (issue 3): at least 100,000 events/s.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from infracalc.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditEvent,
    AuditHead,
    CheckpointSigner,
    canonical_json,
    chain_hash,
    event_text,
    format_time,
    verify,
)
from infracalc.audit.canonical import checkpoint_message
from infracalc.audit.segments import SQLITE_EVENTS  # the very query verify runs on SQLite
from infracalc.audit.verification import BATCH_SIZE
from infracalc.db import DatabaseSettings, create_engine, session_factory, upgrade

EVENTS = 100_000
CHECKPOINT_EVERY = 100
ROUNDS = 3


async def build(engine: AsyncEngine, signer: CheckpointSigner) -> list[bytes]:
    """Insert the chained events and checkpoints; return the hashed bytes of every event (for the hash floor)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    events: list[dict[str, object]] = []
    checkpoints: list[dict[str, object]] = []
    hashed: list[bytes] = []
    for seq in range(1, EVENTS + 1):
        at = start + timedelta(milliseconds=seq * 7)
        project = f"project-{seq % 50}"
        governance = "CASD" if seq % 3 else "INFRACALC"
        details = canonical_json(
            {"username": f"researcher{seq % 997}", "role": "member", "reason": "Étude n°" + str(seq)}
        )
        text = event_text(seq, format_time(at), f"user{seq % 40}", "member.add", project, governance, details)
        digest = chain_hash(prev, text)
        hashed.append((prev + text).encode())
        events.append(
            {
                "seq": seq,
                "at": at,
                "actor": f"user{seq % 40}",
                "action": "member.add",
                "project_id": project,
                "governance": governance,
                "details": {"username": f"researcher{seq % 997}", "role": "member", "reason": "Étude n°" + str(seq)},
                "prev_hash": prev,
                "hash": digest,
            }
        )
        if seq % CHECKPOINT_EVERY == 0:
            message = checkpoint_message(seq, digest, format_time(at), signer.key_id)
            checkpoints.append(
                {"seq": seq, "hash": digest, "at": at, "signature": signer.sign(message).hex(), "key_id": signer.key_id}
            )
        prev = digest
    async with engine.begin() as connection:
        for offset in range(0, EVENTS, 10_000):
            await connection.execute(insert(AuditEvent), events[offset : offset + 10_000])
        await connection.execute(insert(AuditCheckpoint), checkpoints)
        await connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=EVENTS, hash=prev))
    return hashed


async def best(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """The shortest wall-clock time and the shortest CPU time of ``ROUNDS`` runs, in seconds.

    CPU time counts every thread of this process and the worker processes it waited for.
    """
    walls, cpus = [], []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), cpu_seconds()
        await call()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return min(walls), min(cpus)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children."""
    used = os.times()
    return used.user + used.system + used.children_user + used.children_system


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = DatabaseSettings.from_url(f"sqlite:///{Path(directory) / 'bench.db'}")
        await upgrade(settings)
        engine = create_engine(settings)
        signer = CheckpointSigner.generate()
        try:
            started = time.perf_counter()
            hashed = await build(engine, signer)
            built = time.perf_counter() - started
            print(f"built {EVENTS:,} events and {EVENTS // CHECKPOINT_EVERY:,} checkpoints in {built:.1f} s")
            readers = session_factory(engine, read_only=True)
            usable = len(os.sched_getaffinity(0))

            async def run_verify(workers: int | None = None) -> None:
                async with readers() as session, session.begin():
                    report = await verify(session, signer.public_key, workers=workers)
                if not (report.ok and report.events_checked == EVENTS):
                    raise SystemExit(f"unexpected report: {report}")

            async def read_only() -> None:
                async with readers() as session, session.begin():
                    driver = (await (await session.connection()).get_raw_connection()).driver_connection
                    if driver is None:
                        raise SystemExit("no driver connection")
                    last, seen = 0, 0
                    while True:
                        cursor = await driver.execute(SQLITE_EVENTS, (last, BATCH_SIZE))
                        rows = await cursor.fetchall()
                        await cursor.close()
                        if not rows:
                            break
                        seen += len(rows)
                        last = rows[-1][0]
                if seen != EVENTS:
                    raise SystemExit(f"read {seen} rows")

            async def hash_only() -> None:
                sha256 = hashlib.sha256
                for data in hashed:
                    sha256(data).hexdigest()

            rows = [
                (f"verify (everything; {usable} CPUs)", await best(run_verify)),
                ("verify in one process", await best(lambda: run_verify(workers=1))),
                ("read floor: same query, no checks", await best(read_only)),
                ("hash floor: SHA-256 of the same bytes", await best(hash_only)),
            ]
        finally:
            await engine.dispose()
    verify_wall, verify_cpu = rows[0][1]
    print(f"audit verify on SQLite, {EVENTS:,} events, best of {ROUNDS} (wall clock; CPU time of all threads)")
    for name, (wall, cpu) in rows:
        print(
            f"  {name:<40} {EVENTS / wall:>10,.0f} events/s  x{verify_wall / wall:5.2f}   "
            f"{EVENTS / cpu:>10,.0f} events/CPU-s  x{verify_cpu / cpu:5.2f}"
        )
    verdict = "meets" if EVENTS / verify_wall >= 100_000 else "MISSES"
    print(f"  target 100,000 events/s (wall clock): {verdict}; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

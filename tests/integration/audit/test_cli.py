"""``infracalc audit verify``: one line, exit 0 when intact, 1 with the first bad seq when not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from infracalc.audit import AuditLog, CheckpointSigner, public_key_pem
from infracalc.cli import main
from infracalc.db import DatabaseSettings, create_engine, session_factory
from tests.integration.audit.support import FakeClock, append_events, execute

pytestmark = pytest.mark.integration


async def fill(url: str, signer: CheckpointSigner, count: int, tamper: str | None = None) -> None:
    engine = create_engine(DatabaseSettings.from_url(url))
    try:
        sessions = session_factory(engine)
        log = AuditLog(signer, clock=FakeClock(), checkpoint_every=5)
        await append_events(sessions, log, count)
        if tamper:
            await execute(sessions, tamper)
    finally:
        await engine.dispose()


def verify_cli(url: str, key: Path, *args: str) -> tuple[int, str]:
    env = {"INFRACALC_DATABASE_URL": url, "INFRACALC_AUDIT_KEY": str(key)}
    result = CliRunner().invoke(main, ["audit", "verify", *args], env=env)
    return result.exit_code, result.output


def test_an_intact_log_exits_0(database_url: str, tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    asyncio.run(fill(database_url, CheckpointSigner.load_or_create(key), 12))
    assert verify_cli(database_url, key) == (0, "audit log intact: 12 events and 2 checkpoints verified\n")


def test_a_tampered_log_exits_1_with_the_first_bad_seq(database_url: str, tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    tamper = "UPDATE audit_events SET details = '{}' WHERE seq = 7"
    asyncio.run(fill(database_url, CheckpointSigner.load_or_create(key), 12, tamper))
    assert verify_cli(database_url, key) == (
        1,
        "audit log NOT intact at seq 7: event 7 was modified: its contents no longer match its hash\n",
    )


def test_checkpoints_are_checked_against_the_given_public_key(database_url: str, tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    asyncio.run(fill(database_url, CheckpointSigner.load_or_create(key), 6))
    own = tmp_path / "own.pub.pem"
    own.write_bytes(public_key_pem(CheckpointSigner.load(key).public_key))
    other = tmp_path / "other.pub.pem"
    other.write_bytes(public_key_pem(CheckpointSigner.generate().public_key))
    assert verify_cli(database_url, tmp_path / "absent.pem", "--public-key", str(own))[0] == 0
    code, output = verify_cli(database_url, key, "--public-key", str(other))
    assert code == 1
    assert output.startswith("audit log NOT intact at seq 5: checkpoint at seq 5 is signed by key ")


def test_a_missing_key_is_an_error_not_a_new_key(database_url: str, tmp_path: Path) -> None:
    code, output = verify_cli(database_url, tmp_path / "absent.pem")
    assert code == 1
    assert output.startswith(f"error: no audit key at {tmp_path / 'absent.pem'}")
    assert not (tmp_path / "absent.pem").exists()


def test_an_unreachable_database_is_an_error_without_the_password(tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    CheckpointSigner.load_or_create(key)
    code, output = verify_cli("postgresql://auditor:hunter2-secret@127.0.0.1:1/infracalc", key)
    assert code == 1
    assert output.startswith("error: cannot read the audit log from postgresql+asyncpg://auditor:***@127.0.0.1:1/")
    assert "hunter2" not in output
    code, output = verify_cli(f"sqlite:///{tmp_path / 'empty.db'}", key)
    assert code == 1
    assert "no such table" in output

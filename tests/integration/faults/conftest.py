"""Servers of the fault suite's own, which its tests kill and start again: OPA, the S3 server, PostgreSQL.

The session's shared servers must outlive every test, so a test that kills one gets a private one on a free
port, restartable on the same port and data. PostgreSQL here is a throwaway cluster (``initdb`` in a temporary
folder, run as the ``postgres`` user through ``runuser``), so that stopping it disturbs no other database.
The ``test-speed`` work may bring a shared fixture for such a cluster; this one can then give way to it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infracalc.config import SOURCE_ROOT
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerSpec
from infracalc.stack.servers import opa_spec, s3_spec
from infracalc.storage import S3Settings
from infracalc.tools import Tools


@dataclass
class Restartable:
    """A server that a test kills (SIGKILL, its whole process group) and starts again, same port, same data."""

    spec: ServerSpec
    log_path: Path
    _process: ManagedProcess | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start and wait until healthy."""
        self._process = ManagedProcess(self.spec, self.log_path)
        self._process.start()
        self._process.wait_healthy()

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to finish anything."""
        if self._process is None or self._process.pid is None:
            return
        pid = self._process.pid
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while self._process.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop for good (end of the test)."""
        if self._process is not None:
            self._process.stop()


@dataclass
class PrivateS3:
    """A versitygw of the test's own."""

    server: Restartable
    settings: S3Settings
    log_path: Path


@pytest.fixture
def private_opa(tools: Tools, tmp_path: Path) -> Iterator[Restartable]:
    """An OPA on a free port serving ``policies/``, which the test may kill and restart."""
    port = free_port()
    server = Restartable(
        opa_spec(tools.opa, host="127.0.0.1", port=port, policies_dir=SOURCE_ROOT / "policies"), tmp_path / "opa.log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_s3(tools: Tools, tmp_path: Path) -> Iterator[PrivateS3]:
    """A versitygw on a free port over a folder of its own, which the test may kill and restart."""
    port = free_port()
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key="fault-" + secrets.token_hex(4),
        secret_key=secrets.token_urlsafe(24),
    )
    spec = s3_spec(
        tools.versitygw,
        host="127.0.0.1",
        port=port,
        data_dir=tmp_path / "s3",
        access_key=settings.access_key,
        secret_key=settings.secret_key,
    )
    server = Restartable(spec, tmp_path / "s3.log")
    server.start()
    try:
        yield PrivateS3(server, settings, server.log_path)
    finally:
        server.stop()


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster: ``url`` reaches its database ``infracalc`` as its owner."""

    url: str
    data_dir: Path
    port: int
    bin_dir: Path
    log_path: Path

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start (again) and wait until it takes connections."""
        self._pg_ctl("-l", str(self.log_path), "-o", f"-p {self.port} -k {self.data_dir} -h 127.0.0.1", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop: ``fast`` cuts every connection; ``immediate`` is a crash (recovery at the next start)."""
        self._pg_ctl("-m", mode, "-w", "stop")


def _postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own (root and the Debian postgresql package needed; CI has both)."""
    bin_dir = _postgres_bin()
    if os.geteuid() != 0 or bin_dir is None or shutil.which("runuser") is None:
        pytest.skip("a private PostgreSQL cluster needs root, runuser and /usr/lib/postgresql/*/bin (CI has them)")
    # Not under pytest's own temporary folder, which only root may enter.
    base = Path(tempfile.mkdtemp(prefix="infracalc-fault-pg-"))
    base.chmod(0o755)
    data_dir = base / "data"
    data_dir.mkdir()
    shutil.chown(data_dir, "postgres", "postgres")
    password = secrets.token_hex(12)
    password_file = base / "password"
    password_file.write_text(password)
    shutil.chown(password_file, "postgres", "postgres")
    subprocess.run(
        [
            "runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "infracalc",
            "--pwfile", str(password_file), "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    port = free_port()
    log_path = base / "postgres.log"
    log_path.touch()
    shutil.chown(log_path, "postgres", "postgres")
    cluster = PrivatePostgres(
        url=f"postgresql://infracalc:{password}@127.0.0.1:{port}/postgres",
        data_dir=data_dir,
        port=port,
        bin_dir=bin_dir,
        log_path=log_path,
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)

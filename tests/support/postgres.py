"""A throwaway PostgreSQL cluster for the tests, when PostgreSQL's programs are installed.

``initdb`` makes a cluster in a temporary directory and ``postgres`` serves it on a free loopback
port, its socket in that directory; the end of the test run stops it and deletes everything, as
the fixtures do with Keycloak and OPA. The cluster is tuned for tests: nothing is flushed to disk
(``fsync=off``), which makes the tests' commits and ``CREATE DATABASE`` cheap and loses nothing a
test cares about (the cluster dies with the run anyway).

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` account that
Debian's package creates, and its programs run as that account.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infracalc.stack.ports import free_port
from infracalc.stack.process import tail

#: The programs the tests run.
PROGRAMS = ("initdb", "postgres", "pg_isready")

#: Where Debian and Ubuntu install each major version's programs (not on PATH).
DEBIAN_PREFIX = Path("/usr/lib/postgresql")

#: The account that owns the cluster when the tests run as root.
SYSTEM_ACCOUNT = "postgres"

#: The role the tests connect as (the cluster's superuser).
ROLE = "infracalc_test"

#: Settings for a cluster that lives as long as a test run (see the module docstring).
TEST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}

#: How long the server may take to accept connections.
START_TIMEOUT = 60.0


class PostgresUnavailable(Exception):
    """No cluster can be started here; the message says why (the tests that need one skip with it)."""


def find_bin_dir() -> Path | None:
    """The directory of :data:`PROGRAMS`: on PATH, else Debian's newest version; ``None`` when absent."""

    def complete(directory: Path) -> bool:
        return all((directory / program).is_file() for program in PROGRAMS)

    on_path = shutil.which("initdb")
    if on_path is not None and complete(Path(on_path).parent):
        return Path(on_path).parent
    versions = sorted(
        (path for path in DEBIAN_PREFIX.glob("*/bin") if complete(path)),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)],
    )
    return versions[-1] if versions else None


def _as_owner() -> dict[str, Any]:
    """``subprocess`` arguments that run a program as the cluster's owner: ourselves, or the system account as root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SYSTEM_ACCOUNT)
    except KeyError as error:
        raise PostgresUnavailable(
            f"running as root and there is no {SYSTEM_ACCOUNT!r} account to own a test cluster"
        ) from error
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass
class PostgresCluster:
    """A running throwaway cluster; :meth:`stop` ends it and removes its files."""

    root: Path
    port: int
    password: str = field(repr=False)
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL of the ``postgres`` database as :data:`ROLE` (who may create databases)."""
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop at once (SIGQUIT: nothing to keep) and delete the cluster's directory."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGQUIT)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _initdb(bin_dir: Path, data_dir: Path, password_file: Path, owner: dict[str, Any]) -> None:
    argv: Sequence[str | Path] = [
        bin_dir / "initdb",
        "--pgdata",
        data_dir,
        "--username",
        ROLE,
        "--pwfile",
        password_file,
        "--auth",
        "scram-sha-256",
        "--encoding",
        "UTF8",
        "--locale",
        "C.UTF-8",
        "--no-sync",
    ]
    result = subprocess.run(
        [str(part) for part in argv], capture_output=True, text=True, timeout=120, check=False, **owner
    )
    if result.returncode != 0:
        raise PostgresUnavailable(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _accepting(bin_dir: Path, port: int) -> bool:
    argv = [str(bin_dir / "pg_isready"), "--quiet", "--host", "127.0.0.1", "--port", str(port), "--dbname", "postgres"]
    return subprocess.run(argv, check=False, timeout=10).returncode == 0


def start_cluster(log_path: Path) -> PostgresCluster:
    """Create and start a cluster on a free loopback port (a few seconds), its server log in ``log_path``.

    Raises:
        PostgresUnavailable: PostgreSQL's programs are not installed, or the cluster did not start.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(f"PostgreSQL's {', '.join(PROGRAMS)} are neither on PATH nor under {DEBIAN_PREFIX}")
    owner = _as_owner()
    root = Path(tempfile.mkdtemp(prefix="infracalc-test-postgres-"))
    password = secrets.token_urlsafe(18)
    (root / "password").write_text(password)
    if owner:
        for path in (root, root / "password"):
            os.chown(path, owner["user"], owner["group"])
    port = free_port()
    try:
        _initdb(bin_dir, root / "data", root / "password", owner)
        settings = [f"--{name.replace('_', '-')}={value}" for name, value in TEST_SETTINGS.items()]
        argv = [str(bin_dir / "postgres"), "-D", str(root / "data"), "-p", str(port), "-k", str(root), *settings]
        # The log is opened here (the cluster's owner may not reach test-artifacts/ under a root-only checkout).
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **owner)
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"the test cluster did not start: {error}") from error
    cluster = PostgresCluster(root, port, password, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepting(bin_dir, port):
        if process.poll() is not None or time.monotonic() > deadline:
            cluster.stop()
            raise PostgresUnavailable(f"the test cluster did not start:\n{tail(log_path, 30)}")
        time.sleep(0.1)
    return cluster

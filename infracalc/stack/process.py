"""Child processes of the local stack: start in their own process group, wait until healthy, stop.

A :class:`ServerSpec` says how to run one server and how to know it is up; :class:`ManagedProcess`
runs it with its output in a log file and stops the whole process group, so that a server which
forks helpers (Keycloak's ``kc.sh`` starts a JVM) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infracalc.errors import InfracalcError


class ServerFailed(InfracalcError):
    """A server exited, or did not become healthy in time; the message ends with its log's last lines."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to run one server of the stack and how to tell that it is ready."""

    #: Short name used in progress messages, log file names and ``stack.json``.
    name: str
    #: Program and arguments.
    argv: Sequence[str]
    #: URL that answers 2xx once the server is ready.
    health_url: str
    #: Extra environment variables (added to the parent's environment).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Working directory, when the server cares.
    cwd: Path | None = None
    #: How long the server may take to become healthy, in seconds.
    start_timeout: float = 60.0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers with a 2xx status (any error or other status is ``False``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback URLs
            return 200 <= int(response.status) < 300  # noqa: PLR2004 - the 2xx range
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or an empty string when it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One running server: its process group, its log file and its health probe."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id of the server's group leader, once started."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the server in a new process group, its output appended to :attr:`log_path`."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            list(self.spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.spec.env},
            cwd=self.spec.cwd,
            start_new_session=True,
        )

    def wait_healthy(self, on_tick: Callable[[float], None] | None = None) -> float:
        """Block until the health URL answers 2xx; return the seconds it took.

        Raises:
            ServerFailed: the process exited, or the start timeout passed.
        """
        if self._process is None:
            raise ServerFailed(f"{self.spec.name} was never started")
        started = time.monotonic()
        deadline = started + self.spec.start_timeout
        while True:
            elapsed = time.monotonic() - started
            if http_ok(self.spec.health_url):
                return elapsed
            code = self._process.poll()
            if code is not None:
                raise ServerFailed(
                    f"{self.spec.name} exited with code {code} before becoming healthy; "
                    f"last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(
                    f"{self.spec.name} was not healthy at {self.spec.health_url} after "
                    f"{self.spec.start_timeout:.0f} s; last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            if on_tick is not None:
                on_tick(elapsed)
            time.sleep(0.25)

    def running(self) -> bool:
        """Whether the server's main process is still alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # The leader may be gone while helpers it forked linger in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

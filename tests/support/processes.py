"""Servers the tests run as processes (the service, the egress proxy, the hub): start, wait until ready, stop."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

from infracalc.stack.process import tail


def start_server(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    timeout: float = 60.0,
    cwd: Path | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` logging to ``log_path`` (after what it holds, with ``append``) and return once ``ready()`` holds.

    ``ready`` may raise ``requests.ConnectionError`` or ``OSError`` while the server is not up.

    Raises:
        RuntimeError: the process exited, or was not ready within ``timeout`` (the log's tail says why).
    """
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{tail(log_path, 60)}")
        try:
            if ready():
                return process
        except (requests.ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{what} was not ready within {timeout:g} s:\n{tail(log_path, 60)}")
        time.sleep(0.2)


def answers(url: str) -> Callable[[], bool]:
    """A readiness check: ``url`` answers 200."""
    return lambda: requests.get(url, timeout=2).status_code == 200


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)

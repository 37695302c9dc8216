"""ManagedProcess: health waiting, failure messages with the log, and a stop that leaves nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerFailed, ServerSpec


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    port = free_port()
    # A server that forks a helper, as kc.sh forks the JVM.
    script = f"sleep 300 & exec {sys.executable} -m http.server --bind 127.0.0.1 {port}"
    spec = ServerSpec(name="web", argv=["sh", "-c", script], health_url=f"http://127.0.0.1:{port}/", cwd=tmp_path)
    server = ManagedProcess(spec, tmp_path / "web.log")
    server.start()
    server.wait_healthy()
    assert server.pid is not None
    group = [p for p in psutil.process_iter() if _pgid(p) == server.pid]
    assert len(group) >= 2  # the server and its sleeping helper
    server.stop()
    _gone, alive = psutil.wait_procs(group, timeout=10)
    assert alive == []
    assert not server.running()


def test_exit_before_healthy_reports_the_log(tmp_path: Path) -> None:
    spec = ServerSpec(
        name="broken", argv=["sh", "-c", "echo cannot open database >&2; exit 3"], health_url="http://127.0.0.1:9/"
    )
    server = ManagedProcess(spec, tmp_path / "broken.log")
    server.start()
    with pytest.raises(ServerFailed, match=r"(?s)broken exited with code 3.*cannot open database"):
        server.wait_healthy()


def test_never_healthy_times_out_and_is_stopped(tmp_path: Path) -> None:
    spec = ServerSpec(
        name="slow", argv=["sleep", "300"], health_url=f"http://127.0.0.1:{free_port()}/", start_timeout=1
    )
    server = ManagedProcess(spec, tmp_path / "slow.log")
    server.start()
    with pytest.raises(ServerFailed, match="slow was not healthy"):
        server.wait_healthy()
    assert not server.running()


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.Error):
        return None

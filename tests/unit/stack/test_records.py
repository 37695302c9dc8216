"""Server records: running servers of a stack home are found again, and stopped, without their supervisor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from infracalc.stack import records


def test_a_recorded_server_is_a_stray_until_it_stops(tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        entry = records.record(tmp_path, "opa", server.pid, ["sleep", "600"])
        assert entry.pgid == server.pid
        assert records.strays(tmp_path) == [entry]
        records.stop_strays(tmp_path, [entry], grace=5)
        assert server.wait(timeout=10) < 0
        assert records.strays(tmp_path) == []
        assert list(tmp_path.iterdir()) == []
    finally:
        server.kill()


def test_a_pid_reused_by_another_process_is_not_taken_for_the_server(tmp_path: Path) -> None:
    entry = records.record(tmp_path, "opa", os.getpid(), ["pytest"])
    forged = json.loads((tmp_path / "opa.json").read_text()) | {"started": entry.started - 1, "pgid": 2**22 + 7}
    (tmp_path / "opa.json").write_text(json.dumps(forged))
    assert records.strays(tmp_path) == []
    assert not (tmp_path / "opa.json").exists()


def test_helpers_outliving_their_leader_are_found_and_stopped(tmp_path: Path) -> None:
    # A leader that forks a helper into its group and exits at once (as kc.sh leaves its JVM).
    script = "import subprocess, sys; p = subprocess.Popen(['sleep', '600']); print(p.pid, flush=True)"
    leader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    entry = records.record(tmp_path, "keycloak", leader.pid, ["kc.sh"])
    assert leader.stdout is not None
    helper = int(leader.stdout.readline())
    leader.wait(timeout=10)
    try:
        assert records.strays(tmp_path) == [entry]
        records.stop_strays(tmp_path, [entry], grace=5)
        deadline = time.monotonic() + 10
        while records.start_time(helper) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert records.start_time(helper) is None
    finally:
        if records.start_time(helper) is not None:
            os.kill(helper, 9)

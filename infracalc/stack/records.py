"""Server records: each server ``infracalc up`` starts is written down under the stack's home, pid and process group.

The supervisor stops its servers when it is stopped, but a supervisor killed with SIGKILL stops nothing: its
servers run on, holding their ports, and ``up.pid`` names a dead process. So each server's record
(``<home>/servers/<name>.json``: pid, process group, the process's start time, its command) is written as soon
as it starts and removed once it stopped. :func:`strays` finds the recorded servers still running — the
start time, read from ``/proc``, tells a server from an unrelated process that reuses its pid — and
:func:`stop_strays` stops their process groups (SIGTERM, then SIGKILL). ``infracalc down`` uses them when no
supervisor runs, ``infracalc up`` before it starts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

#: The folder of the records, under the stack's home.
FOLDER = "servers"


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One server of a stack, as started."""

    name: str
    pid: int
    #: Its process group (the server was started in a session of its own: the group of everything it forks).
    pgid: int
    #: When the process started, in clock ticks since boot (``/proc/<pid>/stat``, field 22).
    started: int
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or ``None`` when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command (field 2) is in parentheses and may hold spaces: the fields after it follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def record(folder: Path, name: str, pid: int, argv: Sequence[str]) -> ServerRecord:
    """Write down the server ``name`` just started as ``pid`` (the leader of its own process group)."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = ServerRecord(name=name, pid=pid, pgid=os.getpgid(pid), started=start_time(pid) or 0, argv=tuple(argv))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(asdict(entry)))
    return entry


def forget(folder: Path, name: str) -> None:
    """The server ``name`` stopped: remove its record."""
    with contextlib.suppress(FileNotFoundError):
        (folder / f"{name}.json").unlink()


def strays(folder: Path) -> list[ServerRecord]:
    """The recorded servers still running (records of servers gone are removed on the way)."""
    found: list[ServerRecord] = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            entry = ServerRecord(
                name=str(data["name"]),
                pid=int(data["pid"]),
                pgid=int(data["pgid"]),
                started=int(data["started"]),
                argv=tuple(str(part) for part in data["argv"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing can be done with it
            continue
        if _group_alive(entry):
            found.append(entry)
        else:
            path.unlink(missing_ok=True)
    return found


def _group_alive(entry: ServerRecord) -> bool:
    if start_time(entry.pid) == entry.started:
        return True
    # The leader is gone (or its pid reused); helpers it forked may live on in its group.
    try:
        os.killpg(entry.pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return start_time(entry.pid) is None  # the group id is still the one we started, not a reused pid's


def stop_strays(folder: Path, entries: Sequence[ServerRecord], grace: float = 15.0) -> None:
    """Stop each server's process group: SIGTERM, then SIGKILL for what is left after ``grace`` seconds."""
    for entry in entries:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(entry.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(entry) for entry in entries):
        time.sleep(0.2)
    for entry in entries:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(entry.pgid, signal.SIGKILL)
        forget(folder, entry.name)


__all__ = ["FOLDER", "ServerRecord", "forget", "record", "start_time", "stop_strays", "strays"]

"""What an egress proxy adds to a TCP connection: set-up latency and throughput, beside a direct connection.

Run as root with ``.venv/bin/python bench/egress_proxy.py`` (options: ``--connections N``,
``--bytes B``, ``--skip-smokescreen``). In one run, against one local upstream server:

- **direct**: the client connects to the upstream itself (the baseline);
- **Smokescreen** (Stripe's egress proxy, the pinned version built by
  :func:`infracalc.tools.install_smokescreen`): enforce mode, an allowlist of exactly the upstream;
- **splice floor**, for reference: ``bench/splice_relay.c`` (built with the machine's ``cc``),
  which relays every connection to the upstream with ``splice(2)`` and nothing else (no CONNECT,
  no credentials, no policy): the least any relay costs here, in set-up and in throughput;
- **INFRACALC proxy** (``infracalc egress-proxy``), twice: with its decision cache (the default:
  a bubble's sequential connections to one host reuse a decision for up to 1 s) and without it.
  It asks a real OPA loaded with ``policies/`` and data for one bench project, bubble and rule,
  and posts each decision to a small local sink answering 204, standing in for the service: its
  figures are the proxy's own cost. While the command does not exist (or when a run fails) its
  rows say why, and the other contenders are measured all the same.

Set-up latency is the time from the start of the TCP connect to the upstream's reply to a first
5-byte request (for a proxy: connect, CONNECT, its ``200``, then that round trip through the
tunnel), over N sequential connections after 100 not counted: p50 and p99. Throughput is the
fastest of three downloads of B bytes (default 1 GiB) from the upstream to the client through one
connection. MB/s are 10^6 bytes per second. Every contender stays up for the whole run, and the
samples are taken in rounds (N/10 set-ups of each contender in turn, ten times; then one download
of each, three times), so that the other work on a shared machine weighs on all of them alike.
Each download also reports the CPU seconds per GiB that the client, the upstream and the proxy
spent on it: where the cores are few, the three share them.

The upstream must not be on loopback: the INFRACALC proxy refuses to dial 127.0.0.0/8, even in its
test mode (Smokescreen too, unless told otherwise), and every contender must reach the same
upstream. So, like the tests' lab (``tests/support/netns.py``), the bench makes two network
namespaces of its own, joined by a veth pair: ``icbench<pid>-up`` holds the upstream on
10.232.0.2, and ``icbench<pid>-client`` (10.232.0.1) holds everything else: once the tools are
built, the bench moves itself into it, so that the client, OPA, the sinks and every proxy run
there, on its own loopback. No address is ever added to the host's own namespace, and nothing the
bench sends can leave the two namespaces; both are removed at exit (with the veth pair), and
leftovers of a bench that was killed outright are removed by the next run. Hence root. Every
child process runs in its own process group and is stopped at exit, on Ctrl-C and on errors alike.

Smokescreen facts this relies on (read in its v0.1.0 source): the stock binary takes a client's
role from its TLS client certificate only, and without TLS falls back to the ACL's ``default``
rule only when ``allow_missing_role: true`` is set in a ``--config-file`` (no command-line flag
does it). Its ACL matches host names *as the client wrote them* and accepts IP literals, and an
IP literal is "resolved" without DNS: so the CONNECT target is ``10.232.0.1:<port>``, the default
rule is ``enforce`` with ``allowed_domains: [10.232.0.1]``, and ``allow_addresses:
[10.232.0.1:<port>]`` (the ``--allow-address`` list, which takes a port, unlike ``--allow-range``)
lifts its refusal of private addresses for that one port. No /etc/hosts entry is needed. It
answers a refusal with 407, and success with ``HTTP/1.0 200 OK``. The INFRACALC proxy gets its
name for the upstream from a hosts file given in ``INFRACALC_EGRESS_TEST_HOSTS``.

Absolute times depend on the machine and on what else runs on it (client, proxy and upstream share
its cores); compare the ratios to the direct baseline across runs.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import hashlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil
import requests

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.errors import InfracalcError
from infracalc.identity import proxy_secret
from infracalc.stack.ports import free_port
from infracalc.stack.process import ManagedProcess, ServerFailed, ServerSpec, tail
from infracalc.stack.servers import opa_spec
from infracalc.tools import install, install_smokescreen, versions

#: The upstream's address, in the bench's upstream namespace; the client namespace's end is ``CLIENT_ADDRESS``.
UPSTREAM_ADDRESS = "10.232.0.2"
CLIENT_ADDRESS = "10.232.0.1"
#: The upstream's port (its namespace holds nothing else).
UPSTREAM_PORT = 21080
#: Start of the names of the bench's namespaces (followed by its pid) and of its veth ends.
NAMESPACE_PREFIX = "icbench"
#: ``setns(2)``'s flag for a network namespace.
CLONE_NEWNET = 0x40000000
#: The name the INFRACALC proxy is asked for, mapped to the upstream by a test hosts file.
UPSTREAM_NAME = "bench.infracalc.test"
#: Where the INFRACALC proxy may post its decisions, answered by the bench's sink: one decision a
#: request, or batches of events (``{"events": [{"kind": "decision", ...}, ...]}``), which is what
#: the proxy does today.
DECISION_PATHS = ("/api/v1/egress/decisions", "/api/v1/egress/events")
#: The consent the INFRACALC proxy requires before it reads a test hosts file or allowed ranges.
TEST_MODE_CONSENT = "i-understand-this-disables-ssrf-protection"

#: The reference relay's source (see :func:`splice_floor`), and its row's name.
SPLICE_RELAY_SOURCE = Path(__file__).resolve().parent / "splice_relay.c"
SPLICE_FLOOR = "splice floor (C reference)"

PING = b"PING\n"
PONG = b"PONG\n"
CHUNK = 1 << 20
WARM_UP = 100
#: Timed downloads per contender; the fastest counts (the same for every contender).
DOWNLOADS = 3
#: Set-up samples are taken in this many rounds, each contender in turn within a round, so that a
#: change of the machine's load (other work on shared cores) weighs on every contender alike.
ROUNDS = 10
LOGS = SOURCE_ROOT / "test-artifacts" / "logs"


class BenchError(Exception):
    """A contender did not behave as the measurement assumes (refused, closed, malformed answer)."""


# Upstream and sink: each runs in its own process (``--serve-upstream`` / ``--serve-sink``), so that
# neither shares the client's interpreter (and its GIL) while the client measures.


class UpstreamHandler(socketserver.StreamRequestHandler):
    """One connection: ``PING`` gets ``PONG``; ``SEND <n>`` gets n zero bytes as fast as TCP takes them."""

    def handle(self) -> None:
        """Answer the first line, then wait for the client to close."""
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = self.rfile.readline(64)
        with contextlib.suppress(OSError):
            if line == PING:
                self.connection.sendall(PONG)
                self.rfile.read()
            elif line.startswith(b"SEND "):
                remaining = int(line.split()[1])
                payload = memoryview(bytes(CHUNK))
                while remaining > 0:
                    piece = payload[: min(remaining, CHUNK)]
                    self.connection.sendall(piece)
                    remaining -= len(piece)


class UpstreamServer(socketserver.ThreadingTCPServer):
    """The upstream: one thread per connection, listening on the bench address."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


class SinkHandler(http.server.BaseHTTPRequestHandler):
    """Stands in for the service: a JSON ``POST`` of decisions gets 204; counts them for ``GET /count``."""

    protocol_version = "HTTP/1.1"
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        """Accept one decision, or a batch of events."""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path not in DECISION_PATHS:
            self._answer(404)
            return
        try:
            document = json.loads(body)
        except ValueError:
            self._answer(400)
            return
        events = document.get("events") if isinstance(document, dict) else None
        if isinstance(events, list):
            count = sum(1 for event in events if isinstance(event, dict) and event.get("kind") == "decision")
        else:
            count = 1
        with SinkHandler.lock:
            SinkHandler.received += count
        self._answer(204)

    def do_GET(self) -> None:
        """``/health`` for readiness, ``/count`` for the number of decisions received."""
        if self.path == "/health":
            self._answer(200, b"ok")
        elif self.path == "/count":
            with SinkHandler.lock:
                self._answer(200, str(SinkHandler.received).encode())
        else:
            self._answer(404)

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: one line per decision would only fill the log."""


def split_address(text: str) -> tuple[str, int]:
    """``host:port`` as a tuple."""
    host, _, port = text.rpartition(":")
    return host, int(port)


# The client.


@dataclass(frozen=True, slots=True)
class Contender:
    """How the client reaches the upstream: directly, or through a proxy with a CONNECT request."""

    name: str
    #: Where the client connects: the upstream itself, or the proxy.
    address: tuple[str, int]
    #: The CONNECT target (``host:port``); empty for a direct connection.
    target: str = ""
    #: Extra request headers for the CONNECT request (credentials).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The proxy's process, whose CPU time a download costs; ``None`` for a direct connection.
    pid: int | None = None
    #: Where the proxy reports its decisions (the INFRACALC proxy), to count them; empty otherwise.
    sink_url: str = ""
    #: A remark printed under the table.
    note: str = ""

    def connect_request(self, target: str | None = None, *, credentials: bool = True) -> bytes:
        """The CONNECT request for ``target`` (default: the upstream), with or without the credentials."""
        target = target or self.target
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if credentials:
            lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The proxy's status line, and whatever arrived after its response head (tunnel bytes)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(4096)
        if not data:
            raise BenchError(f"the proxy closed the connection before answering (got {buffer[:80]!r})")
        buffer += data
        if len(buffer) > 65536:
            raise BenchError("the proxy's response head is larger than 64 KiB")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], rest


def granted(status_line: bytes) -> bool:
    """Whether a CONNECT was answered ``200``."""
    parts = status_line.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1] == b"200"


def open_channel(contender: Contender) -> tuple[socket.socket, bytes]:
    """A connection to the upstream (through the contender's tunnel), and bytes already received on it."""
    sock = socket.create_connection(contender.address, timeout=30)
    with contextlib.ExitStack() as on_failure:
        on_failure.callback(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rest = b""
        if contender.target:
            sock.sendall(contender.connect_request())
            status, rest = read_head(sock)
            if not granted(status):
                raise BenchError(
                    f"{contender.name} refused CONNECT {contender.target}: {status.decode(errors='replace')}"
                )
        on_failure.pop_all()
    return sock, rest


def set_up_seconds(contender: Contender) -> tuple[float, float]:
    """Seconds from the start of the connect to the upstream's reply to a first request, and to the channel.

    The second figure is the time until the channel is open: the proxy's ``200`` (or the TCP connect).
    """
    started = time.perf_counter()
    sock, reply = open_channel(contender)
    opened = time.perf_counter() - started
    with sock:
        sock.sendall(PING)
        while len(reply) < len(PONG):
            data = sock.recv(64)
            if not data:
                raise BenchError(f"{contender.name}: the connection closed before the upstream replied")
            reply += data
        elapsed = time.perf_counter() - started
    if reply != PONG:
        raise BenchError(f"{contender.name}: unexpected reply {reply!r}")
    return elapsed, opened


def measure_set_up(contender: Contender, connections: int, *, warm_up: int = WARM_UP) -> list[tuple[float, float]]:
    """Set-up latencies (see :func:`set_up_seconds`) of ``connections`` sequential connections, after ``warm_up``."""
    for _ in range(warm_up):
        set_up_seconds(contender)
    return [set_up_seconds(contender) for _ in range(connections)]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Download:
    """One timed download: bytes per second, and each process's CPU seconds per GiB spent on it."""

    rate: float
    cpu_per_gib: Mapping[str, float]


def measure_throughput(contender: Contender, size: int, upstream_pid: int | None) -> Download:
    """One download of ``size`` bytes from the upstream: its rate, and what it cost the processes on the path.

    On a machine with few cores the client, the upstream and the proxy share them: the CPU time
    each spends per GiB says how much of the rate a proxy's own work can explain.
    """
    pids = {name: pid for name, pid in (("upstream", upstream_pid), ("proxy", contender.pid)) if pid is not None}
    sock, early = open_channel(contender)
    with sock:
        buffer = memoryview(bytearray(CHUNK))
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        client_before = os.times()
        started = time.perf_counter()
        sock.sendall(f"SEND {size}\n".encode())
        received = len(early)
        while received < size:
            count = sock.recv_into(buffer)
            if count == 0:
                raise BenchError(f"{contender.name}: the transfer stopped after {received} of {size} bytes")
            received += count
        elapsed = time.perf_counter() - started
        client_after = os.times()
        spent = {name: cpu_seconds(pids[name]) - seconds for name, seconds in before.items()}
    spent["client"] = client_after.user + client_after.system - client_before.user - client_before.system
    return Download(size / elapsed, {name: seconds * (1 << 30) / size for name, seconds in spent.items()})


def refuses(contender: Contender, target: str, *, credentials: bool = True) -> str | None:
    """The status line with which the proxy refuses ``target``, or ``None`` when it grants it."""
    with socket.create_connection(contender.address, timeout=30) as sock:
        sock.sendall(contender.connect_request(target, credentials=credentials))
        try:
            status, _ = read_head(sock)
        except (BenchError, ConnectionError) as closed:
            return f"closed ({closed})"
    return None if granted(status) else status.decode(errors="replace")


def check_refusals(contender: Contender, attempts: Sequence[tuple[str, bool, str]]) -> None:
    """Make sure the proxy enforces its allowlist, so that what is measured is an enforcing proxy.

    Raises:
        BenchError: a connection that should be refused was granted.
    """
    for target, credentials, why in attempts:
        if refuses(contender, target, credentials=credentials) is None:
            raise BenchError(f"{contender.name} granted CONNECT {target} ({why}): its allowlist is not enforced")


# Results.


@dataclass(frozen=True, slots=True)
class Figures:
    """What was measured for one contender, or why it was not."""

    name: str
    set_up: tuple[float, ...] = ()
    #: Seconds until the channel was open (the proxy's ``200``, or the TCP connect), per connection.
    opened: tuple[float, ...] = ()
    #: The proxy's CPU seconds per connection during the set-up samples (0 for a direct connection).
    proxy_cpu_per_connection: float = 0.0
    #: Bytes per second: the fastest of the downloads.
    throughput: float = 0.0
    #: Every download's bytes per second, in order.
    downloads: tuple[float, ...] = ()
    #: CPU seconds per GiB of each process (client, upstream, proxy) in the fastest download.
    cpu_per_gib: Mapping[str, float] = field(default_factory=dict)
    #: Why the contender was not measured; ``None`` when it was.
    missing: str | None = None
    #: A remark printed under the table.
    note: str = ""

    @property
    def p50(self) -> float:
        """Median set-up latency, seconds."""
        return statistics.median(self.set_up)

    @property
    def p99(self) -> float:
        """99th percentile set-up latency, seconds."""
        return statistics.quantiles(self.set_up, n=100)[98]


def measure_all(
    contenders: Sequence[Contender], connections: int, size: int, upstream_pid: int | None
) -> list[Figures]:
    """Set-up latencies, then throughput (the fastest of ``DOWNLOADS``), of every contender, interleaved.

    Each contender is warmed up; then ``ROUNDS`` rounds take ``connections / ROUNDS`` set-up samples
    of each contender in turn, and ``DOWNLOADS`` rounds one download of each.
    """
    audited = {c.name: decisions_received(c.sink_url, settle=0.5) for c in contenders if c.sink_url}
    for contender in contenders:
        measure_set_up(contender, 0)
    set_up: dict[str, list[tuple[float, float]]] = {contender.name: [] for contender in contenders}
    proxy_cpu: dict[str, float] = dict.fromkeys((contender.name for contender in contenders if contender.pid), 0.0)
    per_round = -(-connections // ROUNDS)
    for done in range(0, connections, per_round):
        print(f"  set-up, round {done // per_round + 1} of {ROUNDS} ...", flush=True)
        for contender in contenders:
            before = cpu_seconds(contender.pid) if contender.pid else 0.0
            set_up[contender.name] += measure_set_up(contender, min(per_round, connections - done), warm_up=0)
            if contender.pid:
                proxy_cpu[contender.name] += cpu_seconds(contender.pid) - before
    downloads: dict[str, list[Download]] = {contender.name: [] for contender in contenders}
    for number in range(DOWNLOADS):
        print(f"  downloads, round {number + 1} of {DOWNLOADS} ...", flush=True)
        for contender in contenders:
            downloads[contender.name].append(measure_throughput(contender, size, upstream_pid))
    for contender in contenders:
        if contender.sink_url:
            received = decisions_received(contender.sink_url, settle=0.5) - audited[contender.name]
            audited[contender.name] = received
    rows = []
    for contender in contenders:
        best = max(downloads[contender.name], key=lambda download: download.rate)
        note = contender.note
        if contender.name in audited:
            note = f"{audited[contender.name]} decisions received by the audit sink"
        rows.append(
            Figures(
                contender.name,
                tuple(total for total, _ in set_up[contender.name]),
                tuple(opened for _, opened in set_up[contender.name]),
                proxy_cpu.get(contender.name, 0.0) / connections,
                best.rate,
                tuple(download.rate for download in downloads[contender.name]),
                best.cpu_per_gib,
                note=note,
            )
        )
    return rows


def print_table(rows: Sequence[Figures], direct: Figures) -> None:
    """Set-up p50/p99, what they add over direct, and throughput against direct."""
    print()
    header = f"{'contender':<38} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'MB/s':>8} {'% direct':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.missing is not None:
            print(f"{row.name:<38} not measured (see above)")
            continue
        added = f"{(row.p50 - direct.p50) * 1e3:+8.3f} {(row.p99 - direct.p99) * 1e3:+8.3f}"
        print(
            f"{row.name:<38} {row.p50 * 1e3:8.3f} {row.p99 * 1e3:8.3f} {'' if row is direct else added:>17} "
            f"{row.throughput / 1e6:8.0f} {row.throughput / direct.throughput:9.0%}"
        )
    for row in rows:
        if row.missing is None and row.note:
            print(f"{row.name}: {row.note}")
    print(f"\nDownloads (MB/s, the fastest of {DOWNLOADS} counts) and CPU seconds per GiB in the fastest:")
    for row in rows:
        if row.missing is None:
            rates = ", ".join(f"{rate / 1e6:.0f}" for rate in row.downloads)
            cpu = ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(row.cpu_per_gib.items()))
            print(f"  {row.name:<38} {rates:<20} CPU s/GiB: {cpu}")
    print("\nSet-up, where the time goes (p50 until the channel is open; p50 of the whole minus that; proxy CPU):")
    for row in rows:
        if row.missing is None:
            opened = statistics.median(row.opened)
            proxy_cpu = row.proxy_cpu_per_connection
            cpu_text = f"proxy {proxy_cpu * 1e3:.3f} ms CPU per connection" if proxy_cpu else ""
            print(f"  {row.name:<38} open {opened * 1e3:.3f} ms, rest {(row.p50 - opened) * 1e3:.3f} ms  {cpu_text}")


def print_verdict(
    candidate: Figures, direct: Figures, smokescreen: Figures | None, floor: Figures | None = None
) -> None:
    """The targets: set-up adds at most 1 ms at p50; throughput at least 80 % of direct; not slower than Smokescreen.

    With the reference relay measured (``floor``), also where the candidate stands against it.
    """

    def mark(met: bool) -> str:
        return "met" if met else "NOT MET"

    print(f"\nverdict, {candidate.name}:")
    if candidate.missing is not None:
        print("  none: not measured")
        return
    added = candidate.p50 - direct.p50
    share = candidate.throughput / direct.throughput
    print(f"  set-up adds <= 1 ms at p50 over direct: {added * 1e3:+.3f} ms -> {mark(added <= 1e-3)}")
    print(f"  throughput >= 80 % of direct: {share:.0%} -> {mark(share >= 0.8)}")
    if floor is not None and floor.missing is None:
        print(
            f"  for reference, the splice floor: {floor.throughput / direct.throughput:.0%} of direct, "
            f"+{(floor.p50 - direct.p50) * 1e3:.3f} ms at p50; this proxy moves "
            f"{candidate.throughput / floor.throughput:.0%} of its MB/s"
        )
    if smokescreen is None or smokescreen.missing is not None:
        print("  not slower than Smokescreen: not measured (--skip-smokescreen)")
        return
    print(
        f"  set-up p50 not slower than Smokescreen: {candidate.p50 * 1e3:.3f} ms against "
        f"{smokescreen.p50 * 1e3:.3f} ms -> {mark(candidate.p50 <= smokescreen.p50)}"
    )
    print(
        f"  throughput not below Smokescreen: {candidate.throughput / 1e6:.0f} MB/s against "
        f"{smokescreen.throughput / 1e6:.0f} MB/s -> {mark(candidate.throughput >= smokescreen.throughput)}"
    )


# Processes and the bench address.


def start(stack: contextlib.ExitStack, spec: ServerSpec) -> ManagedProcess:
    """Start ``spec`` with its log under ``test-artifacts/logs``, stopped when ``stack`` closes."""
    process = ManagedProcess(spec, LOGS / f"bench-egress-{spec.name}.log")
    stack.callback(process.stop, 5.0)
    process.start()
    return process


def wait_accepting(process: ManagedProcess, address: tuple[str, int], timeout: float = 30.0) -> None:
    """Wait until ``address`` accepts TCP connections (for servers without an HTTP health route).

    Raises:
        ServerFailed: the process exited, or the timeout passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=1):
            return
        if not process.running():
            raise ServerFailed(
                f"{process.spec.name} exited; last lines of {process.log_path}:\n{tail(process.log_path)}"
            )
        if time.monotonic() > deadline:
            raise ServerFailed(f"{process.spec.name} does not accept connections on {address} after {timeout:.0f} s")
        time.sleep(0.05)


def ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip`` with ``arguments``; exit with its message when ``check`` and it fails."""
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"ip {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result


def enter_namespace(fd: int) -> None:
    """Move this process (its only thread that matters: the main one) into the network namespace ``fd``.

    ``setns(2)`` through libc: ``os.setns`` exists from Python 3.12 on only.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def sweep_namespaces() -> None:
    """Remove the namespaces of benches whose process is gone (killed before they could clean up)."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = name.removeprefix(NAMESPACE_PREFIX).split("-", 1)[0]
        if name.startswith(NAMESPACE_PREFIX) and owner.isdigit() and not psutil.pid_exists(int(owner)):
            ip("netns", "del", name, check=False)


@contextlib.contextmanager
def bench_namespaces() -> Iterator[str]:
    """Make the bench's two namespaces and move this process into the client one; yield the upstream one's name.

    At the end this process goes back to the namespace it came from and both are removed.
    """
    sweep_namespaces()
    pid = os.getpid()
    client, upstream = f"{NAMESPACE_PREFIX}{pid}-client", f"{NAMESPACE_PREFIX}{pid}-up"
    client_end, upstream_end = f"icb{pid}c", f"icb{pid}u"  # within Linux's 15 characters
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        for namespace in (client, upstream):
            ip("netns", "add", namespace)
        # The pair is made inside the namespaces: not even an address-less end appears in the host's.
        ip("-n", client, "link", "add", client_end, "type", "veth", "peer", "name", upstream_end, "netns", upstream)
        for namespace, end, address in (
            (client, client_end, CLIENT_ADDRESS),
            (upstream, upstream_end, UPSTREAM_ADDRESS),
        ):
            ip("-n", namespace, "addr", "add", f"{address}/30", "dev", end)
            ip("-n", namespace, "link", "set", end, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        with open(f"/run/netns/{client}") as handle:
            enter_namespace(handle.fileno())
        yield upstream
    finally:
        enter_namespace(original)
        os.close(original)
        for namespace in (client, upstream):
            ip("netns", "del", namespace, check=False)


# Contenders.


def smokescreen(stack: contextlib.ExitStack, binary: Path, work: Path, upstream: tuple[str, int]) -> Contender:
    """Start Smokescreen in enforce mode with an allowlist of exactly the upstream; return how to reach it."""
    acl = work / "smokescreen-acl.yaml"
    acl.write_text(
        "version: v1\nservices: []\n"
        "default:\n  name: bench\n  project: bench\n  action: enforce\n"
        f"  allowed_domains:\n    - {UPSTREAM_ADDRESS}\n"
    )
    config = work / "smokescreen.yaml"
    config.write_text(
        f"allow_missing_role: true\nacl_file: {acl}\nallow_addresses:\n  - {UPSTREAM_ADDRESS}:{upstream[1]}\n"
    )
    port = free_port()
    argv = [str(binary), "--config-file", str(config), "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    # No HTTP health route: ready once it accepts connections (then a CONNECT must succeed).
    process = start(stack, ServerSpec(name="smokescreen", argv=argv, health_url=""))
    wait_accepting(process, ("127.0.0.1", port))
    contender = Contender(
        f"smokescreen {versions.SMOKESCREEN_VERSION}",
        ("127.0.0.1", port),
        f"{UPSTREAM_ADDRESS}:{upstream[1]}",
        pid=process.pid,
        note="enforce mode, default ACL rule",
    )
    check_refusals(
        contender,
        [
            (f"{UPSTREAM_ADDRESS}:{upstream[1] + 1}", True, "another port"),
            (f"{UPSTREAM_NAME}:{upstream[1]}", True, "a host outside the allowlist"),
        ],
    )
    return contender


def splice_floor(stack: contextlib.ExitStack, work: Path, upstream: tuple[str, int]) -> Contender | str:
    """Build and start the reference relay (``bench/splice_relay.c``); return how to reach it, or why not.

    It relays every connection to the upstream with ``splice(2)`` and nothing else (no CONNECT, no
    credentials, no policy): its rows are the least any relay costs on this machine.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler (cc) on PATH"
    binary = work / "splice_relay"
    build = subprocess.run(
        [compiler, "-O2", "-pthread", "-o", str(binary), str(SPLICE_RELAY_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        return f"{compiler} failed: {build.stderr.strip()[-300:]}"
    port = free_port()
    argv = [str(binary), "127.0.0.1", str(port), upstream[0], str(upstream[1])]
    process = start(stack, ServerSpec(name="splice-floor", argv=argv, health_url=""))
    wait_accepting(process, ("127.0.0.1", port))
    return Contender(
        SPLICE_FLOOR,
        ("127.0.0.1", port),
        pid=process.pid,
        note="reference only: splice(2) between two TCP connections, no CONNECT, no policy (bench/splice_relay.c)",
    )


def infracalc_proxy_problem() -> str | None:
    """Why ``infracalc egress-proxy`` cannot run here, or ``None`` when it can."""
    result = subprocess.run(
        [sys.executable, "-m", "infracalc", "egress-proxy", "--help"], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return f"`infracalc egress-proxy --help` exits with {result.returncode}: {lines[-1] if lines else 'no output'}"


@dataclass(frozen=True, slots=True)
class Bubble:
    """A bench bubble's id and token, minted like the service's (``ibt_<id>_<secret>``)."""

    id: str
    secret: str

    @classmethod
    def mint(cls) -> Bubble:
        """A fresh id (16 hex characters) and secret (64)."""
        return cls(secrets.token_hex(8), secrets.token_hex(32))

    @property
    def token(self) -> str:
        """What the bubble presents."""
        return f"ibt_{self.id}_{self.secret}"

    @property
    def proxy_authorization(self) -> str:
        """The ``Proxy-Authorization`` value: Basic, the bubble id as user and the token as password."""
        return "Basic " + base64.b64encode(f"{self.id}:{self.token}".encode()).decode()


def load_opa(url: str, bubble: Bubble, upstream_port: int) -> None:
    """Put the bench project, rule and bubble in OPA, one document each, and check the rule allows the upstream.

    Raises:
        BenchError: the policy does not allow the bench connection with this data.
    """
    session = requests.Session()
    documents = {
        "projects": {"bench": {"title": "Bench", "governance": "INFRACALC"}},
        "rules": {
            "bench": {
                "r1": {
                    "host": UPSTREAM_NAME,
                    "wildcard": False,
                    "ports": [upstream_port],
                    "methods": [],
                    "path_prefixes": [],
                    "expires_at_ns": time.time_ns() + 86_400 * 10**9,
                }
            }
        },
        "rule_hosts": {"bench": {UPSTREAM_NAME: {"r1": True}}},
        # The policy lets a bubble out only while its user is a member of its project.
        "members": {"bench": {"bench": {"role": "member"}}},
        "bubbles": {
            bubble.id: {
                "project": "bench",
                "username": "bench",
                "token_sha256": hashlib.sha256(bubble.secret.encode()).hexdigest(),
                # Its credentials work only from where it connects: the bench's clients are on the loopback.
                "address": "127.0.0.1",
            }
        },
    }
    for name, document in documents.items():
        session.put(f"{url}/v1/data/store/infracalc/{name}", json=document, timeout=10).raise_for_status()
    question = {"bubble": {"id": bubble.id, "project": "bench"}, "host": UPSTREAM_NAME, "port": upstream_port}
    answer = session.post(
        f"{url}/v1/data/infracalc/egress/decision", json={"input": {**question, "scheme": "connect"}}, timeout=10
    ).json()
    if answer.get("result", {}).get("allow") is not True:
        raise BenchError(f"OPA does not allow the bench connection: {answer}")


def decisions_received(sink_url: str, *, settle: float = 0.0) -> int:
    """How many decisions the sink has received, once the count has not moved for ``settle`` seconds.

    The proxy posts in the background, in batches: the last ones arrive after the client is done.
    """
    deadline = time.monotonic() + 10 * settle
    count = -1
    while True:
        with urllib.request.urlopen(f"{sink_url}/count", timeout=5) as response:  # noqa: S310 - our loopback sink
            latest = int(response.read())
        if latest == count or not settle or time.monotonic() > deadline:
            return latest
        count = latest
        time.sleep(settle)


#: The INFRACALC proxy's two runs: name, process name (for its log), and the environment that makes the difference.
INFRACALC_RUNS: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("infracalc proxy (decision cache warm)", "infracalc-proxy-cache", {}),
    ("infracalc proxy (no cache)", "infracalc-proxy-no-cache", {"INFRACALC_EGRESS_DECISION_CACHE_SECONDS": "0"}),
)


def infracalc_contenders(stack: contextlib.ExitStack, work: Path, upstream_port: int) -> list[Contender]:
    """Both INFRACALC proxies (decision cache warm, and none) against one OPA, each reporting to a sink of its own."""
    opa_binary = install(ToolSettings.from_env(), report=lambda _line: None).opa
    opa_port = free_port()
    opa = start(stack, opa_spec(opa_binary, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies"))
    opa.wait_healthy()
    bubble = Bubble.mint()
    load_opa(f"http://127.0.0.1:{opa_port}", bubble, upstream_port)
    hosts = work / "hosts"
    hosts.write_text(f"{UPSTREAM_ADDRESS} {UPSTREAM_NAME}\n")
    contenders = []
    for name, process_name, extra in INFRACALC_RUNS:
        sink_port = free_port()
        sink_url = f"http://127.0.0.1:{sink_port}"
        sink_argv = [sys.executable, str(Path(__file__).resolve()), "--serve-sink", f"127.0.0.1:{sink_port}"]
        sink = start(stack, ServerSpec(name=f"{process_name}-sink", argv=sink_argv, health_url=f"{sink_url}/health"))
        sink.wait_healthy()
        port, metrics_port = free_port(), free_port()
        env = {
            "INFRACALC_EGRESS_PROXY_HOST": "127.0.0.1",
            "INFRACALC_EGRESS_PROXY_PORT": str(port),
            "INFRACALC_EGRESS_METRICS_PORT": str(metrics_port),
            "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
            "INFRACALC_SERVICE_URL": sink_url,
            "INFRACALC_EGRESS_PROXY_SECRET": proxy_secret.mint(),
            "INFRACALC_EGRESS_TEST_MODE": TEST_MODE_CONSENT,
            "INFRACALC_EGRESS_TEST_ALLOW_RANGES": f"{UPSTREAM_ADDRESS}/32",
            "INFRACALC_EGRESS_TEST_HOSTS": str(hosts),
            # One bubble opening connections as fast as it can: the rates allowed by default (100 a
            # second per bubble, 2,000 overall) would measure the limits, not the set-up.
            "INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE": "1000000",
            "INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST": "1000000",
            "INFRACALC_EGRESS_CONNECTION_RATE": "1000000",
            "INFRACALC_EGRESS_CONNECTION_BURST": "1000000",
            **extra,
        }
        spec = ServerSpec(
            name=process_name,
            argv=[sys.executable, "-m", "infracalc", "egress-proxy"],
            env=env,
            health_url=f"http://127.0.0.1:{metrics_port}/metrics",
            start_timeout=30.0,
        )
        proxy = start(stack, spec)
        proxy.wait_healthy()
        contender = Contender(
            name,
            ("127.0.0.1", port),
            f"{UPSTREAM_NAME}:{upstream_port}",
            {"Proxy-Authorization": bubble.proxy_authorization},
            pid=proxy.pid,
            sink_url=sink_url,
        )
        check_refusals(
            contender,
            [
                (f"{UPSTREAM_NAME}:{upstream_port + 1}", True, "a port no rule allows"),
                (contender.target, False, "no credentials"),
            ],
        )
        contenders.append(contender)
    return contenders


# Entry points.


def run(arguments: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Measure every contender and print the table and the verdict."""
    settings = ToolSettings.from_env()
    smokescreen_binary = (
        None if arguments.skip_smokescreen else install_smokescreen(settings, report=lambda _: None).smokescreen
    )
    problem = infracalc_proxy_problem()
    upstream_namespace = stack.enter_context(bench_namespaces())
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="infracalc-bench-egress-")))
    upstream = (UPSTREAM_ADDRESS, UPSTREAM_PORT)
    upstream_argv = [
        *("ip", "netns", "exec", upstream_namespace),
        *(sys.executable, str(Path(__file__).resolve()), "--serve-upstream", f"{upstream[0]}:{upstream[1]}"),
    ]
    # No HTTP health route: ready once it accepts connections.
    upstream_process = start(stack, ServerSpec(name="upstream", argv=upstream_argv, health_url=""))
    wait_accepting(upstream_process, upstream)
    upstream_pid = upstream_process.pid
    size, connections = arguments.bytes, arguments.connections
    print(
        f"Egress proxies: upstream {upstream[0]}:{upstream[1]} (in a namespace of its own, through a veth pair), "
        f"{connections} sequential "
        f"connections after {WARM_UP} not counted (in {ROUNDS} interleaved rounds), the fastest of {DOWNLOADS} "
        f"downloads of {size:,} bytes (upstream to client) each; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    contenders = [Contender("direct (no proxy)", upstream)]
    if smokescreen_binary is not None:
        contenders.append(smokescreen(stack, smokescreen_binary, work, upstream))
    floor = splice_floor(stack, work, upstream)
    if isinstance(floor, str):
        print(f"{SPLICE_FLOOR}: not measured ({floor})")
    else:
        contenders.append(floor)
    if problem is not None:
        problem = f"not available ({problem})"
    else:
        try:
            contenders += infracalc_contenders(stack, work, upstream[1])
        except (InfracalcError, BenchError, OSError, requests.RequestException) as error:
            problem = f"failed ({type(error).__name__}: {error})"
    # Every contender stays up while the others are measured: idle, a proxy costs next to nothing,
    # and interleaving makes the load of the moment the same for all.
    rows = measure_all(contenders, connections, size, upstream_pid)
    direct = rows[0]
    smokescreen_figures = next((row for row in rows if row.name.startswith("smokescreen")), None)
    if problem is not None:
        print(f"infracalc proxy: {problem}")
        rows += [Figures(name, missing=problem) for name, _, _ in INFRACALC_RUNS]
    print_table(rows, direct)
    if any(row.missing is None and row.name.startswith("infracalc") for row in rows):
        print(
            "The INFRACALC proxy posts its decisions to a local sink answering 204 in place of the service: "
            "its figures are the proxy's own cost."
        )
    print(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    floor_figures = next((row for row in rows if row.name == SPLICE_FLOOR), None)
    for row in rows[-2:]:
        print_verdict(row, direct, smokescreen_figures, floor_figures)


def terminate(signal_number: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM and SIGHUP into an exit that runs the clean-up, like Ctrl-C does."""
    raise SystemExit(128 + signal_number)


def positive(text: str) -> int:
    """An argparse type: an integer above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above zero")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options; run the bench, or one of its helper servers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--connections", type=positive, default=2000, help="sequential connections timed (2000)")
    parser.add_argument("--bytes", type=positive, default=1 << 30, help="bytes of the throughput download (1 GiB)")
    parser.add_argument("--skip-smokescreen", action="store_true", help="measure direct and INFRACALC only")
    parser.add_argument("--serve-upstream", metavar="HOST:PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sink", metavar="HOST:PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve_upstream:
        UpstreamServer(split_address(arguments.serve_upstream), UpstreamHandler).serve_forever()
        return
    if arguments.serve_sink:
        http.server.ThreadingHTTPServer(split_address(arguments.serve_sink), SinkHandler).serve_forever()
        return
    if os.geteuid() != 0:
        raise SystemExit(
            "bench/egress_proxy.py must run as root: it puts the upstream in a network namespace of its own "
            "(proxies refuse loopback upstreams) and removes it at exit"
        )
    if shutil.which("ip") is None:
        raise SystemExit("the `ip` command (iproute2) is required")
    stack = contextlib.ExitStack()
    # close() runs each clean-up once, so atexit adds a net (for a signal arriving before the try)
    # without doubling anything.
    atexit.register(stack.close)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        run(arguments, stack)
    except KeyboardInterrupt:
        print("interrupted: stopping every child process and removing the bench's namespaces", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave a child or the address behind.
        for name in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(name, signal.SIG_IGN)
        stack.close()


if __name__ == "__main__":
    main()

"""Inspected HTTPS beside tunnels: what opening the TLS costs, in set-up latency and throughput (issue 22, item 6).

Run as root with ``.venv/bin/python bench/egress_inspection.py`` (options: ``--connections N``,
``--bytes B``, ``--mitmdump PATH``, ``--skip-smokescreen``). It reuses ``bench/egress_proxy.py``'s
two network namespaces (the upstream alone in one, everything else in the other, nothing in the
host's own), its process handling and its OPA and sink set-up. In one run, against one HTTPS
upstream whose certificate comes from a CA made for the run:

- **direct**: the client talks TLS to the upstream itself (the baseline);
- **INFRACALC tunnel rule**: ``CONNECT``, then the client's TLS end to end through the relay;
- **INFRACALC inspect rule**: the same proxy process, a rule of mode ``inspect`` for another name
  of the same upstream: the proxy terminates the client's TLS with a leaf of its egress CA,
  decides the request (OPA, method, path, sizes, budget) and makes its own TLS connection to the
  upstream, verified against the run's CA (``INFRACALC_EGRESS_TEST_UPSTREAM_CA``, test mode);
- **Smokescreen** (tunnel only: it never opens TLS), enforce mode, an allowlist of the upstream;
- **mitmproxy** (``mitmdump`` from PyPI, given by ``--mitmdump``; the usual TLS-inspecting proxy in
  Python): explicit proxy mode, an addon allowing CONNECT to the upstream and GET and HEAD only,
  upstream verified against the run's CA, nothing stored; like the inspect rule it terminates the
  client's TLS with a CA of its own.

Before measuring, each inspecting proxy must refuse a ``POST`` (403): what is measured enforces.

Set-up latency is the time from the start of the TCP connect to the end of the answer to a first
``GET /ping`` (``CONNECT``, its ``200``, the TLS handshake with the proxy or through it, the request
and its 5-byte answer), over N sequential connections after a warm-up: p50 and p99; each connection
is new (no TLS session resumption). Throughput is the fastest of three ``GET /bytes/B`` (default 1
GiB) through one connection, as MB/s (10^6 bytes per second). Samples are taken in rounds, each
contender in turn, so that the other work of a shared machine weighs on all alike; the load average
is printed before and after.

Targets (issue 22): an inspected set-up adds at most 2 ms at p50 over a tunnel; inspected throughput
at least half a tunnel's; and ahead of mitmproxy on both. The verdict says met or NOT MET for what
was measured, nothing for what was not.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import http.server
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
import egress_proxy as base

from infracalc.config import SOURCE_ROOT, ToolSettings
from infracalc.identity import proxy_secret
from infracalc.proxy.authority import create_authority
from infracalc.stack.ports import free_port
from infracalc.stack.process import ServerSpec
from infracalc.stack.servers import opa_spec
from infracalc.tools import install, install_smokescreen, versions
from tests.support.netns import write_test_certificates

UPSTREAM_PORT = 21443
#: Two names of the one upstream: one under an inspect rule, one under a tunnel rule (the policy
#: opens a tunnel where both modes match, so each mode needs a name of its own).
INSPECTED_NAME, TUNNELLED_NAME = "inspect.bench.infracalc.test", "tunnel.bench.infracalc.test"
#: Every answer's body is zeros from this buffer.
CHUNK = 1 << 20
WARM_UP = 50
DOWNLOADS = 3
ROUNDS = 10
PONG = b"PONG\n"


class BenchError(Exception):
    """A contender did not behave as the measurement assumes."""


# The run's CA and the upstream.


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    """``GET /ping`` answers ``PONG``; ``GET /bytes/N`` answers N zero bytes, with their length."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Answer one request."""
        if self.path == "/ping":
            size, payload = len(PONG), PONG
        elif self.path.startswith("/bytes/"):
            size, payload = int(self.path.removeprefix("/bytes/")), b""
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if payload:
            self.wfile.write(payload)
            return
        zeros = memoryview(bytes(CHUNK))
        remaining = size
        while remaining > 0:
            piece = zeros[: min(remaining, CHUNK)]
            self.wfile.write(piece)
            remaining -= len(piece)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


class TlsUpstream(http.server.ThreadingHTTPServer):
    """The HTTPS upstream: each connection's handshake in its own thread."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], cert: str, key: str) -> None:
        super().__init__(address, UpstreamHandler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["http/1.1"])

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Wrap the connection in TLS, then serve it."""
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(wrapped, client_address)


# The client.


@dataclass(frozen=True, slots=True)
class Contender:
    """How the client reaches the upstream over HTTPS, and what it trusts for the server it meets."""

    name: str
    address: tuple[str, int]
    #: The TLS server name (and ``Host``) of the request.
    server_name: str
    #: The CA file the client verifies the server it meets with (the upstream's, or the proxy's own).
    cafile: Path
    #: The ``CONNECT`` target; empty for a direct connection.
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    note: str = ""

    def context(self) -> ssl.SSLContext:
        """A client context trusting :attr:`cafile` only, HTTP/1.1 by ALPN."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.set_alpn_protocols(["http/1.1"])
        return context


def _read_head(stream: socket.socket | ssl.SSLSocket, buffer: bytearray) -> bytes:
    """The response head; what follows it stays in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        data = stream.recv(65536)
        if not data:
            raise BenchError(f"closed before the end of an answer's head (got {bytes(buffer[:120])!r})")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _content_length(head: bytes, name: str, rest: bytes) -> int:
    """The answer's announced length, once it is shown to be a ``200``."""
    status = head.split(b"\r\n", 1)[0]
    if status.split()[1:2] != [b"200"]:
        raise BenchError(f"{name}: {status.decode(errors='replace')}: {rest[:300].decode(errors='replace')}")
    for line in head.split(b"\r\n")[1:]:
        header, _, value = line.partition(b":")
        if header.strip().lower() == b"content-length":
            return int(value)
    raise BenchError(f"{name}: an answer without Content-Length")


def exchange(contender: Contender, context: ssl.SSLContext, path: str, method: str = "GET") -> tuple[int, float, float]:
    """One new connection and one request (no body): bytes of the answer's body, seconds to its head, and in all."""
    started = time.perf_counter()
    sock = socket.create_connection(contender.address, timeout=60)
    with contextlib.ExitStack() as closing:
        closing.callback(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        if contender.target:
            lines = [f"CONNECT {contender.target} HTTP/1.1", f"Host: {contender.target}"]
            lines += [f"{key}: {value}" for key, value in contender.headers.items()]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            status = _read_head(sock, buffer).split(b"\r\n", 1)[0]
            if status.split()[1:2] != [b"200"]:
                raise BenchError(f"{contender.name} refused CONNECT {contender.target}: {status!r}")
        try:
            tls = context.wrap_socket(sock, server_hostname=contender.server_name)
        except ssl.SSLError as error:
            raise BenchError(f"{contender.name}: the TLS handshake failed: {error}") from None
        closing.callback(tls.close)
        host = f"{contender.server_name}:{UPSTREAM_PORT}"  # not the default port: it is named
        request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode())
        buffer = bytearray()
        head = _read_head(tls, buffer)
        length = _content_length(head, contender.name, bytes(buffer))
        headed = time.perf_counter() - started
        received = len(buffer)
        view = memoryview(bytearray(CHUNK))
        while received < length:
            count = tls.recv_into(view)
            if count == 0:
                raise BenchError(f"{contender.name}: the answer stopped after {received} of {length} bytes")
            received += count
        return received, headed, time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Figures:
    """One contender's samples."""

    name: str
    set_up: tuple[float, ...] = ()
    downloads: tuple[float, ...] = ()
    #: The proxy's CPU seconds per GiB, the least over the downloads; ``None`` without a proxy.
    proxy_cpu_per_gib: float | None = None
    note: str = ""

    @property
    def p50(self) -> float:
        """Median set-up, seconds."""
        return statistics.median(self.set_up)

    @property
    def p99(self) -> float:
        """99th percentile set-up, seconds."""
        return statistics.quantiles(self.set_up, n=100)[98]

    @property
    def throughput(self) -> float:
        """The fastest download, bytes per second."""
        return max(self.downloads)


def check_read_only(contender: Contender) -> None:
    """Make sure an inspecting proxy refuses a ``POST``: what is measured is a proxy that enforces its rule.

    Raises:
        BenchError: the ``POST`` was not refused 403.
    """
    try:
        exchange(contender, contender.context(), "/ping", "POST")
    except BenchError as refused:
        if " 403 " in str(refused):
            return
        raise
    raise BenchError(f"{contender.name} let a POST through: its rule is not enforced")


def measure(contenders: Sequence[Contender], connections: int, size: int) -> list[Figures]:
    """Set-ups then downloads, each contender in turn within each round."""
    contexts = {contender.name: contender.context() for contender in contenders}
    for contender in contenders:
        for _ in range(WARM_UP):
            exchange(contender, contexts[contender.name], "/ping")
    set_up: dict[str, list[float]] = {contender.name: [] for contender in contenders}
    per_round = -(-connections // ROUNDS)
    for done in range(0, connections, per_round):
        print(f"  set-up, round {done // per_round + 1} of {ROUNDS} (load {os.getloadavg()[0]:.2f}) ...", flush=True)
        for contender in contenders:
            for _ in range(min(per_round, connections - done)):
                set_up[contender.name].append(exchange(contender, contexts[contender.name], "/ping")[2])
    downloads: dict[str, list[float]] = {contender.name: [] for contender in contenders}
    proxy_cpu: dict[str, float] = {}
    for number in range(DOWNLOADS):
        print(f"  downloads, round {number + 1} of {DOWNLOADS} (load {os.getloadavg()[0]:.2f}) ...", flush=True)
        for contender in contenders:
            before = base.cpu_seconds(contender.pid) if contender.pid else 0.0
            received, _, elapsed = exchange(contender, contexts[contender.name], f"/bytes/{size}")
            if received != size:
                raise BenchError(f"{contender.name}: {received} bytes of {size}")
            downloads[contender.name].append(size / elapsed)
            if contender.pid:
                spent = (base.cpu_seconds(contender.pid) - before) * (1 << 30) / size
                proxy_cpu[contender.name] = min(proxy_cpu.get(contender.name, spent), spent)
    return [
        Figures(
            contender.name,
            tuple(set_up[contender.name]),
            tuple(downloads[contender.name]),
            proxy_cpu.get(contender.name),
            contender.note,
        )
        for contender in contenders
    ]


def print_results(rows: Sequence[Figures], missing: dict[str, str]) -> None:
    """The table, then the verdict on the issue's targets for what was measured."""
    direct = rows[0]
    header = (
        f"{'contender':<34} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'MB/s':>7} {'% direct':>8} "
        f"{'proxy CPU s/GiB':>16}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        over = "" if row is direct else f"{(row.p50 - direct.p50) * 1e3:+8.3f}"
        cpu = f"{row.proxy_cpu_per_gib:16.2f}" if row.proxy_cpu_per_gib is not None else ""
        print(
            f"{row.name:<34} {row.p50 * 1e3:8.3f} {row.p99 * 1e3:8.3f} {over:>8} {row.throughput / 1e6:7.0f} "
            f"{row.throughput / direct.throughput:8.0%} {cpu}"
        )
    for name, why in missing.items():
        print(f"{name:<34} not measured: {why}")
    for row in rows:
        if row.note:
            print(f"{row.name}: {row.note}")
    print("Downloads (MB/s, the fastest counts):")
    for row in rows:
        print(f"  {row.name:<34} " + ", ".join(f"{rate / 1e6:.0f}" for rate in row.downloads))
    by_name = {row.name.split(" (", 1)[0]: row for row in rows}
    inspected, tunnel = by_name.get("infracalc inspect rule"), by_name.get("infracalc tunnel rule")
    mitm = next((row for row in rows if row.name.startswith("mitmproxy")), None)

    def mark(met: bool) -> str:
        return "met" if met else "NOT MET"

    print("\nverdict (issue 22, item 6):")
    if inspected is None or tunnel is None:
        print("  none: the INFRACALC proxy was not measured")
        return
    added = inspected.p50 - tunnel.p50
    share = inspected.throughput / tunnel.throughput
    print(f"  inspected set-up adds <= 2 ms at p50 over a tunnel: {added * 1e3:+.3f} ms -> {mark(added <= 2e-3)}")
    print(f"  inspected throughput >= half a tunnel's: {share:.0%} -> {mark(share >= 0.5)}")
    if mitm is None:
        print("  ahead of mitmproxy: not measured")
        return
    print(
        f"  set-up ahead of mitmproxy: {inspected.p50 * 1e3:.3f} ms against {mitm.p50 * 1e3:.3f} ms at p50 "
        f"-> {mark(inspected.p50 < mitm.p50)}"
    )
    print(
        f"  throughput ahead of mitmproxy: {inspected.throughput / 1e6:.0f} MB/s against "
        f"{mitm.throughput / 1e6:.0f} MB/s -> {mark(inspected.throughput > mitm.throughput)}"
    )


# Contenders.


def load_rules(url: str, bubble: base.Bubble, port: int, size: int) -> None:
    """The bench project with an inspect rule (GET under /, caps above the bench's) and a tunnel rule."""
    session = requests.Session()
    expires = time.time_ns() + 86_400 * 10**9
    caps = {"max_request_bytes": 1 << 20, "daily_upload_bytes": 1 << 40, "max_response_bytes": 2 * size}
    common = {"wildcard": False, "ports": [port], "path_prefixes": [], "expires_at_ns": expires, **caps}
    documents = {
        "projects": {"bench": {"title": "Bench", "governance": "INFRACALC"}},
        "rules": {
            "bench": {
                "r1": {"host": INSPECTED_NAME, "mode": "inspect", "methods": ["GET"], **common},
                "r2": {"host": TUNNELLED_NAME, "mode": "tunnel", "methods": [], **common},
            }
        },
        "rule_hosts": {"bench": {INSPECTED_NAME: {"r1": True}, TUNNELLED_NAME: {"r2": True}}},
        "bubbles": {
            bubble.id: {
                "project": "bench",
                "username": "bench",
                "token_sha256": hashlib.sha256(bubble.secret.encode()).hexdigest(),
            }
        },
    }
    for name, document in documents.items():
        session.put(f"{url}/v1/data/store/infracalc/{name}", json=document, timeout=10).raise_for_status()


@dataclass(frozen=True, slots=True)
class PolicyProbe:
    """The proxy's OPA and bench bubble: to time, alone, the question the proxy asks for each inspected request."""

    url: str
    bubble: base.Bubble

    def seconds(self, *, inner: bool, samples: int = 300) -> list[float]:
        """Round trips of ``infracalc.egress.connection`` over one connection: a ``GET /ping`` inside the
        inspected CONNECT (``inner``), or the CONNECT itself."""
        question: dict[str, object] = {
            "bubble": {"id": self.bubble.id, "token_sha256": hashlib.sha256(self.bubble.secret.encode()).hexdigest()},
            "host": INSPECTED_NAME,
            "port": UPSTREAM_PORT,
            "scheme": "connect",
        }
        if inner:
            question |= {"scheme": "https", "method": "GET", "path": "/ping", "body_bytes": 0}
            question |= {"request_bytes": 90, "sent_today": {"r1": 123_456}}
        timings = []
        with requests.Session() as session:
            for _ in range(samples):
                started = time.perf_counter()
                answer = session.post(
                    f"{self.url}/v1/data/infracalc/egress/connection", json={"input": question}, timeout=10
                )
                timings.append(time.perf_counter() - started)
                if answer.json().get("result", {}).get("allow") is not True:
                    raise BenchError(f"OPA does not allow the bench request: {answer.text}")
        return timings


def infracalc_contenders(
    stack: contextlib.ExitStack, work: Path, upstream_ca: Path, size: int
) -> tuple[list[Contender], PolicyProbe]:
    """One INFRACALC proxy (its OPA, a sink), reached as a tunnel rule and as an inspect rule."""
    opa_binary = install(ToolSettings.from_env(), report=lambda _line: None).opa
    opa_port = free_port()
    opa = base.start(
        stack, opa_spec(opa_binary, host="127.0.0.1", port=opa_port, policies_dir=SOURCE_ROOT / "policies")
    )
    opa.wait_healthy()
    bubble = base.Bubble.mint()
    load_rules(f"http://127.0.0.1:{opa_port}", bubble, UPSTREAM_PORT, size)
    hosts = work / "hosts"
    hosts.write_text(f"{base.UPSTREAM_ADDRESS} {INSPECTED_NAME} {TUNNELLED_NAME}\n")
    sink_port = free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    sink_argv = [sys.executable, str(Path(base.__file__).resolve()), "--serve-sink", f"127.0.0.1:{sink_port}"]
    base.start(
        stack, ServerSpec(name="inspection-sink", argv=sink_argv, health_url=f"{sink_url}/health")
    ).wait_healthy()
    authority = create_authority(work / "egress-ca", name="INFRACALC egress CA (bench)")
    port, metrics_port = free_port(), free_port()
    env = {
        "INFRACALC_EGRESS_PROXY_HOST": "127.0.0.1",
        "INFRACALC_EGRESS_PROXY_PORT": str(port),
        "INFRACALC_EGRESS_METRICS_PORT": str(metrics_port),
        "INFRACALC_OPA_URL": f"http://127.0.0.1:{opa_port}",
        "INFRACALC_SERVICE_URL": sink_url,
        "INFRACALC_EGRESS_PROXY_SECRET": proxy_secret.mint(),
        "INFRACALC_EGRESS_TEST_MODE": base.TEST_MODE_CONSENT,
        "INFRACALC_EGRESS_TEST_ALLOW_RANGES": f"{base.UPSTREAM_ADDRESS}/32",
        "INFRACALC_EGRESS_TEST_HOSTS": str(hosts),
        "INFRACALC_EGRESS_TEST_UPSTREAM_CA": str(upstream_ca),
        "INFRACALC_EGRESS_CA_DIR": str(work / "egress-ca"),
        # One bubble connecting as fast as it can: the default rates would measure the limits.
        "INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE": "1000000",
        "INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST": "1000000",
        "INFRACALC_EGRESS_CONNECTION_RATE": "1000000",
        "INFRACALC_EGRESS_CONNECTION_BURST": "1000000",
    }
    spec = ServerSpec(
        name="infracalc-proxy-inspection",
        argv=[sys.executable, "-m", "infracalc", "egress-proxy"],
        env=env,
        health_url=f"http://127.0.0.1:{metrics_port}/metrics",
        start_timeout=30.0,
    )
    proxy = base.start(stack, spec)
    proxy.wait_healthy()
    base.wait_accepting(proxy, ("127.0.0.1", port))  # its metrics may answer before its port does
    credentials = {"Proxy-Authorization": bubble.proxy_authorization}
    contenders = [
        Contender(
            "infracalc tunnel rule",
            ("127.0.0.1", port),
            TUNNELLED_NAME,
            upstream_ca,
            f"{TUNNELLED_NAME}:{UPSTREAM_PORT}",
            credentials,
            proxy.pid,
        ),
        Contender(
            "infracalc inspect rule",
            ("127.0.0.1", port),
            INSPECTED_NAME,
            authority.cert_path,
            f"{INSPECTED_NAME}:{UPSTREAM_PORT}",
            credentials,
            proxy.pid,
            "TLS opened, each request decided by OPA, upstream TLS verified; events to a local sink",
        ),
    ]
    check_read_only(contenders[1])
    return contenders, PolicyProbe(f"http://127.0.0.1:{opa_port}", bubble)


def smokescreen(stack: contextlib.ExitStack, binary: Path, work: Path, upstream_ca: Path) -> Contender:
    """Smokescreen as ``bench/egress_proxy.py`` runs it, the client's TLS through its tunnel."""
    tunnel = base.smokescreen(stack, binary, work, (base.UPSTREAM_ADDRESS, UPSTREAM_PORT))
    return Contender(
        tunnel.name, tunnel.address, TUNNELLED_NAME, upstream_ca, tunnel.target, pid=tunnel.pid, note=tunnel.note
    )


def mitmproxy(stack: contextlib.ExitStack, binary: Path, work: Path, upstream_ca: Path) -> Contender:
    """``mitmdump``: an explicit proxy inspecting TLS, allowed the upstream only, verified against the run's CA."""
    confdir = work / "mitmproxy"
    # mitmproxy's allow_hosts only chooses what it intercepts (other hosts pass untouched), so the
    # allowlist and the read-only rule are an addon: CONNECT to the upstream only, GET and HEAD only.
    addon = work / "mitmproxy_rule.py"
    addon.write_text(
        "from mitmproxy import http\n"
        f"ALLOWED = ({base.UPSTREAM_ADDRESS!r}, {UPSTREAM_PORT})\n"
        "def http_connect(flow: http.HTTPFlow) -> None:\n"
        "    if (flow.request.host, flow.request.port) != ALLOWED:\n"
        "        flow.response = http.Response.make(403, b'no rule allows this host')\n"
        "def request(flow: http.HTTPFlow) -> None:\n"
        "    if flow.request.method not in ('GET', 'HEAD'):\n"
        "        flow.response = http.Response.make(403, b'read-only')\n"
    )
    port = free_port()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout
    argv = [
        str(binary),
        *("--listen-host", "127.0.0.1", "--listen-port", str(port), "--quiet", "-s", str(addon)),
        *("--set", f"confdir={confdir}", "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}"),
        *("--set", "flow_detail=0", "--set", "stream_large_bodies=1m", "--set", "http2=false"),
    ]
    process = base.start(stack, ServerSpec(name="mitmproxy", argv=argv, health_url=""))
    base.wait_accepting(process, ("127.0.0.1", port))
    line = next((text for text in version.splitlines() if text.startswith("Mitmproxy")), "mitmproxy")
    contender = Contender(
        f"mitmproxy ({line.removeprefix('Mitmproxy: ').strip()})",
        ("127.0.0.1", port),
        INSPECTED_NAME,
        confdir / "mitmproxy-ca-cert.pem",
        # An address, as for Smokescreen: mitmproxy resolves with the system's resolver, which knows
        # no bench name; it verifies the upstream against the name the client sent (SNI).
        f"{base.UPSTREAM_ADDRESS}:{UPSTREAM_PORT}",
        pid=process.pid,
        note="explicit mode, an addon allowing CONNECT to the upstream and GET/HEAD, bodies streamed past 1 MiB",
    )
    check_read_only(contender)
    return contender


# Entry points.


def run(arguments: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Measure every contender available and print the table and the verdict."""
    settings = ToolSettings.from_env()
    smokescreen_binary = (
        None if arguments.skip_smokescreen else install_smokescreen(settings, report=lambda _: None).smokescreen
    )
    upstream_namespace = stack.enter_context(base.bench_namespaces())
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="infracalc-bench-inspection-")))
    tls = write_test_certificates(work, [INSPECTED_NAME, TUNNELLED_NAME], [base.UPSTREAM_ADDRESS])
    upstream_ca, cert, key = tls.ca_path, tls.cert_path, tls.key_path
    upstream = (base.UPSTREAM_ADDRESS, UPSTREAM_PORT)
    upstream_argv = [
        *("ip", "netns", "exec", upstream_namespace),
        *(sys.executable, str(Path(__file__).resolve()), "--serve-upstream", f"{upstream[0]}:{upstream[1]}"),
        *(str(cert), str(key)),
    ]
    process = base.start(stack, ServerSpec(name="tls-upstream", argv=upstream_argv, health_url=""))
    base.wait_accepting(process, upstream)
    size, connections = arguments.bytes, arguments.connections
    print(
        f"Inspected HTTPS: upstream {upstream[0]}:{upstream[1]} (TLS, a namespace of its own), {connections} "
        f"sequential connections after {WARM_UP} not counted (in {ROUNDS} interleaved rounds), the fastest of "
        f"{DOWNLOADS} downloads of {size:,} bytes; {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}",
        flush=True,
    )
    contenders = [Contender("direct (TLS, no proxy)", upstream, TUNNELLED_NAME, upstream_ca)]
    missing: dict[str, str] = {}
    infracalc, probe = infracalc_contenders(stack, work, upstream_ca, size)
    contenders += infracalc
    if smokescreen_binary is not None:
        contenders.append(smokescreen(stack, smokescreen_binary, work, upstream_ca))
    else:
        missing[f"smokescreen {versions.SMOKESCREEN_VERSION}"] = "--skip-smokescreen"
    mitmdump = arguments.mitmdump or shutil.which("mitmdump")
    if mitmdump is None:
        missing["mitmproxy"] = "no mitmdump (pip install mitmproxy, then --mitmdump PATH)"
    else:
        contenders.append(mitmproxy(stack, Path(mitmdump), work, upstream_ca))
    rows = measure(contenders, connections, size)
    print_results(rows, missing)
    inner, connect = probe.seconds(inner=True), probe.seconds(inner=False)
    print(
        f"\nWhere an inspected set-up goes: OPA answers an inspected request's question in "
        f"{statistics.median(inner) * 1e3:.3f} ms at p50 ({statistics.quantiles(inner, n=100)[98] * 1e3:.3f} ms at "
        f"p99), a CONNECT's in {statistics.median(connect) * 1e3:.3f} ms, asked from here over a kept connection. "
        "In this bench both modes' CONNECT, and the inspected GET (while its rule's budget fits), are mostly "
        "answered from the proxy's 1 s decision cache; the figures say what a miss costs."
    )
    print(f"Load average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options; run the bench, or its upstream."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--connections", type=base.positive, default=1000, help="sequential connections timed (1000)")
    parser.add_argument("--bytes", type=base.positive, default=1 << 30, help="bytes of each download (1 GiB)")
    parser.add_argument("--mitmdump", help="the mitmdump to measure (default: the one on PATH)")
    parser.add_argument("--skip-smokescreen", action="store_true", help="leave Smokescreen out")
    parser.add_argument("--serve-upstream", nargs=3, metavar=("HOST:PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve_upstream:
        address, cert, key = arguments.serve_upstream
        TlsUpstream(base.split_address(address), cert, key).serve_forever()
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/egress_inspection.py must run as root: its upstream lives in a namespace of its own")
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    signal.signal(signal.SIGTERM, base.terminate)
    signal.signal(signal.SIGHUP, base.terminate)
    try:
        run(arguments, stack)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        for name in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(name, signal.SIG_IGN)
        stack.close()


if __name__ == "__main__":
    main()

"""A network-namespace lab: bubbles whose only way out is a gateway namespace, and a fake internet.

Integration tests of the egress proxy use it to prove that the proxy is the only way out of a
bubble. The lab builds, with ``ip netns`` and veth pairs (root needed; see
``netns_unavailable_reason``), namespaces only: the host's own namespace gets no address, no
route and no interface (``tests/integration/netns/test_lab.py`` compares its ``ip -j addr`` and
``ip -j route`` before, during and after a lab)::

    bubble i (iclab<pid>-<n>-b<i>)      gateway (iclab<pid>-<n>-gw)       external (iclab<pid>-<n>-ext)
    eth0 10.231.<i+1>.2/24  --veth--  b<i> 10.231.<i+1>.1/24
                                      ext  10.231.200.1/24  --veth--  eth0 10.231.200.2/24, .3/24, ...
                                      lo   127.0.0.1: relays <-> the host's 127.0.0.1 (same ports)

The gateway namespace (``Lab.root``) plays the root namespace of a real deployment: the egress
proxy under test runs there (``Lab.root.popen``). What it must reach on the host's loopback (OPA,
the service or a test's event sink) is relayed from the gateway's loopback, port for port
(``Lab.relay_to_host``); what the test process reads from it (its metrics, a raw connection "from
elsewhere than a bubble") is relayed from the host's loopback (``Lab.relay_from_host``); see
``tests.support.relay``. Such relays are plain TCP listeners on 127.0.0.1: the host's addresses
and routes stay as they were.

Addresses (all inside ``LAB_NETWORK``, 10.231.0.0/16, a private range, and all inside the lab's
namespaces, so labs do not clash: several run at once, in one process or several):

- Bubble ``i`` (0-based, at most ``MAX_BUBBLES``) gets the subnet 10.231.<i+1>.0/24: ``.1`` on the
  gateway side (``Bubble.root_address``, where the proxy listens, or it listens on 0.0.0.0) and
  ``.2`` inside the bubble. The bubble has no default route and no IPv6 address, so the gateway-side
  address is the only thing it can reach; a direct connection anywhere else fails at once with
  "Network is unreachable".
- The external namespace ("the internet") holds one address per upstream server in
  ``EXTERNAL_NETWORK`` (10.231.200.0/24; by default ``upstream-a`` on 10.231.200.2 and
  ``upstream-b`` on 10.231.200.3); the gateway side is ``EXTERNAL_ROOT_ADDRESS`` (10.231.200.1), so
  the gateway, where the proxy runs, reaches the upstreams through its connected route. The
  external namespace has no route but its own /24 either, and the gateway does not forward, so no
  packet can travel between a bubble and the internet in either direction.
- Each upstream runs ``tests.support.upstream_server`` (HTTP on 80, HTTPS on 443; ``/anything``
  echoes the request as JSON with the upstream's name, ``/bytes/<n>`` returns ``n`` bytes). The
  HTTPS certificate is signed by a CA the lab generates (``Lab.ca_path``) and names every
  ``tls_names`` entry plus every upstream address.

Name resolution is not the lab's business: the proxy reads a hosts file written with
``Lab.write_hosts_file``, and clients pass ``connect_to`` to dial an address while naming a host.

Names: every namespace starts with ``iclab<pid>-<n>`` (the creating process's pid and the lab's
number in that process); the interfaces live inside the namespaces, under short fixed names.
``Lab.close`` removes them all, and ``Lab.start`` first sweeps leftovers of labs whose process is
dead (including an older layout's ``iclab<pid>-ext``, ``iclab<pid>-b<i>`` and root-side
``iclab<pid>x``/``iclab<pid>b<i>`` interfaces). A crashed lab whose pid was reused by an unrelated
process counts as live; delete it by hand (``ip netns del``), ``find_lab_resources`` lists it.

Clients: ``Namespace.run``/``Namespace.popen`` run any program inside a namespace (``curl`` is
installed on the development machine and works there, e.g. ``curl --resolve`` with ``--cacert``),
and two clients need nothing but Python, run as ``python -m tests.support.netns`` inside the
namespace:

- ``Namespace.http_get``: one request, direct or through a proxy (``http://user:pass@host:port``;
  ``Proxy-Authorization: Basic`` is sent on the ``CONNECT`` for https URLs and on the absolute-form
  request for http URLs). It returns an ``HttpResult``: the status and body, or the error, which
  is the proxy's status and body when the proxy refuses the ``CONNECT`` (urllib would drop them).
- ``Namespace.open_tunnel``: a long-lived client that opens one ``CONNECT`` tunnel and sends a
  request over it every ``interval`` seconds, so that a test sees a proxy cut an open tunnel. It
  prints one line per event (``TunnelEvent``)::

      open                      the proxy answered 200 to CONNECT
      refused <status> <reason> the proxy answered something else (then the client exits)
      error <detail>            connecting to the proxy or the TLS handshake failed (exits)
      ok <seq> <status>         request <seq> (1, 2, ...) got a response with that status
      closed <seq> <detail>     request <seq> found the connection closed (then the client exits)
      expired <seq>             the client ran for max_seconds and stopped
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import ipaddress
import itertools
import json
import os
import queue
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from tests.support import relay

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the working directory of every program the lab starts (``tests`` importable)."""

LAB_NETWORK = ipaddress.IPv4Network("10.231.0.0/16")
"""Every address the lab assigns lies in this private range."""

EXTERNAL_NETWORK = ipaddress.IPv4Network("10.231.200.0/24")
"""The fake internet: the only network a test proxy may be allowed to dial."""

EXTERNAL_ROOT_ADDRESS = "10.231.200.1"
"""The gateway namespace's address on the external link (the source address of the proxy's dials)."""

DEFAULT_UPSTREAMS: Mapping[str, str] = {"upstream-a": "10.231.200.2", "upstream-b": "10.231.200.3"}
"""Upstream server name to its address in the external namespace."""

DEFAULT_TLS_NAMES: tuple[str, ...] = ("example.test", "*.example.test")
"""Host names the upstream certificate is valid for unless a test names its own."""

MAX_BUBBLES = 99
"""Bubble ``i`` uses 10.231.<i+1>.0/24, well below the external /24, and a two-digit interface suffix."""

NAME_PREFIX = "iclab"
"""Start of every namespace name the lab creates, followed by the owner's pid and the lab's number."""

# The older layout's names (no lab number; root-side interfaces in the host) are matched too, so
# that leftovers of a dead lab of either layout are swept.
_NAMESPACE_PATTERN = re.compile(rf"^{NAME_PREFIX}(\d+)-(?:\d+-)?(?:gw|ext|b\d+|probe)$")
_INTERFACE_PATTERN = re.compile(rf"^{NAME_PREFIX}(\d+)(?:x|b\d+)$")
_PEER_INTERFACE = "eth0"
_GATEWAY_EXTERNAL_INTERFACE = "ext"
_lab_numbers = itertools.count()
_IP_TIMEOUT = 10.0
_CHILD_STARTUP_ALLOWANCE = 10.0
_KILL_GRACE = 3.0


class LabError(Exception):
    """The lab could not be built, used or removed; the message says which part and why."""


def netns_unavailable_reason() -> str | None:
    """Why this machine cannot run the lab (not root, no ``ip``, no namespaces), or None when it can."""
    if os.geteuid() != 0:
        return "the network-namespace lab needs root (ip netns, veth)"
    if shutil.which("ip") is None:
        return "the network-namespace lab needs the `ip` command (iproute2)"
    probe = f"{NAME_PREFIX}{os.getpid()}-probe"
    commands = (
        ["ip", "netns", "add", probe],
        ["ip", "-n", probe, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
    )
    try:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False)
            if result.returncode != 0:
                return f"`{' '.join(command)}` failed: {result.stderr.strip()}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot run ip: {error}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=_IP_TIMEOUT, check=False)
    return None


# --- results of the clients ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What one ``Namespace.http_get`` saw.

    Attributes:
        status: The response status, or the proxy's status when it refused the ``CONNECT``; None
            when no response arrived.
        reason: The reason phrase that came with ``status``.
        headers: Response headers (the last of repeated headers), names as received.
        body: The response body (or the proxy's refusal body).
        error: None when an HTTP response arrived (through a proxy, for an http URL, that may be the
            proxy's own answer); otherwise what went wrong, e.g.
            ``"OSError: [Errno 101] Network is unreachable"`` or ``"proxy refused CONNECT: 407 ..."``.
        elapsed: Seconds the client spent on the network, from connect to the end of the body.
    """

    status: int | None
    reason: str
    headers: dict[str, str]
    body: bytes
    error: str | None
    elapsed: float

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A response header, found without regard to case."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class TunnelEvent:
    """One line of a tunnel client: its kind (``open``, ``ok``, ``closed``, ...), request number, detail."""

    kind: str
    seq: int | None
    detail: str
    line: str

    @classmethod
    def parse(cls, line: str) -> TunnelEvent:
        """Read a line of the tunnel protocol; a line outside it (a traceback) has kind ``output``."""
        kind, _, rest = line.partition(" ")
        if kind in {"ok", "closed", "expired"}:
            number, _, detail = rest.partition(" ")
            if number.isdigit():
                return cls(kind=kind, seq=int(number), detail=detail, line=line)
        if kind in {"open", "refused", "error"}:
            return cls(kind=kind, seq=None, detail=rest, line=line)
        return cls(kind="output", seq=None, detail=line, line=line)


class Tunnel:
    """A running tunnel client (see ``Namespace.open_tunnel``) and the events it has printed."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.events: list[TunnelEvent] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()

    def _read_lines(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_event(self, timeout: float) -> TunnelEvent | None:
        """The next event, or None when the client has exited and printed everything.

        Raises:
            TimeoutError: No line arrived within ``timeout`` seconds.
        """
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no tunnel event within {timeout} s; so far: {self._seen()}") from None
        if line is None:
            self._lines.put(None)  # keep answering "ended" to later calls
            return None
        event = TunnelEvent.parse(line)
        self.events.append(event)
        return event

    def wait_for(self, kind: str, timeout: float) -> TunnelEvent:
        """Skip events until one of ``kind`` arrives and return it.

        Raises:
            TimeoutError: None arrived within ``timeout`` seconds.
            LabError: The client exited without printing one.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} tunnel event within {timeout} s; so far: {self._seen()}")
            event = self.next_event(remaining)
            if event is None:
                raise LabError(f"the tunnel client exited before a {kind!r} event; it printed: {self._seen()}")
            if event.kind == kind:
                return event

    def close(self) -> None:
        """Stop the client and collect what it printed (idempotent)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()  # the client exits when its stdin closes
        try:
            self.process.wait(timeout=_KILL_GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=_KILL_GRACE)
        self._reader.join(timeout=_KILL_GRACE)
        _stop_process(self.process)

    def _seen(self) -> str:
        return "; ".join(event.line for event in self.events) or "nothing"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# --- namespaces ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Namespace:
    """A network namespace to run programs in and open sockets in; ``name`` None is the root namespace."""

    name: str | None

    @classmethod
    def root(cls) -> Namespace:
        """The root namespace (programs run directly)."""
        return cls(None)

    def __str__(self) -> str:
        return self.name or "root"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs inside this namespace."""
        if self.name is None:
            return list(argv)
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, argv: Sequence[str], timeout: float = 10.0, *, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a program inside the namespace, from the repository root, capturing its text output.

        Raises:
            subprocess.TimeoutExpired: It ran longer than ``timeout`` seconds (it is killed).
            subprocess.CalledProcessError: It failed and ``check`` is set.
        """
        return subprocess.run(
            self.command(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=check,
            cwd=REPO_ROOT,
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a program inside the namespace (``subprocess.Popen`` arguments; cwd defaults to the repo)."""
        kwargs.setdefault("cwd", REPO_ROOT)
        return subprocess.Popen(self.command(argv), **kwargs)

    def create_connection(self, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
        """A TCP connection to ``address`` made from inside the namespace (usable from any thread)."""
        return relay.create_connection(self.name, address, timeout)

    def create_server(self, address: tuple[str, int]) -> socket.socket:
        """A TCP socket listening on ``address`` inside the namespace (usable from any thread)."""
        return relay.create_server(self.name, address)

    def run_python(self, code: str, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code args...`` (this interpreter) inside the namespace."""
        return self.run([sys.executable, "-c", code, *args], timeout=timeout)

    def pids(self) -> list[int]:
        """Processes now inside the namespace (empty for the root namespace, which holds everything else)."""
        if self.name is None:
            return []
        return _namespace_pids(self.name)

    def http_get(
        self,
        url: str,
        proxy: str | None = None,
        cafile: Path | str | None = None,
        timeout: float = 5.0,
        *,
        connect_to: str | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> HttpResult:
        """Send one request from inside the namespace and report what came back or what failed.

        Args:
            url: ``http://`` or ``https://`` URL; its host is the Host header and the TLS server name.
            proxy: ``http://[user:pass@]host:port`` of a proxy: https URLs go through ``CONNECT``,
                http URLs as an absolute-form request; ``Proxy-Authorization: Basic`` when credentials.
            cafile: PEM file of the CAs to trust (e.g. ``Lab.ca_path``); system CAs when None.
            timeout: Socket timeout, for connecting and for each read.
            connect_to: Address to dial instead of resolving the URL's host (direct requests only).
            method: Request method.
            headers: Extra request headers.
            body: Request body (sent with a Content-Length when not empty).

        Raises:
            LabError: The client itself failed (not a network outcome: those are in the result).
        """
        spec = {
            "url": url,
            "proxy": proxy,
            "cafile": None if cafile is None else str(cafile),
            "timeout": timeout,
            "connect_to": connect_to,
            "method": method,
            "headers": dict(headers or {}),
            "body": base64.b64encode(body).decode(),
        }
        argv = [sys.executable, "-m", "tests.support.netns", "http-get", json.dumps(spec)]
        completed = self.run(argv, timeout=_CHILD_STARTUP_ALLOWANCE + 3 * timeout)
        try:
            document = json.loads(completed.stdout)
        except json.JSONDecodeError:
            raise LabError(
                f"http-get client in {self} failed (exit {completed.returncode}): {completed.stderr.strip()}"
            ) from None
        return HttpResult(
            status=document["status"],
            reason=document["reason"],
            headers=document["headers"],
            body=base64.b64decode(document["body"]),
            error=document["error"],
            elapsed=document["elapsed"],
        )

    def open_tunnel(
        self,
        proxy: str,
        target: str,
        *,
        tls: bool = False,
        cafile: Path | str | None = None,
        server_name: str | None = None,
        path: str = "/anything/tunnel",
        interval: float = 0.1,
        timeout: float = 3.0,
        max_seconds: float = 120.0,
    ) -> Tunnel:
        """Start a client inside the namespace that keeps one ``CONNECT`` tunnel busy (protocol above).

        Args:
            proxy: ``http://[user:pass@]host:port`` of the proxy.
            target: ``host:port`` to ``CONNECT`` to; the host is also the Host header.
            tls: Speak HTTPS inside the tunnel (verifying against ``cafile``).
            cafile: PEM file of the CAs to trust for ``tls``.
            server_name: TLS server name and Host header instead of the target's host.
            path: Request path of every request.
            interval: Seconds between the end of one response and the next request.
            timeout: Socket timeout for each step.
            max_seconds: The client stops (``expired``) after this long, so none outlives a test run.
        """
        spec = {
            "proxy": proxy,
            "target": target,
            "tls": tls,
            "cafile": None if cafile is None else str(cafile),
            "server_name": server_name,
            "path": path,
            "interval": interval,
            "timeout": timeout,
            "max_seconds": max_seconds,
        }
        process = self.popen(
            [sys.executable, "-m", "tests.support.netns", "tunnel", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        return Tunnel(process)


# --- the lab ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bubble:
    """A bubble namespace: it reaches ``root_address`` (in the lab's gateway namespace) and nothing else."""

    index: int
    namespace: Namespace
    address: str
    root_address: str
    network: ipaddress.IPv4Network
    root_interface: str


@dataclass(frozen=True, slots=True)
class Upstream:
    """An upstream test server in the external namespace (HTTP on 80, HTTPS on 443)."""

    name: str
    address: str

    def url(self, path: str = "/anything", *, scheme: str = "http", host: str | None = None) -> str:
        """A URL of this server, naming ``host`` (to be mapped to ``address``) or the address itself."""
        return f"{scheme}://{host or self.address}{path}"


@dataclass(frozen=True, slots=True)
class ExternalNetwork:
    """The external namespace (the fake internet) and the upstream servers it holds."""

    namespace: Namespace
    root_address: str
    network: ipaddress.IPv4Network
    root_interface: str
    upstreams: Mapping[str, Upstream]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of the lab's TLS: the CA clients trust, and the upstreams' certificate and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path


@dataclass(frozen=True, slots=True)
class LabResources:
    """The namespaces, and host interfaces of the older layout, that carry one owner pid in their names."""

    owner_pid: int
    namespaces: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()


@dataclass(eq=False)
class Lab:
    """A running lab: the gateway, bubbles, the external namespace with its upstream servers, TLS files.

    Build one with ``Lab.start``; ``close`` (or leaving the ``with`` block) removes everything.
    ``root`` is the gateway namespace, where the proxy under test runs (see the module docstring).
    """

    owner_pid: int
    prefix: str
    """Start of every namespace name of this lab: ``iclab<pid>-<n>``."""
    root: Namespace
    bubbles: tuple[Bubble, ...]
    external: ExternalNetwork
    tls: TlsFiles
    workdir: Path
    log_path: Path
    """The upstream servers' request log (the test conftest shows its tail when a test fails)."""
    _servers: list[subprocess.Popen[bytes]] = field(repr=False)
    _owns_workdir: bool = field(repr=False)
    _relays: dict[tuple[bool, int], relay.Relay] = field(default_factory=dict, repr=False)
    _relay_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def start(
        cls,
        *,
        bubbles: int = 1,
        upstreams: Mapping[str, str] = DEFAULT_UPSTREAMS,
        tls_names: Sequence[str] = DEFAULT_TLS_NAMES,
        workdir: Path | None = None,
        startup_timeout: float = 10.0,
    ) -> Lab:
        """Sweep stale labs, then build the namespaces, links and addresses and start the upstreams.

        Other labs, of this process or another, may be running: each lab's addresses live in its
        own namespaces.

        Args:
            bubbles: How many bubble namespaces (1 to ``MAX_BUBBLES``).
            upstreams: Upstream server name to its address in ``EXTERNAL_NETWORK`` (not ``.1``).
            tls_names: Host names the upstream certificate is valid for (wildcards allowed).
            workdir: Where the TLS files and the log go (kept); a temporary directory, removed on
                close, when None.
            startup_timeout: Seconds to wait for the upstream servers to listen.

        Raises:
            LabError: The arguments are out of range, or a step failed (nothing of the lab is left).
        """
        _check_layout(bubbles, upstreams)
        sweep_stale_labs()
        owner_pid = os.getpid()
        prefix = f"{NAME_PREFIX}{owner_pid}-{next(_lab_numbers)}"
        owns_workdir = workdir is None
        directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-")) if workdir is None else workdir
        servers: list[subprocess.Popen[bytes]] = []
        try:
            addresses = [*upstreams.values(), EXTERNAL_ROOT_ADDRESS]
            tls = write_test_certificates(directory, tls_names, addresses)
            gateway = _create_gateway(prefix)
            external = _create_external(prefix, gateway, upstreams)
            bubble_list = tuple(_create_bubble(prefix, gateway, index) for index in range(bubbles))
            log_path = directory / "upstream.log"
            servers.append(_start_upstreams(external, tls, log_path, startup_timeout))
        except BaseException:
            for server in servers:
                _stop_process(server)
            _remove(_lab_resources(owner_pid, prefix))
            if owns_workdir:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(
            owner_pid=owner_pid,
            prefix=prefix,
            root=Namespace(gateway),
            bubbles=bubble_list,
            external=external,
            tls=tls,
            workdir=directory,
            log_path=log_path,
            _servers=servers,
            _owns_workdir=owns_workdir,
        )

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that signed the upstreams' certificate: what clients verify against."""
        return self.tls.ca_path

    @property
    def upstreams(self) -> Mapping[str, Upstream]:
        """The upstream servers by name."""
        return self.external.upstreams

    @property
    def server_pids(self) -> list[int]:
        """Pids of the upstream server processes."""
        return [server.pid for server in self._servers]

    def resources(self) -> LabResources:
        """The namespaces of this lab (and host interfaces: none) as the kernel lists them now."""
        return _lab_resources(self.owner_pid, self.prefix)

    def relay_to_host(self, port: int) -> relay.Relay:
        """Make the host's ``127.0.0.1:port`` reachable on the gateway's ``127.0.0.1:port`` (until ``close``).

        For what the proxy in the gateway must reach on the host (OPA, the service, a sink). Asking
        again for the same port returns the same relay. A connection the host refuses is reset.
        """
        return self._relay(to_host=True, port=port)

    def relay_from_host(self, port: int) -> relay.Relay:
        """Make the gateway's ``127.0.0.1:port`` reachable on the host's ``127.0.0.1:port``.

        For what the test process reads from the proxy (its metrics, raw connections from
        loopback). ``Relay.close`` ends it; ``close`` ends those still open.
        """
        return self._relay(to_host=False, port=port)

    def relayed_ports(self) -> set[int]:
        """The ports on which relays listen now, on the host's loopback or the gateway's."""
        with self._relay_lock:
            return {port for (_, port), opened in self._relays.items() if not opened.closed}

    def _relay(self, *, to_host: bool, port: int) -> relay.Relay:
        if self._closed:
            raise LabError("the lab is closed")
        with self._relay_lock:
            found = self._relays.get((to_host, port))
            if found is None or found.closed:
                source, target = (self.root.name, relay.HOST) if to_host else (relay.HOST, self.root.name)
                found = self._relays[(to_host, port)] = relay.Relay(source, target, port)
            return found

    @staticmethod
    def write_hosts_file(path: Path, entries: Mapping[str, str]) -> Path:
        """Write ``entries`` (host name to address) to ``path`` in /etc/hosts format; see ``write_hosts_file``."""
        return write_hosts_file(path, entries)

    def close(self) -> None:
        """Stop the servers, kill what runs in the namespaces, remove namespaces and links (idempotent).

        Raises:
            LabError: Something of the lab is still there afterwards.
        """
        if self._closed:
            return
        self._closed = True
        with self._relay_lock:
            for opened in self._relays.values():
                opened.close()
            self._relays.clear()
        for server in self._servers:
            _stop_process(server)
        _remove(self.resources())
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        remaining = self.resources()
        if remaining.namespaces or remaining.interfaces:
            raise LabError(f"the lab was not fully removed: {_describe([remaining])}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def bubble_network(index: int) -> ipaddress.IPv4Network:
    """The subnet of bubble ``index``: 10.231.<index+1>.0/24 (root side ``.1``, bubble ``.2``)."""
    if not 0 <= index < MAX_BUBBLES:
        raise ValueError(f"bubble index {index} outside 0..{MAX_BUBBLES - 1}")
    return ipaddress.IPv4Network(f"10.231.{index + 1}.0/24")


def write_hosts_file(path: Path, entries: Mapping[str, str]) -> Path:
    """Write one ``address<TAB>name`` line per entry to ``path`` (/etc/hosts format) and return it.

    Raises:
        ValueError: An address is not an IP address, or a name is empty or has white space.
    """
    lines = ["# written by tests.support.netns for a lab test\n"]
    for name, address in entries.items():
        if not name or any(character.isspace() for character in name):
            raise ValueError(f"not a host name: {name!r}")
        lines.append(f"{ipaddress.ip_address(address)}\t{name}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_test_certificates(directory: Path, host_names: Sequence[str], addresses: Sequence[str]) -> TlsFiles:
    """Generate a CA and a server certificate for ``host_names`` and ``addresses`` (SANs) into ``directory``."""
    # Imported here: the clients run as this module inside namespaces and have no use for it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "INFRACALC netns lab test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in host_names]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    common_name = host_names[0] if host_names else "netns lab upstream"
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_path=directory / "ca.pem", cert_path=directory / "upstream-cert.pem", key_path=directory / "upstream-key.pem"
    )
    files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key_path.chmod(0o600)
    return files


def find_lab_resources() -> dict[int, LabResources]:
    """Every lab namespace (and older-layout host interface) on the host, grouped by the pid in its name."""
    namespaces: dict[int, list[str]] = {}
    interfaces: dict[int, list[str]] = {}
    for entry in _ip_json(["netns", "list"]):
        if match := _NAMESPACE_PATTERN.match(entry["name"]):
            namespaces.setdefault(int(match.group(1)), []).append(entry["name"])
    for entry in _ip_json(["link", "show"]):
        if match := _INTERFACE_PATTERN.match(entry["ifname"]):
            interfaces.setdefault(int(match.group(1)), []).append(entry["ifname"])
    return {
        pid: LabResources(pid, tuple(sorted(namespaces.get(pid, ()))), tuple(sorted(interfaces.get(pid, ()))))
        for pid in sorted(namespaces.keys() | interfaces.keys())
    }


def sweep_stale_labs() -> list[int]:
    """Remove the labs whose owner process is dead (processes inside, interfaces, namespaces); their pids."""
    swept = []
    for pid, found in find_lab_resources().items():
        if not _pid_alive(pid):
            _remove(found)
            for leftover in Path(tempfile.gettempdir()).glob(f"{NAME_PREFIX}{pid}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            swept.append(pid)
    return swept


# --- building and removing -------------------------------------------------------------------


def _check_layout(bubbles: int, upstreams: Mapping[str, str]) -> None:
    if not 1 <= bubbles <= MAX_BUBBLES:
        raise LabError(f"bubbles must be 1..{MAX_BUBBLES}, not {bubbles}")
    if not upstreams:
        raise LabError("the lab needs at least one upstream")
    for name, address in upstreams.items():
        try:
            parsed = ipaddress.IPv4Address(address)
        except ValueError as error:
            raise LabError(f"upstream {name}: {error}") from None
        if parsed not in EXTERNAL_NETWORK or address == EXTERNAL_ROOT_ADDRESS or parsed.packed[-1] in {0, 255}:
            raise LabError(f"upstream {name}: {address} must be a host of {EXTERNAL_NETWORK} other than .1")
        if not name or "=" in name or any(character.isspace() for character in name):
            raise LabError(f"upstream name {name!r} must be non-empty, without '=' or white space")
    if len(set(upstreams.values())) != len(upstreams):
        raise LabError("two upstreams share an address")


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *(("-n", namespace) if namespace else ()), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False)
    if result.returncode != 0:
        raise LabError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


def _ip_json(args: Sequence[str]) -> list[dict[str, Any]]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False)
    if result.returncode != 0:
        raise LabError(f"`ip -j {' '.join(args)}` failed: {result.stderr.strip()}")
    listed: list[dict[str, Any]] = json.loads(result.stdout) if result.stdout.strip() else []
    return listed


def _lab_resources(owner_pid: int, prefix: str) -> LabResources:
    """What the kernel lists now of the lab whose namespaces start with ``prefix``."""
    found = find_lab_resources().get(owner_pid, LabResources(owner_pid))
    return LabResources(owner_pid, tuple(name for name in found.namespaces if name.startswith(f"{prefix}-")))


def _create_gateway(prefix: str) -> str:
    """Create the gateway namespace (its loopback up, no forwarding, nothing else yet); its name."""
    namespace = f"{prefix}-gw"
    _ip("netns", "add", namespace)
    _ip("link", "set", "lo", "up", namespace=namespace)
    # A new namespace may inherit forwarding from the host's (net.core.devconf_inherit_init_net):
    # the gateway must never route a bubble's packet to the internet.
    _ip("netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    return namespace


def _create_link(
    gateway: str, namespace: str, gateway_interface: str, gateway_address: str, prefix_length: int
) -> None:
    """Create ``namespace`` joined to the gateway by a veth pair: ``gateway_interface`` there, ``eth0`` here.

    The pair is created inside the gateway, so the host's namespace never holds either end. No
    IPv6 address is generated on either end (``addrgenmode none``), so IPv4 routes are the whole story.
    """
    _ip("netns", "add", namespace)
    _ip("link", "set", "lo", "up", namespace=namespace)
    _ip(
        "link", "add", gateway_interface, "type", "veth", "peer", "name", _PEER_INTERFACE, "netns", namespace,
        namespace=gateway,
    )  # fmt: skip
    _ip("link", "set", gateway_interface, "addrgenmode", "none", namespace=gateway)
    _ip("link", "set", _PEER_INTERFACE, "addrgenmode", "none", namespace=namespace)
    _ip("addr", "add", f"{gateway_address}/{prefix_length}", "dev", gateway_interface, namespace=gateway)
    _ip("link", "set", gateway_interface, "up", namespace=gateway)


def _create_external(prefix: str, gateway: str, upstreams: Mapping[str, str]) -> ExternalNetwork:
    namespace, root_interface = f"{prefix}-ext", _GATEWAY_EXTERNAL_INTERFACE
    _create_link(gateway, namespace, root_interface, EXTERNAL_ROOT_ADDRESS, EXTERNAL_NETWORK.prefixlen)
    for address in upstreams.values():
        _ip("addr", "add", f"{address}/{EXTERNAL_NETWORK.prefixlen}", "dev", _PEER_INTERFACE, namespace=namespace)
    _ip("link", "set", _PEER_INTERFACE, "up", namespace=namespace)
    return ExternalNetwork(
        namespace=Namespace(namespace),
        root_address=EXTERNAL_ROOT_ADDRESS,
        network=EXTERNAL_NETWORK,
        root_interface=root_interface,
        upstreams={name: Upstream(name, address) for name, address in upstreams.items()},
    )


def _create_bubble(prefix: str, gateway: str, index: int) -> Bubble:
    network = bubble_network(index)
    namespace, root_interface = f"{prefix}-b{index}", f"b{index}"
    root_address, bubble_address = str(network.network_address + 1), str(network.network_address + 2)
    _create_link(gateway, namespace, root_interface, root_address, network.prefixlen)
    _ip("addr", "add", f"{bubble_address}/{network.prefixlen}", "dev", _PEER_INTERFACE, namespace=namespace)
    _ip("link", "set", _PEER_INTERFACE, "up", namespace=namespace)
    return Bubble(
        index=index,
        namespace=Namespace(namespace),
        address=bubble_address,
        root_address=root_address,
        network=network,
        root_interface=root_interface,
    )


def _start_upstreams(
    external: ExternalNetwork, tls: TlsFiles, log_path: Path, timeout: float
) -> subprocess.Popen[bytes]:
    """Start the upstream servers in the external namespace and wait for their ``ready`` line."""
    argv = [sys.executable, "-m", "tests.support.upstream_server", "--exit-on-stdin-eof"]
    for upstream in external.upstreams.values():
        argv += ["--server", f"{upstream.name}={upstream.address}"]
    argv += ["--cert", str(tls.cert_path), "--key", str(tls.key_path)]
    with log_path.open("ab") as log:
        process: subprocess.Popen[bytes] = external.namespace.popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = bool(selector.select(timeout)) and process.stdout.readline() == b"ready\n"
    if not ready:
        _stop_process(process)
        log_tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise LabError(f"the upstream servers did not start within {timeout} s; log:\n{log_tail}")
    return process


def _stop_process(process: subprocess.Popen[Any]) -> None:
    """Close its pipes and stop it: SIGTERM, then SIGKILL after a grace period (idempotent)."""
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_KILL_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_KILL_GRACE)


def _namespace_pids(namespace: str) -> list[int]:
    result = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False
    )
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _kill_namespace_processes(namespace: str) -> None:
    """SIGKILL every process inside ``namespace`` and wait (bounded) until none is left."""
    deadline = time.monotonic() + _KILL_GRACE
    while pids := _namespace_pids(namespace):
        if time.monotonic() > deadline:
            raise LabError(f"processes {pids} in {namespace} survived SIGKILL")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _remove(found: LabResources) -> None:
    """Kill the processes inside, delete older-layout host interfaces, then the namespaces (veths go with them)."""
    for namespace in found.namespaces:
        _kill_namespace_processes(namespace)
    current = find_lab_resources().get(found.owner_pid, LabResources(found.owner_pid))
    for interface in found.interfaces:
        if interface in current.interfaces:
            _ip("link", "del", interface)
    for namespace in found.namespaces:
        if namespace in current.namespaces:
            _ip("netns", "del", namespace)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(labs: Iterable[LabResources]) -> str:
    return "; ".join(
        f"pid {found.owner_pid}: namespaces {', '.join(found.namespaces) or '-'},"
        f" interfaces {', '.join(found.interfaces) or '-'}"
        for found in labs
    )


# --- the clients, run inside namespaces as `python -m tests.support.netns ...` ----------------


def _basic_credentials(proxy: str) -> tuple[tuple[str, int], str | None]:
    parts = urlsplit(proxy)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"proxy must be http://[user:pass@]host:port, not {proxy!r}")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return (parts.hostname, parts.port or 80), authorization


def _connect_tunnel(
    proxy: str, host: str, port: int, timeout: float
) -> tuple[socket.socket, http.client.HTTPResponse | None]:
    """Connect to ``proxy`` and ask for a tunnel to ``host:port``; the refusal response when not 200."""
    proxy_address, authorization = _basic_credentials(proxy)
    sock = socket.create_connection(proxy_address, timeout=timeout)
    authority = f"{host}:{port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if authorization:
        head += f"Proxy-Authorization: {authorization}\r\n"
    sock.sendall((head + "\r\n").encode())
    # The proxy sends nothing after its 200 until the client speaks, so the response's buffered
    # reader cannot swallow tunnel bytes.
    response = http.client.HTTPResponse(sock, method="CONNECT")
    response.begin()
    if response.status == 200:
        return sock, None
    return sock, response


def _request(
    sock: socket.socket, method: str, target: str, host: str, headers: Mapping[str, str], body: bytes, close: bool
) -> http.client.HTTPResponse:
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
    if close:
        head += "Connection: close\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock.sendall((head + "\r\n").encode() + body)
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def _parse_url(url: str) -> tuple[bool, str, int, str, str]:
    """Whether ``url`` is https, its host, port, Host header and origin-form target."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or parts.hostname is None:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return secure, parts.hostname, port, host_header, target


def _fetch(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One request as ``Namespace.http_get`` describes it; never raises for a network outcome."""
    started = time.monotonic()
    result: dict[str, Any] = {"status": None, "reason": "", "headers": {}, "body": "", "error": None}
    sock: socket.socket | None = None
    try:
        secure, host, port, host_header, target = _parse_url(spec["url"])
        headers: dict[str, str] = dict(spec["headers"])
        body = base64.b64decode(spec["body"])
        timeout = float(spec["timeout"])
        if spec["proxy"] and secure:
            sock, refusal = _connect_tunnel(spec["proxy"], host, port, timeout)
            if refusal is not None:
                result.update(_response_fields(refusal))
                result["error"] = f"proxy refused CONNECT: {refusal.status} {refusal.reason}"
                return result
        elif spec["proxy"]:
            proxy_address, authorization = _basic_credentials(spec["proxy"])
            sock = socket.create_connection(proxy_address, timeout=timeout)
            target = spec["url"]
            if authorization:
                headers["Proxy-Authorization"] = authorization
        else:
            sock = socket.create_connection((spec["connect_to"] or host, port), timeout=timeout)
        if secure:
            sock = _tls_context(spec["cafile"]).wrap_socket(sock, server_hostname=host)
        response = _request(sock, spec["method"], target, host_header, headers, body, close=True)
        result.update(_response_fields(response))
    except (OSError, http.client.HTTPException, ValueError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        if sock is not None:
            sock.close()
        result["elapsed"] = time.monotonic() - started
    return result


def _response_fields(response: http.client.HTTPResponse) -> dict[str, Any]:
    body = response.read()
    return {
        "status": response.status,
        "reason": response.reason,
        "headers": dict(response.getheaders()),
        "body": base64.b64encode(body).decode(),
    }


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _exit_when_stdin_closes() -> None:
    """Exit the process once stdin reaches EOF: the test that started this client is gone."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts interpreter exit.
        while os.read(0, 4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _run_tunnel(spec: Mapping[str, Any]) -> int:
    """The tunnel client: ``open``, then ``ok``/``closed`` per request (protocol in the module docstring)."""
    _exit_when_stdin_closes()
    host, _, port_text = str(spec["target"]).rpartition(":")
    name = spec["server_name"] or host
    timeout, interval = float(spec["timeout"]), float(spec["interval"])
    try:
        sock, refusal = _connect_tunnel(spec["proxy"], host, int(port_text), timeout)
        if refusal is not None:
            _say(f"refused {refusal.status} {refusal.reason}")
            return 1
        if spec["tls"]:
            sock = _tls_context(spec["cafile"]).wrap_socket(sock, server_hostname=name)
    except (OSError, http.client.HTTPException, ValueError) as error:
        _say(f"error {type(error).__name__}: {error}")
        return 1
    _say("open")
    deadline = time.monotonic() + float(spec["max_seconds"])
    seq = 0
    with sock:
        while time.monotonic() < deadline:
            seq += 1
            try:
                response = _request(sock, "GET", spec["path"], name, {}, b"", close=False)
                response.read()
            except (OSError, http.client.HTTPException) as error:
                _say(f"closed {seq} {type(error).__name__}: {error}")
                return 0
            _say(f"ok {seq} {response.status}")
            if response.will_close:
                _say(f"closed {seq} the server closed the connection after this response")
                return 0
            time.sleep(interval)
    _say(f"expired {seq}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the clients: ``http-get SPEC_JSON`` prints a result as JSON; ``tunnel SPEC_JSON``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2 or arguments[0] not in {"http-get", "tunnel"}:
        sys.stderr.write("usage: python -m tests.support.netns {http-get,tunnel} SPEC_JSON\n")
        return 2
    spec = json.loads(arguments[1])
    if arguments[0] == "http-get":
        _say(json.dumps(_fetch(spec)))
        return 0
    return _run_tunnel(spec)


if __name__ == "__main__":
    sys.exit(main())

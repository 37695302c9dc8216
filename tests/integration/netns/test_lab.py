"""The network-namespace lab: its gateway reaches the fake internet, bubbles reach only the gateway.

It also proves the lab's clients (``http_get``, ``open_tunnel``) against a minimal CONNECT proxy
written here (it runs in the gateway, as the egress proxy does), so that the egress proxy's tests
can trust what those clients report; that the relays between the host's loopback and the
gateway's carry connections both ways; that the host's own namespace gets no address and no
route; that two labs run at once; and that the lab leaves nothing behind, its own or a dead
process's.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from infracalc.stack.ports import free_port
from tests.support.netns import (
    EXTERNAL_NETWORK,
    EXTERNAL_ROOT_ADDRESS,
    LAB_NETWORK,
    Bubble,
    Lab,
    Namespace,
    find_lab_resources,
    netns_unavailable_reason,
    write_hosts_file,
)
from tests.support.upstream_server import pattern_bytes

pytestmark = pytest.mark.integration

QUICK = 3.0
"""No probe of an unreachable address may take longer than this."""


@pytest.fixture(scope="module")
def netns_available() -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def host_network() -> tuple[list[Any], list[Any]]:
    """The host namespace's addresses and routes (every table), as ``ip -j`` lists them."""
    addresses = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout
    routes = subprocess.run(
        ["ip", "-j", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(addresses), json.loads(routes)


def kernel_names() -> tuple[set[str], set[str]]:
    """Every namespace, and every interface of the host's namespace, as the kernel lists them."""
    namespaces = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return (
        {entry["name"] for entry in json.loads(namespaces or "[]")},
        {entry["ifname"] for entry in json.loads(links)},
    )


def wait_until_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def test_hosts_file_maps_names_to_addresses(tmp_path: Path) -> None:
    path = write_hosts_file(tmp_path / "hosts", {"a.example.test": "10.231.200.2", "b.example.test": "10.231.200.3"})

    entries = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    assert entries == [["10.231.200.2", "a.example.test"], ["10.231.200.3", "b.example.test"]]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Lab.write_hosts_file(tmp_path / "bad", {"a.example.test": "not-an-address"})


# --- a minimal CONNECT proxy, only to exercise the lab's clients ----------------------------------


class FakeProxy:
    """Basic-auth CONNECT proxy for names of a hosts file; echoes absolute-form requests as JSON."""

    def __init__(self, namespace: Namespace, address: str, hosts_file: Path, user: str, password: str) -> None:
        self.namespace = namespace
        self.expected_authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.hosts = {name: address for address, name in (line.split() for line in self._lines(hosts_file))}
        self.listener = namespace.create_server((address, 0))
        self.address, self.port = address, self.listener.getsockname()[1]
        self.connects: list[str] = []
        self.open_tunnels: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _lines(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]

    def url(self, credentials: str | None) -> str:
        return f"http://{credentials + '@' if credentials else ''}{self.address}:{self.port}"

    def cut_tunnels(self) -> None:
        with self._lock:
            for client in self.open_tunnels:
                client.shutdown(socket.SHUT_RDWR)
            self.open_tunnels.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut_tunnels()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(QUICK)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line, *header_lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
            if headers.get("proxy-authorization") != self.expected_authorization:
                self._reply(client, "407 Proxy Authentication Required", b"credentials needed", realm=True)
            elif method != "CONNECT":
                echo = {"target": target, "proxy_authorization": headers["proxy-authorization"]}
                self._reply(client, "200 OK", json.dumps(echo).encode())
            elif target.rpartition(":")[0] not in self.hosts:
                self._reply(client, "403 Forbidden", f"not allowed: {target}".encode())
            else:
                self._tunnel(client, target)

    @staticmethod
    def _reply(client: socket.socket, status: str, body: bytes, *, realm: bool = False) -> None:
        extra = 'Proxy-Authenticate: Basic realm="lab"\r\n' if realm else ""
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        client.sendall(head.encode() + body)

    def _tunnel(self, client: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        with self.namespace.create_connection((self.hosts[host], int(port)), timeout=QUICK) as upstream:
            with self._lock:
                self.connects.append(target)
                self.open_tunnels.append(client)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            client.settimeout(None)
            with selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, client)
                try:
                    self._relay(selector)
                finally:
                    with self._lock:
                        if client in self.open_tunnels:
                            self.open_tunnels.remove(client)

    @staticmethod
    def _relay(selector: selectors.BaseSelector) -> None:
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)


# --- one lab shared by the topology tests ---------------------------------------------------------


@pytest.fixture(scope="class")
def lab(netns_available: None) -> Iterator[Lab]:
    """One lab with two bubbles for the topology tests."""
    with Lab.start(bubbles=2) as lab:
        yield lab


class TestTopology:
    @pytest.fixture
    def proxy(self, lab: Lab, tmp_path: Path) -> Iterator[FakeProxy]:
        hosts = lab.write_hosts_file(tmp_path / "hosts", {"allowed.example.test": lab.upstreams["upstream-b"].address})
        proxy = FakeProxy(lab.root, lab.bubbles[0].root_address, hosts, "bubble", "s3cret")
        yield proxy
        proxy.close()

    def test_addresses_follow_the_documented_scheme(self, lab: Lab) -> None:
        assert [str(bubble.network) for bubble in lab.bubbles] == ["10.231.1.0/24", "10.231.2.0/24"]
        assert [(bubble.root_address, bubble.address) for bubble in lab.bubbles] == [
            ("10.231.1.1", "10.231.1.2"),
            ("10.231.2.1", "10.231.2.2"),
        ]
        assert {name: upstream.address for name, upstream in lab.upstreams.items()} == {
            "upstream-a": "10.231.200.2",
            "upstream-b": "10.231.200.3",
        }
        assert EXTERNAL_NETWORK.subnet_of(LAB_NETWORK)
        assert lab.root.name == f"{lab.prefix}-gw"
        assert lab.resources().interfaces == ()

    def test_only_the_gateway_routes_to_bubbles_and_internet(self, lab: Lab) -> None:
        routes = lab.root.run(["ip", "-j", "-4", "route", "show", "table", "all", "type", "unicast"], check=True)

        destinations = sorted(route["dst"] for route in json.loads(routes.stdout))
        assert destinations == sorted([*(str(bubble.network) for bubble in lab.bubbles), str(EXTERNAL_NETWORK)])
        assert lab.root.run(["sysctl", "-n", "net.ipv4.ip_forward"], check=True).stdout.strip() == "0"

    @pytest.mark.parametrize("name", ["upstream-a", "upstream-b"])
    def test_gateway_reaches_each_upstream_over_http(self, lab: Lab, name: str) -> None:
        upstream = lab.upstreams[name]

        result = lab.root.http_get("http://www.example.test/anything/probe?x=1", connect_to=upstream.address)

        assert result.error is None
        assert result.status == 200
        echo = result.json()
        assert (echo["server"], echo["scheme"], echo["host"]) == (name, "http", "www.example.test")
        assert (echo["method"], echo["path"]) == ("GET", "/anything/probe?x=1")

    def test_gateway_reaches_upstreams_over_https_verifying_the_lab_ca(self, lab: Lab) -> None:
        upstream = lab.upstreams["upstream-b"]

        result = lab.root.http_get(
            "https://api.example.test/anything/tls", cafile=lab.ca_path, connect_to=upstream.address
        )
        curl = lab.root.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--max-time",
                "3",
                "--cacert",
                str(lab.ca_path),
                "--resolve",
                f"example.test:443:{upstream.address}",
                "https://example.test/anything/curl",
            ]
        )

        assert (result.error, result.status) == (None, 200)
        assert result.json()["server"] == "upstream-b"
        assert result.json()["scheme"] == "https"
        assert result.json()["host"] == "api.example.test"
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["path"] == "/anything/curl"

    def test_tls_is_verified_against_the_name_and_the_ca(self, lab: Lab) -> None:
        address = lab.upstreams["upstream-a"].address

        wrong_name = lab.root.http_get("https://other.test/anything", cafile=lab.ca_path, connect_to=address)
        system_cas = lab.root.http_get("https://api.example.test/anything", connect_to=address)

        assert wrong_name.status is None
        assert wrong_name.error is not None
        assert "Hostname mismatch" in wrong_name.error
        assert system_cas.status is None
        assert system_cas.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in system_cas.error

    def test_bytes_route_returns_exactly_n_bytes(self, lab: Lab) -> None:
        result = lab.root.http_get(lab.upstreams["upstream-a"].url("/bytes/300000"))

        assert result.status == 200
        assert result.body == pattern_bytes(300000)

    @pytest.mark.parametrize("index", [0, 1])
    def test_bubble_cannot_dial_anything_but_its_root_side_address(self, lab: Lab, index: int) -> None:
        bubble = lab.bubbles[index]
        other = lab.bubbles[1 - index]
        targets = [
            *(f"{scheme}://{upstream.address}/" for upstream in lab.upstreams.values() for scheme in ("http", "https")),
            f"http://{EXTERNAL_ROOT_ADDRESS}/",
            f"http://{other.root_address}/",
            f"http://{other.address}/",
            "http://198.51.100.7/",
        ]  # fmt: skip

        results = {target: bubble.namespace.http_get(target, timeout=QUICK) for target in targets}

        for target, result in results.items():
            assert result.status is None, target
            assert result.error is not None
            assert "Network is unreachable" in result.error, (target, result.error)
            assert result.elapsed < QUICK, (target, result.elapsed)

    def test_bubbles_and_internet_route_only_their_own_link(self, lab: Lab) -> None:
        namespaces: list[tuple[Namespace, str]] = [(b.namespace, str(b.network)) for b in lab.bubbles]
        namespaces.append((lab.external.namespace, str(EXTERNAL_NETWORK)))

        for namespace, network in namespaces:
            routes = namespace.run(["ip", "-j", "-4", "route", "show", "table", "all", "type", "unicast"], check=True)
            ipv6 = namespace.run(["ip", "-j", "-6", "addr", "show", "dev", "eth0"], check=True)
            assert [route["dst"] for route in json.loads(routes.stdout)] == [network], namespace
            assert all(not entry.get("addr_info") for entry in json.loads(ipv6.stdout)), namespace

    def test_internet_cannot_reach_bubbles(self, lab: Lab) -> None:
        for bubble in lab.bubbles:
            result = lab.external.namespace.http_get(f"http://{bubble.address}/", timeout=QUICK)
            assert result.error is not None
            assert "Network is unreachable" in result.error

    @pytest.mark.parametrize("index", [0, 1])
    def test_bubble_reaches_a_server_on_its_root_side_address(self, lab: Lab, index: int) -> None:
        bubble: Bubble = lab.bubbles[index]
        peers: list[str] = []
        with lab.root.create_server((bubble.root_address, 0)) as listener:
            listener.settimeout(QUICK)

            def answer() -> None:
                connection, peer = listener.accept()
                with connection:
                    peers.append(peer[0])
                    connection.sendall(b"pong:" + connection.recv(64))

            server = threading.Thread(target=answer, daemon=True)
            server.start()
            client = bubble.namespace.run_python(
                "import socket, sys\n"
                "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:\n"
                "    s.sendall(b'ping'); print(s.recv(64).decode())",
                bubble.root_address,
                str(listener.getsockname()[1]),
            )
            server.join(QUICK)

        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "pong:ping"
        assert peers == [bubble.address]

    def test_relays_carry_connections_between_the_host_loopback_and_the_gateway(self, lab: Lab) -> None:
        exchange = (
            "import socket, sys\n"
            "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3) as s:\n"
            "    s.sendall(b'ping'); s.shutdown(socket.SHUT_WR); print(s.recv(64).decode())"
        )

        def serve_once(listener: socket.socket, peers: list[str]) -> threading.Thread:
            def answer() -> None:
                connection, peer = listener.accept()
                with connection:
                    peers.append(peer[0])
                    received = b""
                    while chunk := connection.recv(64):  # until the client's half-close comes through
                        received += chunk
                    connection.sendall(b"pong:" + received)

            thread = threading.Thread(target=answer, daemon=True)
            thread.start()
            return thread

        host_peers: list[str] = []
        gateway_peers: list[str] = []
        with socket.create_server(("127.0.0.1", 0)) as on_host, lab.root.create_server(("127.0.0.1", 0)) as inside:
            host_port, gateway_port = on_host.getsockname()[1], inside.getsockname()[1]
            host_server, gateway_server = serve_once(on_host, host_peers), serve_once(inside, gateway_peers)
            lab.relay_to_host(host_port)
            from_gateway = lab.root.run_python(exchange, str(host_port))
            inward = lab.relay_from_host(gateway_port)
            from_host = Namespace.root().run_python(exchange, str(gateway_port))
            host_server.join(QUICK)
            gateway_server.join(QUICK)
        inward.close()
        started = time.monotonic()
        after_close = Namespace.root().run_python(exchange, str(gateway_port))
        refused = lab.root.run_python(exchange, str(free_port()))  # nothing relayed, nothing listening
        lab.relay_to_host(port := free_port())
        reset = lab.root.run_python(exchange, str(port))  # relayed, but nothing listens on the host

        assert (from_gateway.returncode, from_gateway.stdout.strip()) == (0, "pong:ping"), from_gateway.stderr
        assert (from_host.returncode, from_host.stdout.strip()) == (0, "pong:ping"), from_host.stderr
        assert host_peers == gateway_peers == ["127.0.0.1"]
        assert "Connection refused" in after_close.stderr
        assert "Connection refused" in refused.stderr
        assert reset.returncode != 0
        assert any(failure in reset.stderr for failure in ("ConnectionResetError", "BrokenPipeError")), reset.stderr
        assert time.monotonic() - started < 3 * QUICK

    def test_http_get_through_a_proxy_reports_refusals_and_tunnels(self, lab: Lab, proxy: FakeProxy) -> None:
        bubble = lab.bubbles[0].namespace
        url = "https://allowed.example.test/anything/via-proxy"

        no_credentials = bubble.http_get(url, proxy=proxy.url(None), cafile=lab.ca_path)
        wrong_host = bubble.http_get("https://denied.example.test/", proxy=proxy.url("bubble:s3cret"))
        tunnelled = bubble.http_get(url, proxy=proxy.url("bubble:s3cret"), cafile=lab.ca_path)
        plain = bubble.http_get("http://allowed.example.test/x", proxy=proxy.url("bubble:s3cret"))

        assert (no_credentials.status, no_credentials.body) == (407, b"credentials needed")
        assert no_credentials.error == "proxy refused CONNECT: 407 Proxy Authentication Required"
        assert no_credentials.header("proxy-authenticate") == 'Basic realm="lab"'
        assert (wrong_host.status, wrong_host.body) == (403, b"not allowed: denied.example.test:443")
        assert wrong_host.error is not None
        assert (tunnelled.error, tunnelled.status) == (None, 200)
        assert tunnelled.json()["server"] == "upstream-b"
        assert tunnelled.json()["host"] == "allowed.example.test"
        assert plain.json() == {
            "target": "http://allowed.example.test/x",
            "proxy_authorization": proxy.expected_authorization,
        }

    def test_tunnel_client_sees_the_proxy_cut_its_open_tunnel(self, lab: Lab, proxy: FakeProxy) -> None:
        bubble = lab.bubbles[0].namespace

        with bubble.open_tunnel(
            proxy.url("bubble:s3cret"), "allowed.example.test:443", tls=True, cafile=lab.ca_path
        ) as tunnel:
            assert tunnel.wait_for("open", timeout=QUICK).kind == "open"
            answered = [tunnel.wait_for("ok", timeout=QUICK) for _ in range(3)]
            proxy.cut_tunnels()
            closed = tunnel.wait_for("closed", timeout=QUICK)
            ended = tunnel.next_event(timeout=QUICK)

        assert [(event.seq, event.detail) for event in answered] == [(1, "200"), (2, "200"), (3, "200")]
        assert proxy.connects == ["allowed.example.test:443"]
        assert closed.seq is not None
        assert closed.seq > 3
        assert ended is None

    def test_tunnel_client_reports_a_refused_connect(self, lab: Lab, proxy: FakeProxy) -> None:
        with lab.bubbles[0].namespace.open_tunnel(proxy.url("bubble:wrong"), "allowed.example.test:80") as tunnel:
            refused = tunnel.next_event(timeout=QUICK)
            ended = tunnel.next_event(timeout=QUICK)

        assert refused is not None
        assert (refused.kind, refused.detail) == ("refused", "407 Proxy Authentication Required")
        assert ended is None
        assert proxy.connects == []


# --- creating and removing labs -------------------------------------------------------------------


STALE_LAB_OWNER = """
import sys
from tests.support.netns import Lab
lab = Lab.start(bubbles=1)
sleeper = lab.bubbles[0].namespace.popen(["sleep", "60"])
print(sleeper.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.usefixtures("netns_available")
class TestLifecycle:
    def test_close_removes_every_namespace_and_server(self) -> None:
        lab = Lab.start(bubbles=2)
        created = lab.resources()
        servers, workdir = lab.server_pids, lab.workdir
        namespaces_before, links_before = kernel_names()

        lab.close()
        lab.close()

        namespaces_after, links_after = kernel_names()
        assert sorted(created.namespaces) == sorted(f"{lab.prefix}-{part}" for part in ("b0", "b1", "ext", "gw"))
        assert created.interfaces == ()
        assert set(created.namespaces) <= namespaces_before
        assert not {name for name in links_before if name.startswith(lab.prefix.partition("-")[0])}
        assert not set(created.namespaces) & namespaces_after
        assert links_after <= links_before
        assert all(wait_until_gone(pid, 0) for pid in servers)
        assert not workdir.exists()

    def test_the_host_namespace_gets_no_address_and_no_route(self) -> None:
        before = host_network()

        with Lab.start(bubbles=2) as lab:
            during = host_network()
            relayed = lab.relay_from_host(free_port())
            with_relay = host_network()
            reached = lab.root.http_get(lab.upstreams["upstream-a"].url())
        after = host_network()

        assert reached.status == 200
        assert relayed.closed
        assert during == before
        assert with_relay == before
        assert after == before

    def test_two_labs_run_at_once_with_the_same_addresses(self) -> None:
        with Lab.start() as first, Lab.start() as second:
            assert first.prefix != second.prefix
            assert first.upstreams["upstream-a"].address == second.upstreams["upstream-a"].address
            assert not set(first.resources().namespaces) & set(second.resources().namespaces)
            answers = [lab.root.http_get(lab.upstreams["upstream-a"].url()) for lab in (first, second)]
            first.close()
            still = second.root.http_get(second.upstreams["upstream-b"].url())

        assert [answer.status for answer in answers] == [200, 200]
        assert (still.status, still.json()["server"]) == (200, "upstream-b")

    def test_a_stale_lab_of_a_dead_process_is_swept_by_the_next_lab(self) -> None:
        owner = subprocess.Popen(
            [sys.executable, "-c", STALE_LAB_OWNER],
            cwd=Path(__file__).resolve().parents[3],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert owner.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(owner.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=15), "the stale lab's owner did not start its lab"
            sleeper = int(owner.stdout.readline())
            live = find_lab_resources()[owner.pid]
            with Lab.start() as beside:  # a live process's lab is left alone, and does not stand in the way
                assert find_lab_resources()[owner.pid] == live
                assert beside.root.http_get(beside.upstreams["upstream-a"].url()).status == 200
        finally:
            os.kill(owner.pid, signal.SIGKILL)
            owner.wait(timeout=QUICK)
            assert owner.stdin is not None
            owner.stdin.close()
        stale = find_lab_resources()[owner.pid]
        stale_workdirs = list(Path(tempfile.gettempdir()).glob(f"iclab{owner.pid}-*"))
        assert (len(stale.namespaces), len(stale.interfaces), len(stale_workdirs)) == (3, 0, 1)
        assert not wait_until_gone(sleeper, 0)

        with Lab.start() as lab:
            assert owner.pid not in find_lab_resources()
            assert wait_until_gone(sleeper, QUICK)
            assert lab.root.http_get(lab.upstreams["upstream-a"].url()).status == 200
        namespaces, links = kernel_names()
        assert not set(stale.namespaces) & namespaces
        assert not set(stale.interfaces) & links
        assert not any(path.exists() for path in stale_workdirs)

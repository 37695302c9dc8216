"""The source address of a hub request: the socket peer, and X-Forwarded-For only from trusted proxies.

The walk (:func:`client_address`) is a pure function, tested on its own; :func:`peer_address` and
:func:`source_address` are tested on real requests to a tornado server started the way JupyterHub
starts its own (``xheaders=True``), where ``request.remote_ip`` can be seen to follow whatever
``X-Real-Ip`` / ``X-Forwarded-For`` a client sends while the peer address does not.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from infracalc.hub.source_address import (
    DEFAULT_TRUSTED_PROXIES,
    IPNetwork,
    client_address,
    parse_address,
    parse_networks,
    peer_address,
    source_address,
)

LOOPBACK = parse_networks(DEFAULT_TRUSTED_PROXIES)
# A TLS reverse proxy in front of configurable-http-proxy, as the hub's container sees it.
WITH_EDGE = parse_networks([*DEFAULT_TRUSTED_PROXIES, "172.18.0.1/32", "fd00:18::/64"])


def _ip(text: str) -> IPv4Address | IPv6Address:
    return ip_address(text)


# -- parse_address -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("  203.0.113.9\t", "203.0.113.9"),
        ("203.0.113.9:51234", "203.0.113.9"),
        ("2001:db8::7", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # Node's view of an IPv4 client on a dual-stack socket
        ("[::ffff:127.0.0.1]:8000", "127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::1", "::1"),
    ],
)
def test_parse_address_reads_addresses(text: str, expected: str) -> None:
    assert parse_address(text) == _ip(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "unknown",
        "_hidden",  # RFC 7239 obfuscated identifier
        "example.org",
        "203.0.113",
        "203.0.113.256",
        "010.0.0.1",  # leading zeros: ambiguous (octal in some parsers), refused
        "203.0.113.9:",
        "203.0.113.9:port",
        "203.0.113.9:123456",
        "2001:db8::7:443:x",
        "[2001:db8::7",
        "[2001:db8::7]443",
        "[203.0.113.9]x",
        "203.0.113.0/24",
        "1.2.3.4 5.6.7.8",
        "for=203.0.113.9",
        "\u0661.2.3.4",  # a non-ASCII digit
        "\uff12\uff10\uff13.0.113.9",  # fullwidth digits
    ],
)
def test_parse_address_refuses_what_is_not_an_address(text: str) -> None:
    assert parse_address(text) is None


def test_parse_networks() -> None:
    assert parse_networks(["10.0.0.0/8", " 2001:db8::/32 ", "192.0.2.7"]) == (
        ip_network("10.0.0.0/8"),
        ip_network("2001:db8::/32"),
        ip_network("192.0.2.7/32"),
    )
    for bad in (["10.0.0.1/8"], ["not-a-network"], ["10.0.0.0/33"], [""]):
        with pytest.raises(ValueError, match=r"."):
            parse_networks(bad)


# -- client_address: the walk --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    peer: str | None
    forwarded_for: Sequence[str]
    expected: str | None
    trusted: tuple[IPNetwork, ...] = field(default=LOOPBACK)


CASES = {
    # A browser straight to the hub: its own address, whatever it claims.
    "direct, no header": Case("198.51.100.7", [], "198.51.100.7"),
    "direct, spoofed header ignored": Case("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
    "direct, spoofed chain ignored": Case("198.51.100.7", ["203.0.113.9, 127.0.0.1"], "198.51.100.7"),
    # Through configurable-http-proxy (loopback), which appends the address it saw.
    "through the hub's proxy": Case("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
    "through the hub's proxy, no space": Case("127.0.0.1", ["203.0.113.9,198.51.100.7"], "198.51.100.7"),
    "client's own entry left of the proxy's is not believed": Case(
        "127.0.0.1", ["203.0.113.9, 198.51.100.7"], "198.51.100.7"
    ),
    "client claims to be a trusted proxy, the walk stops at it anyway": Case(
        "127.0.0.1", ["127.0.0.1, 198.51.100.7"], "198.51.100.7"
    ),
    "IPv6 loopback peer": Case("::1", ["2001:db8:1::5"], "2001:db8:1::5"),
    "IPv4-mapped loopback peer": Case("::ffff:127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
    "IPv4-mapped entry": Case("127.0.0.1", ["::ffff:198.51.100.7"], "198.51.100.7"),
    "entry with a port": Case("127.0.0.1", ["198.51.100.7:50122"], "198.51.100.7"),
    "bracketed IPv6 entry with a port": Case("127.0.0.1", ["[2001:db8:1::5]:50122"], "2001:db8:1::5"),
    # Several trusted hops: reverse proxy (172.18.0.1 as the container sees it), then the hub's proxy.
    "two trusted hops": Case("127.0.0.1", ["198.51.100.7, 172.18.0.1"], "198.51.100.7", WITH_EDGE),
    "two trusted hops, spoof left of them": Case(
        "127.0.0.1", ["203.0.113.9, 198.51.100.7, 172.18.0.1"], "198.51.100.7", WITH_EDGE
    ),
    "edge proxy not trusted: it is the client": Case("127.0.0.1", ["198.51.100.7, 172.18.0.1"], "172.18.0.1"),
    "two trusted IPv6 hops": Case("::1", ["2001:db8:1::5, fd00:18::2"], "2001:db8:1::5", WITH_EDGE),
    "header split over several lines": Case(
        "127.0.0.1", ["203.0.113.9", "198.51.100.7, 172.18.0.1"], "198.51.100.7", WITH_EDGE
    ),
    "every hop trusted: the leftmost": Case("127.0.0.1", ["172.18.0.1"], "172.18.0.1", WITH_EDGE),
    "trusted peer, no header: the peer itself": Case("127.0.0.1", [], "127.0.0.1"),
    "trusted peer, blank header: the peer itself": Case("127.0.0.1", ["  "], "127.0.0.1"),
    "nothing trusted: the peer": Case("127.0.0.1", ["198.51.100.7"], "127.0.0.1", ()),
    "IPv6 network does not trust IPv4 addresses": Case(
        "10.0.0.1", ["198.51.100.7"], "10.0.0.1", parse_networks(["::/0"])
    ),
    # Garbage where the walk needs an address: no answer, the caller refuses.
    "garbage from the trusted proxy": Case("127.0.0.1", ["unknown"], None),
    "garbage between trusted hops": Case("127.0.0.1", ["198.51.100.7, garbage, 172.18.0.1"], None, WITH_EDGE),
    "empty entry where an address is needed": Case("127.0.0.1", ["198.51.100.7,"], None),
    "empty entry inside the trusted part": Case("127.0.0.1", ["198.51.100.7, , 172.18.0.1"], None, WITH_EDGE),
    # Garbage left of the client's address was written by the client: never read.
    "garbage left of the client is ignored": Case("127.0.0.1", ["<script>, 198.51.100.7"], "198.51.100.7"),
    "garbage from an untrusted peer is ignored": Case("198.51.100.7", ["garbage"], "198.51.100.7"),
    "no peer": Case(None, ["198.51.100.7"], None),
    "peer that is not an address": Case("0.0.0.0.0", [], None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_client_address(case: Case) -> None:
    expected = _ip(case.expected) if case.expected is not None else None
    assert client_address(case.peer, case.forwarded_for, case.trusted) == expected


def test_a_long_chain_of_trusted_hops_is_walked_to_its_end() -> None:
    hops = ", ".join(["198.51.100.7", *(["127.0.0.1"] * 500)])
    assert client_address("127.0.0.1", [hops], LOOPBACK) == _ip("198.51.100.7")


# -- the peer of real tornado requests -----------------------------------------------------------


@dataclass
class Seen:
    remote_ip: str | None = None
    peer: str | None = None
    source: IPv4Address | IPv6Address | None = None

    def clear(self) -> None:
        self.remote_ip = self.peer = self.source = None


class _Probe(RequestHandler):
    def initialize(self, seen: Seen, trusted: tuple[IPNetwork, ...]) -> None:
        self.seen = seen
        self.trusted = trusted

    def get(self) -> None:
        request: HTTPServerRequest = self.request
        self.seen.remote_ip = request.remote_ip
        self.seen.peer = peer_address(request)
        self.seen.source = source_address(request, self.trusted)
        self.write("ok")


@dataclass
class ProbeServer:
    base_url: str
    seen: Seen
    trusted: list[IPNetwork]

    async def get(self, headers: dict[str, str] | None = None) -> Seen:
        self.seen.clear()
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(self.base_url, headers=headers or {})
        finally:
            client.close()
        assert response.code == 200
        return self.seen


async def _serve(host: str, family: socket.AddressFamily) -> AsyncIterator[ProbeServer]:
    seen, trusted = Seen(), list(LOOPBACK)
    app = Application([(r"/", _Probe, {"seen": seen, "trusted": trusted})])
    server = HTTPServer(app, xheaders=True)  # as JupyterHub starts its own
    sockets = bind_sockets(0, host, family=family)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    try:
        yield ProbeServer(f"http://{url_host}:{port}/", seen, trusted)
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.fixture
async def probe() -> AsyncIterator[ProbeServer]:
    async for server in _serve("127.0.0.1", socket.AF_INET):
        yield server


@pytest.fixture
async def probe6() -> AsyncIterator[ProbeServer]:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    async for server in _serve("::1", socket.AF_INET6):
        yield server


async def test_peer_is_the_socket_address_whatever_the_headers_say(probe: ProbeServer) -> None:
    seen = await probe.get({"X-Real-Ip": "203.0.113.9", "X-Forwarded-For": "203.0.113.10"})
    # tornado believed the client's headers...
    assert seen.remote_ip == "203.0.113.9"
    # ...the peer address did not.
    assert seen.peer == "127.0.0.1"


async def test_source_of_an_untrusted_peer_ignores_both_headers(probe: ProbeServer) -> None:
    probe.trusted.clear()
    seen = await probe.get({"X-Real-Ip": "203.0.113.9", "X-Forwarded-For": "203.0.113.10"})
    assert seen.source == _ip("127.0.0.1")


async def test_source_through_a_trusted_proxy_is_its_last_entry(probe: ProbeServer) -> None:
    seen = await probe.get({"X-Forwarded-For": "203.0.113.10, 198.51.100.7", "X-Real-Ip": "203.0.113.9"})
    assert seen.source == _ip("198.51.100.7")


async def test_x_real_ip_alone_is_never_believed(probe: ProbeServer) -> None:
    seen = await probe.get({"X-Real-Ip": "203.0.113.9"})
    assert seen.remote_ip == "203.0.113.9"
    assert seen.source == _ip("127.0.0.1")


async def test_headers_of_one_request_do_not_leak_to_the_next(probe: ProbeServer) -> None:
    await probe.get({"X-Forwarded-For": "198.51.100.7"})
    seen = await probe.get()
    assert seen.source == _ip("127.0.0.1")


async def test_ipv6_peer(probe6: ProbeServer) -> None:
    seen = await probe6.get({"X-Forwarded-For": "2001:db8:1::5"})
    assert seen.peer == "::1"
    assert seen.source == _ip("2001:db8:1::5")
    probe6.trusted.clear()
    assert (await probe6.get({"X-Forwarded-For": "2001:db8:1::5"})).source == _ip("::1")

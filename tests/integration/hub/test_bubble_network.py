"""A local bubble's network, as the local spawner builds it: only the forwarded ports of its gateway answer.

Needs root and iproute2 (skipped, saying so, without them; CI runs as root).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from infracalc.hub import netns
from infracalc.hub.forwarders import Forwarders

pytestmark = pytest.mark.integration

#: A pool no other test uses, so that this test never meets the local stack's bubbles.
POOL = "10.234.0.0/24"

PROBE = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(b"ping")
        print("answer", s.recv(100).decode())
except OSError as e:
    print("error", e)
"""


@pytest.fixture
def link() -> Iterator[netns.BubbleLink]:
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs network namespaces: {reason}")
    made = netns.free_link(ipaddress.IPv4Network(POOL))
    netns.create(made)
    yield made
    netns.remove(made)
    assert made.namespace not in netns.existing_namespaces()


@pytest.fixture
async def echo_server() -> AsyncIterator[int]:
    """A TCP server on the host's loopback answering ``pong:<what it got>``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(b"pong:" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def probe(link: netns.BubbleLink, host: str, port: int) -> str:
    process = await asyncio.create_subprocess_exec(
        *link.command([sys.executable, "-c", PROBE, host, str(port)]), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 10)
    return out.decode().strip()


async def test_a_bubble_reaches_the_forwarded_ports_of_its_gateway_and_nothing_else(
    link: netns.BubbleLink, echo_server: int
) -> None:
    forwarders = Forwarders(link.gateway, (echo_server,))
    await forwarders.start()
    try:
        assert await probe(link, link.gateway, echo_server) == "answer pong:ping"
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            closed_port = other.getsockname()[1]
            refused = await probe(link, link.gateway, closed_port)
        assert refused.startswith("error")
        assert "refused" in refused.lower()
        unreachable = await probe(link, "10.231.200.2", 443)
        assert unreachable.startswith("error")
        assert "unreachable" in unreachable.lower()
        loopback = await probe(link, "127.0.0.1", echo_server)
        assert loopback.startswith("error")  # the bubble's loopback is its own: the host's servers are not there
    finally:
        await forwarders.close()
    after = await probe(link, link.gateway, echo_server)
    assert after.startswith("error")

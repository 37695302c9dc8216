"""The relay on real sockets: bytes both ways, half-close, the body limit, idleness and cuts."""

from __future__ import annotations

import asyncio
import socket

from infracalc.proxy.relay import Relay


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback (``splice`` wants real sockets), the first non-blocking."""
    listener = socket.create_server(("127.0.0.1", 0))
    outside = socket.create_connection(listener.getsockname())
    inside, _ = listener.accept()
    listener.close()
    inside.setblocking(False)
    return inside, outside


async def recv_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while chunk := await loop.sock_recv(sock, 1 << 20):
        received += chunk
    return bytes(received)


async def test_bytes_go_both_ways_and_end_when_both_sides_close() -> None:
    client_side, bubble = pair()
    server_side, upstream = pair()
    bubble.setblocking(False)
    upstream.setblocking(False)
    relay = Relay(client_side, server_side, idle_timeout=5)
    running = asyncio.create_task(relay.run(b"first:"))
    loop = asyncio.get_running_loop()
    payload = bytes(range(256)) * 8192  # 2 MiB
    await loop.sock_sendall(bubble, payload)
    bubble.shutdown(socket.SHUT_WR)
    assert await recv_all(upstream) == b"first:" + payload
    await loop.sock_sendall(upstream, b"answer")
    upstream.shutdown(socket.SHUT_WR)
    assert await recv_all(bubble) == b"answer"
    assert await asyncio.wait_for(running, 5) == "closed"
    assert (relay.counters.upstream, relay.counters.downstream) == (len(payload) + 6, 6)
    bubble.close()
    upstream.close()


async def test_a_body_limit_stops_reading_the_client_after_the_body() -> None:
    client_side, bubble = pair()
    server_side, upstream = pair()
    upstream.setblocking(False)
    relay = Relay(client_side, server_side, idle_timeout=5, upstream_limit=4)
    running = asyncio.create_task(relay.run(b"HEAD"))
    bubble.sendall(b"bodyGET /smuggled HTTP/1.1\r\n\r\n")
    loop = asyncio.get_running_loop()
    received = b""
    while len(received) < 8:
        received += await loop.sock_recv(upstream, 100)
    await loop.sock_sendall(upstream, b"reply")
    upstream.shutdown(socket.SHUT_WR)
    assert await asyncio.wait_for(running, 5) == "closed"
    assert received == b"HEADbody"
    assert await loop.sock_recv(upstream, 100) == b""  # nothing more was forwarded
    bubble.close()
    upstream.close()


async def test_an_idle_relay_ends_and_closes_both_sides() -> None:
    client_side, bubble = pair()
    server_side, upstream = pair()
    relay = Relay(client_side, server_side, idle_timeout=0.2)
    assert await asyncio.wait_for(relay.run(), 5) == "idle"
    assert bubble.recv(10) == b""
    assert upstream.recv(10) == b""


async def test_a_cut_ends_an_open_relay_at_once_with_its_reason() -> None:
    client_side, bubble = pair()
    server_side, upstream = pair()
    relay = Relay(client_side, server_side, idle_timeout=60)
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.05)
    relay.cut("rule r1 was revoked")
    assert await asyncio.wait_for(running, 2) == "rule r1 was revoked"
    assert bubble.recv(10) == b""
    assert upstream.recv(10) == b""


async def test_a_reset_on_one_side_ends_the_relay() -> None:
    client_side, bubble = pair()
    server_side, upstream = pair()
    relay = Relay(client_side, server_side, idle_timeout=60)
    running = asyncio.create_task(relay.run())
    bubble.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    bubble.close()  # RST
    assert await asyncio.wait_for(running, 2) in {"reset", "closed"}
    upstream.close()

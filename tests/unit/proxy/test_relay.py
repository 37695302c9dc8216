"""The relay on real sockets: bytes both ways, half-close, the body limit, idleness, cuts and reused pipes.

Every test runs on both event loops (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import pytest

from infracalc.proxy import relay as relay_module
from infracalc.proxy.answers import AnswerFraming
from infracalc.proxy.relay import Relay


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback (``splice`` wants real sockets), the first non-blocking."""
    listener = socket.create_server(("127.0.0.1", 0))
    outside = socket.create_connection(listener.getsockname())
    inside, _ = listener.accept()
    listener.close()
    inside.setblocking(False)
    return inside, outside


def tunnel(**options: Any) -> tuple[Relay, socket.socket, socket.socket]:
    """A relay between two fresh pairs (``options`` for :class:`Relay`), the bubble's end and the upstream's end."""
    client_side, bubble = pair()
    server_side, upstream = pair()
    return Relay(client_side, server_side, **options), bubble, upstream


async def recv_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while chunk := await loop.sock_recv(sock, 1 << 20):
        received += chunk
    return bytes(received)


async def test_bytes_go_both_ways_and_end_when_both_sides_close() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=5)
    bubble.setblocking(False)
    upstream.setblocking(False)
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
    relay, bubble, upstream = tunnel(idle_timeout=5, upstream_limit=4)
    upstream.setblocking(False)
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


async def get_forwarded(
    parts: tuple[Relay, socket.socket, socket.socket],
) -> tuple[Relay, socket.socket, socket.socket, asyncio.Task[str]]:
    """Run the relay of ``parts`` with a body-less GET until the upstream got it; the parts and the relay's task."""
    relay, bubble, upstream = parts
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run(b"GET / HTTP/1.1\r\n\r\n"))
    received = b""
    while not received.endswith(b"\r\n\r\n"):
        received += await asyncio.get_running_loop().sock_recv(upstream, 100)
    return relay, bubble, upstream, running


async def test_a_request_without_body_ends_with_the_answer_though_the_bubble_keeps_its_socket_open() -> None:
    _, bubble, upstream, running = await get_forwarded(tunnel(idle_timeout=30, upstream_limit=0))
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(upstream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    upstream.shutdown(socket.SHUT_WR)
    # The bubble neither sends nor closes: the relay still ends when the answer is through.
    assert await asyncio.wait_for(running, 2) == "closed"
    bubble.settimeout(2)
    assert bubble.recv(100).endswith(b"ok")
    bubble.close()
    upstream.close()


async def test_an_exchange_ends_when_its_answer_is_complete_though_neither_side_closes() -> None:
    relay, bubble, upstream, running = await get_forwarded(
        tunnel(idle_timeout=30, upstream_limit=0, answer=AnswerFraming("GET"))
    )
    loop = asyncio.get_running_loop()
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    await loop.sock_sendall(upstream, answer[:20])
    await asyncio.sleep(0.05)
    assert not running.done()
    # The rest, and a second answer nobody asked for; the upstream keeps its side open.
    await loop.sock_sendall(upstream, answer[20:] + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert await asyncio.wait_for(running, 2) == "closed"
    bubble.settimeout(2)
    assert await asyncio.to_thread(recv_until_closed, bubble) == answer
    assert await loop.sock_recv(upstream, 100) == b""  # the proxy's side is closed too
    assert relay.counters.downstream == len(answer)
    bubble.close()
    upstream.close()


def recv_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


async def test_an_exchange_ends_when_the_bubble_closes_while_the_upstream_is_silent() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=30, upstream_limit=4, answer=AnswerFraming("POST"))
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n"))
    bubble.sendall(b"bodyGET /second HTTP/1.1\r\n\r\n")
    await asyncio.sleep(0.05)
    assert not running.done()
    bubble.close()
    assert await asyncio.wait_for(running, 2) == "closed"
    loop = asyncio.get_running_loop()
    forwarded = b""
    while chunk := await loop.sock_recv(upstream, 1000):
        forwarded += chunk
    assert forwarded.endswith(b"\r\n\r\nbody")  # the second request was read and dropped
    upstream.close()


async def test_an_idle_relay_ends_and_closes_both_sides() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=0.2)
    assert await asyncio.wait_for(relay.run(), 5) == "idle"
    assert bubble.recv(10) == b""
    assert upstream.recv(10) == b""


async def test_a_cut_ends_an_open_relay_at_once_with_its_reason() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=60)
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.05)
    relay.cut("rule r1 was revoked")
    assert await asyncio.wait_for(running, 2) == "rule r1 was revoked"
    assert bubble.recv(10) == b""
    assert upstream.recv(10) == b""


async def test_a_reset_on_one_side_ends_the_relay() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=60)
    running = asyncio.create_task(relay.run())
    bubble.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    bubble.close()  # RST
    assert await asyncio.wait_for(running, 2) in {"reset", "closed"}
    upstream.close()


@pytest.mark.parametrize("splice", [True, False], ids=["splice", "buffer"])
async def test_counters_are_exact_on_ten_megabytes_each_way_at_once(
    splice: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "_HAS_SPLICE", splice)  # without splice: the other systems' path
    relay, bubble, upstream = tunnel(idle_timeout=5)
    bubble.setblocking(False)
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    up_payload = bytes(range(256)) * 40_000  # 10,240,000 bytes
    down_payload = bytes(reversed(range(256))) * 40_001

    async def send(sock: socket.socket, payload: bytes) -> None:
        await loop.sock_sendall(sock, payload)
        sock.shutdown(socket.SHUT_WR)

    _, _, at_upstream, at_bubble = await asyncio.gather(
        send(bubble, up_payload), send(upstream, down_payload), recv_all(upstream), recv_all(bubble)
    )
    assert at_upstream == up_payload
    assert at_bubble == down_payload
    assert await asyncio.wait_for(running, 5) == "closed"
    assert (relay.counters.upstream, relay.counters.downstream) == (len(up_payload), len(down_payload))
    bubble.close()
    upstream.close()


async def test_a_cut_before_the_relay_starts_ends_it_at_once() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=60)
    relay.cut("project moved to CASD")
    assert await asyncio.wait_for(relay.run(b"never sent"), 2) == "project moved to CASD"
    assert relay.counters.upstream == len(b"never sent")  # sent before the cut was looked at
    assert bubble.recv(10) == b""
    assert upstream.recv(100) == b"never sent"
    assert upstream.recv(10) == b""


async def test_a_cut_ends_a_relay_blocked_on_a_peer_that_does_not_read() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=60)
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run())
    # The bubble never reads: the downstream pump fills the bubble's socket and waits to write,
    # until nothing moves any more and the upstream cannot send either.
    sent, chunk, still = 0, bytes(1 << 20), 0
    while still < 3:
        try:
            sent += upstream.send(chunk)
            still = 0
        except BlockingIOError:
            before = relay.counters.downstream
            await asyncio.sleep(0.05)
            still = still + 1 if relay.counters.downstream == before else 0
    assert not running.done()
    relay.cut("rule r1 was revoked")
    assert await asyncio.wait_for(running, 2) == "rule r1 was revoked"
    assert 0 < relay.counters.downstream <= sent
    bubble.settimeout(2)
    received = 0
    while data := bubble.recv(1 << 20):
        received += len(data)
    assert received == relay.counters.downstream  # what was counted reached the bubble, then the end
    bubble.close()
    upstream.close()


async def test_a_relay_that_keeps_moving_bytes_is_not_idle() -> None:
    relay, bubble, upstream = tunnel(idle_timeout=1.0)
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    for _ in range(8):  # 2 s in all, never 1 s without a byte (a wide margin on a busy machine)
        bubble.sendall(b"tick")
        assert await asyncio.wait_for(loop.sock_recv(upstream, 10), 1) == b"tick"
        await asyncio.sleep(0.25)
    assert not running.done()
    assert await asyncio.wait_for(running, 2) == "idle"
    assert relay.counters.upstream == 32
    bubble.close()
    upstream.close()


async def test_bytes_left_in_a_cut_tunnel_never_reach_the_next_one() -> None:
    # A tunnel cut while its bubble does not read leaves bytes in its pipe; pipes are reused.
    relay, bubble, upstream = tunnel(idle_timeout=60)
    upstream.setblocking(False)
    running = asyncio.create_task(relay.run())
    secret = b"S" * (1 << 20)
    for _ in range(16):
        with contextlib.suppress(BlockingIOError):
            upstream.send(secret)
        await asyncio.sleep(0.01)
    relay.cut("revoked")
    assert await asyncio.wait_for(running, 2) == "revoked"
    bubble.close()
    upstream.close()
    assert all(relay_module._unread(read_end) == 0 for read_end, _ in relay_module._SPARE_PIPES)
    for _ in range(3):
        relay, bubble, upstream = tunnel(idle_timeout=5)
        running = asyncio.create_task(relay.run())
        upstream.sendall(b"fresh")
        upstream.shutdown(socket.SHUT_WR)
        bubble.shutdown(socket.SHUT_WR)
        bubble.setblocking(False)
        assert await recv_all(bubble) == b"fresh"
        assert await asyncio.wait_for(running, 2) == "closed"
        bubble.close()
        upstream.close()


async def test_a_relay_that_ends_cleanly_gives_its_pipes_to_the_next() -> None:
    while relay_module._SPARE_PIPES:  # start from none, to count them
        for end in relay_module._SPARE_PIPES.pop():
            os.close(end)
    loop = asyncio.get_running_loop()
    for _ in range(5):
        relay, bubble, upstream = tunnel(idle_timeout=5)
        bubble.setblocking(False)
        upstream.setblocking(False)
        running = asyncio.create_task(relay.run(b"ping"))
        assert await loop.sock_recv(upstream, 10) == b"ping"
        await loop.sock_sendall(upstream, b"pong")
        assert await loop.sock_recv(bubble, 10) == b"pong"
        bubble.shutdown(socket.SHUT_WR)
        upstream.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(running, 2) == "closed"
        bubble.close()
        upstream.close()
        assert len(relay_module._SPARE_PIPES) == 2

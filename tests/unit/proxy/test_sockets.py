"""The proxy's socket operations on real loopback sockets (on both event loops: see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Iterator

import pytest

from infracalc.proxy import sockets


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def client_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def test_connect_reaches_a_listening_address(listener: socket.socket) -> None:
    sock = client_socket()
    await sockets.connect(sock, listener.getsockname(), timeout=5)
    accepted, _ = listener.accept()
    assert accepted.getpeername() == sock.getsockname()
    accepted.close()
    sock.close()


async def test_connect_to_a_closed_port_raises_connection_refused(listener: socket.socket) -> None:
    address = listener.getsockname()
    listener.close()  # nothing listens there any more
    sock = client_socket()
    with pytest.raises(ConnectionRefusedError) as raised:
        await sockets.connect(sock, address, timeout=5)
    assert raised.value.errno == errno.ECONNREFUSED
    sock.close()


async def test_connect_gives_up_after_its_timeout() -> None:
    # A listener with a full backlog drops new handshakes: the connect neither succeeds nor fails.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    waiting = [client_socket() for _ in range(3)]
    for other in waiting:
        other.connect_ex(server.getsockname())
    sock = client_socket()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await sockets.connect(sock, server.getsockname(), timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3
    for other in (*waiting, sock, server):
        other.close()


async def test_receive_waits_for_bytes_and_returns_empty_at_end_of_file() -> None:
    inside, outside = socket.socketpair()
    inside.setblocking(False)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, outside.sendall, b"late")
    assert await asyncio.wait_for(sockets.receive(inside, 100), 2) == b"late"
    outside.close()
    assert await asyncio.wait_for(sockets.receive(inside, 100), 2) == b""
    inside.close()


async def test_send_all_waits_for_room_until_everything_is_sent() -> None:
    inside, outside = socket.socketpair()
    inside.setblocking(False)
    outside.setblocking(False)
    payload = bytes(range(256)) * 40_000  # far more than the socket buffers hold
    sending = asyncio.create_task(sockets.send_all(inside, payload))
    received = bytearray()
    while len(received) < len(payload):
        received += await sockets.receive(outside, 1 << 16)
    await asyncio.wait_for(sending, 2)
    assert received == payload
    inside.close()
    outside.close()


async def test_a_wait_leaves_nothing_registered_with_the_loop() -> None:
    inside, outside = socket.socketpair()
    inside.setblocking(False)
    waiting = asyncio.create_task(sockets.wait_readable(inside.fileno()))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    loop = asyncio.get_running_loop()
    assert not loop.remove_reader(inside.fileno())  # the cancelled wait took its reader away
    outside.sendall(b"x")
    await asyncio.wait_for(sockets.wait_readable(inside.fileno()), 2)
    assert not loop.remove_reader(inside.fileno())  # and so did the one that was woken
    inside.close()
    outside.close()

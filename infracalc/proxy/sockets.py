"""Socket operations for the proxy's per-connection path: try the system call first, wait only if it would block.

The event loop's ``sock_*`` methods are general, and a proxy pays for their generality on every
connection. uvloop's register the socket with the loop before each attempt (a libuv poll handle
made and dropped every time: half a dozen system calls), and its ``sock_connect`` looks even an IP
address up in libuv's thread pool (a thread hop per dial). Here each operation is first attempted
directly, since the bytes or the room are usually there already, and waits for readiness only
when the attempt would block. Addresses are dialled as given: the caller has resolved and checked
them (:mod:`infracalc.egress.addresses`).

Every function takes a non-blocking socket and works on any asyncio event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket


async def wait_readable(fd: int) -> None:
    """Wait until ``fd`` is readable (data, end of file or an error)."""
    await _wait(fd, readable=True)


async def wait_writable(fd: int) -> None:
    """Wait until ``fd`` is writable (room, or an error)."""
    await _wait(fd, readable=False)


async def _wait(fd: int, *, readable: bool) -> None:
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    (loop.add_reader if readable else loop.add_writer)(fd, _settle, waiter)
    try:
        await waiter
    finally:
        (loop.remove_reader if readable else loop.remove_writer)(fd)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def receive(sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes from ``sock``, waiting for the first; ``b""`` at end of file."""
    while True:
        try:
            return sock.recv(size)
        except (BlockingIOError, InterruptedError):
            await wait_readable(sock.fileno())


async def send_all(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``, waiting for room as often as needed."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            await wait_writable(sock.fileno())
            continue
        view = view[sent:]


async def connect(sock: socket.socket, address: tuple[str, int], *, timeout: float) -> None:
    """Connect ``sock`` to ``address`` (an IP address as text, and a port), with no name resolution.

    Raises:
        TimeoutError: the connection was not established within ``timeout`` seconds.
        OSError: the connection failed (refused, unreachable...), with its ``errno``.
    """
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EINTR):
        # Nearby, the handshake is often over by now: asking again says so (EISCONN) without a wait.
        code = sock.connect_ex(address)
        if code == errno.EISCONN:
            return
        if code in (errno.EALREADY, errno.EINPROGRESS, errno.EINTR):
            async with asyncio.timeout(timeout):
                await wait_writable(sock.fileno())
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code != 0:
        raise OSError(code, os.strerror(code))

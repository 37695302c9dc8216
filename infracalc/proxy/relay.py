"""Moving bytes both ways between a bubble and an upstream, until either side is done or the tunnel is cut.

On Linux the bytes never enter Python: each direction moves them socket → pipe → socket with
``splice(2)``, the way Go's ``io.Copy`` does between TCP connections (and so Smokescreen), and the
event loop only wakes the pump when a socket is readable or writable. Elsewhere a plain
receive-and-send loop does the same job more slowly.

A :class:`Relay` ends when both directions reached end of file, when either side fails, when
nothing moved for ``idle_timeout`` seconds, or when :meth:`Relay.cut` is called (revocation). It
counts the bytes of each direction as they pass, for metrics and the session record.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

#: Bytes moved per splice call; the pipe between the two sockets is grown to hold as much.
CHUNK = 1024 * 1024
_HAS_SPLICE = hasattr(os, "splice")
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: Errors that mean the peer went away, not that the proxy is broken.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(slots=True)
class Counters:
    """Bytes moved so far: ``upstream`` from the bubble to the server, ``downstream`` back."""

    upstream: int = 0
    downstream: int = 0


class Relay:
    """A two-way relay between two connected, non-blocking sockets, which it closes when done."""

    def __init__(
        self,
        client: socket.socket,
        server: socket.socket,
        *,
        idle_timeout: float,
        upstream_limit: int | None = None,
    ) -> None:
        """Relay between ``client`` and ``server``.

        Args:
            client: The bubble's connection.
            server: The upstream connection.
            idle_timeout: Seconds without a byte in either direction before the relay ends.
            upstream_limit: When set, at most this many bytes go from the client to the server,
                then the client is no longer read (a plain-HTTP request's body: whatever follows
                it would be a second request that no decision covered).
        """
        self.client = client
        self.server = server
        self.idle_timeout = idle_timeout
        self.upstream_limit = upstream_limit
        self.counters = Counters()
        self.ended_by = ""
        self._last_activity = time.monotonic()
        self._cut = asyncio.Event()
        self._cut_reason = ""

    def cut(self, reason: str) -> None:
        """End the relay now (a revoked rule, a project moved to CASD); ``reason`` is kept as :attr:`ended_by`."""
        if not self._cut.is_set():
            self._cut_reason = reason
            self._cut.set()

    async def run(self, first_upstream: bytes = b"") -> str:
        """Relay until the end; return why it ended (``"closed"``, ``"idle"``, ``"reset"`` or the cut's reason).

        ``first_upstream`` is sent to the server first: bytes the client sent right behind its request head.
        """
        try:
            if first_upstream:
                await asyncio.get_running_loop().sock_sendall(self.server, first_upstream)
                self.counters.upstream += len(first_upstream)
            pumps: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self._pump(self.client, self.server, upstream=True)),
                asyncio.ensure_future(self._pump(self.server, self.client, upstream=False)),
            }
            cut: asyncio.Future[Any] = asyncio.ensure_future(self._cut.wait())
            idle: asyncio.Future[Any] = asyncio.ensure_future(self._watch_idle())
            self.ended_by = "closed"
            try:
                # Until both directions reached end of file, or one failed, or a cut or idleness.
                while pumps:
                    done, _ = await asyncio.wait({*pumps, cut, idle}, return_when=asyncio.FIRST_COMPLETED)
                    if cut in done:
                        self.ended_by = self._cut_reason
                        break
                    if idle in done:
                        self.ended_by = "idle"
                        break
                    finished = done & pumps
                    pumps -= finished
                    if any(pump.result() != "eof" for pump in finished):
                        self.ended_by = "reset"
                        break
            finally:
                remaining: list[asyncio.Future[Any]] = [*pumps, cut, idle]
                for task in remaining:
                    task.cancel()
                await asyncio.gather(*remaining, return_exceptions=True)
        except _GONE:
            self.ended_by = "reset"
        finally:
            _close(self.client)
            _close(self.server)
        return self.ended_by

    async def _watch_idle(self) -> None:
        while True:
            remaining = self._last_activity + self.idle_timeout - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    def _moved(self, count: int, *, upstream: bool) -> None:
        self._last_activity = time.monotonic()
        if upstream:
            self.counters.upstream += count
        else:
            self.counters.downstream += count

    async def _pump(self, source: socket.socket, sink: socket.socket, *, upstream: bool) -> str:
        """Move ``source`` to ``sink`` until end of file (then half-close ``sink``): ``"eof"`` or ``"reset"``.

        With a limit (upstream only), stop once it is reached, leaving both sockets as they are.
        """
        limit = self.upstream_limit if upstream else None
        try:
            if limit is not None:
                await self._copy(source, sink, upstream=upstream, limit=limit)
                return "eof"
            if _HAS_SPLICE:
                await self._splice(source, sink, upstream=upstream)
            else:
                await self._copy(source, sink, upstream=upstream)
        except _GONE:
            return "reset"
        except OSError as error:
            if error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.EBADF):
                return "reset"
            raise
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        return "eof"

    async def _splice(self, source: socket.socket, sink: socket.socket, *, upstream: bool) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(write_end, _F_SETPIPE_SZ, CHUNK)
            source_fd, sink_fd = source.fileno(), sink.fileno()
            while True:
                try:
                    count = os.splice(source_fd, write_end, CHUNK, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    await _ready(source_fd, readable=True)
                    continue
                if count == 0:
                    return
                self._moved(count, upstream=upstream)
                while count:
                    try:
                        count -= os.splice(read_end, sink_fd, count, flags=_SPLICE_FLAGS)
                    except BlockingIOError:
                        await _ready(sink_fd, readable=False)
        finally:
            os.close(read_end)
            os.close(write_end)

    async def _copy(
        self, source: socket.socket, sink: socket.socket, *, upstream: bool, limit: int | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        buffer = bytearray(256 * 1024)
        view = memoryview(buffer)
        remaining = limit
        while remaining is None or remaining > 0:
            wanted = len(buffer) if remaining is None else min(len(buffer), remaining)
            count = await loop.sock_recv_into(source, view[:wanted])
            if count == 0:
                return
            if remaining is not None:
                remaining -= count
            self._moved(count, upstream=upstream)
            await loop.sock_sendall(sink, view[:count])


async def _ready(fd: int, *, readable: bool) -> None:
    """Wait until ``fd`` is readable (or writable)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    if readable:
        loop.add_reader(fd, wake)
    else:
        loop.add_writer(fd, wake)
    try:
        await waiter
    finally:
        if readable:
            loop.remove_reader(fd)
        else:
            loop.remove_writer(fd)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()

"""Moving bytes both ways between a bubble and an upstream, until either side is done or the tunnel is cut.

On Linux the bytes never enter Python: each direction moves them socket → pipe → socket with
``splice(2)``, the way Go's ``io.Copy`` does between TCP connections (and so Smokescreen), and the
event loop only wakes the pump when a socket is readable or writable. Elsewhere a plain
receive-and-send loop does the same job more slowly.

A :class:`Relay` ends when both directions reached end of file, when either side fails, when
nothing moved for ``idle_timeout`` seconds, or when :meth:`Relay.cut` is called (revocation). It
counts the bytes each direction delivers, for metrics and the session record.
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

#: Bytes moved per splice call; the pipe between the two sockets is grown to hold as much.
CHUNK = 1024 * 1024
_HAS_SPLICE = hasattr(os, "splice")
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: Errors that mean the peer went away, not that the proxy is broken.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(slots=True)
class Counters:
    """Bytes delivered so far: ``upstream`` from the bubble to the server, ``downstream`` back.

    A byte counts once written to the receiving side, so a cut leaves out what was read but dropped.
    """

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
        self._cut_reason = ""
        self._ended: asyncio.Future[str] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._eofs = 0

    def cut(self, reason: str) -> None:
        """End the relay now (a revoked rule, a project moved to CASD); ``reason`` is kept as :attr:`ended_by`."""
        if not self._cut_reason:
            self._cut_reason = reason
            if self._ended is not None and not self._ended.done():
                self._ended.set_result(reason)

    async def run(self, first_upstream: bytes = b"") -> str:
        """Relay until the end; return why it ended (``"closed"``, ``"idle"``, ``"reset"`` or the cut's reason).

        ``first_upstream`` is sent to the server first: bytes the client sent right behind its request head.
        """
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[str] = loop.create_future()
        self._ended = ended
        try:
            if first_upstream:
                await loop.sock_sendall(self.server, first_upstream)
                self.counters.upstream += len(first_upstream)
            if self._cut_reason:  # cut before the pumps started
                return self._end(self._cut_reason)
            # Two tasks, and a timer for idleness: each tunnel's set-up pays for no more (a cut, a
            # pump's end or the timer settles ``ended``).
            pumps = (
                loop.create_task(self._pump(self.client, self.server, upstream=True)),
                loop.create_task(self._pump(self.server, self.client, upstream=False)),
            )
            for pump in pumps:
                pump.add_done_callback(self._pump_done)
            self._idle_timer = loop.call_later(self.idle_timeout, self._check_idle)
            try:
                self.ended_by = await ended
            finally:
                self._idle_timer.cancel()
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except _GONE:
            self.ended_by = "reset"
        finally:
            self._ended = None
            _close(self.client)
            _close(self.server)
        return self.ended_by

    def _end(self, reason: str) -> str:
        """Settle the relay's end with ``reason`` unless it is already settled; return the reason kept."""
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(reason)
        self.ended_by = reason
        return reason

    def _pump_done(self, pump: asyncio.Task[str]) -> None:
        ended = self._ended
        if ended is None or ended.done() or pump.cancelled():
            return
        error = pump.exception()
        if error is not None:
            ended.set_exception(error)
        elif pump.result() != "eof":
            ended.set_result("reset")
        else:
            self._eofs += 1
            if self._eofs == 2:  # noqa: PLR2004 - both directions
                ended.set_result("closed")

    def _check_idle(self) -> None:
        remaining = self._last_activity + self.idle_timeout - time.monotonic()
        if remaining <= 0:
            self._end("idle")
        else:
            self._idle_timer = asyncio.get_running_loop().call_later(remaining, self._check_idle)

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
                while count:
                    try:
                        written = os.splice(read_end, sink_fd, count, flags=_SPLICE_FLAGS)
                    except BlockingIOError:
                        await _ready(sink_fd, readable=False)
                        continue
                    count -= written
                    self._moved(written, upstream=upstream)
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
            await loop.sock_sendall(sink, view[:count])
            self._moved(count, upstream=upstream)


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

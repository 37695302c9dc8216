"""Moving bytes both ways between a bubble and an upstream, until either side is done or the tunnel is cut.

On Linux the bytes never enter Python: each direction moves them socket → pipe → socket with
``splice(2)``, the way Go's ``io.Copy`` does between TCP connections (and so Smokescreen). Each
direction is a :class:`_Pump` that the event loop calls back when the socket it waits on is ready:
no task, and one registration for as long as it waits on the same side, so that a short tunnel
costs little to start and end. Elsewhere (and for a plain-HTTP body, which must stop at its
length) the pump receives into a buffer and sends from it instead.

A :class:`Relay` ends when both directions reached end of file, when either side fails, when
nothing moved for ``idle_timeout`` seconds, or when :meth:`Relay.cut` is called (revocation). It
counts the bytes each direction delivers, for metrics and the session record.

A plain-HTTP exchange (a relay with an ``upstream_limit``, the request's body) ends sooner: as soon
as either side closes, or when the answer is complete (:mod:`infracalc.proxy.answers`), whatever
the other side does. After the body the client is still watched, for its close only: what it sends
then is a request that no decision covered, read and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import sys
import termios
import time
from dataclasses import dataclass

from infracalc.proxy import sockets
from infracalc.proxy.answers import AnswerFraming
from infracalc.proxy.wire import response

#: Bytes moved per splice call; the pipe between the two sockets is grown to hold as much.
CHUNK = 1024 * 1024
_HAS_SPLICE = hasattr(os, "splice")
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: Empty pipes kept for the next tunnels (two per tunnel at most are in use).
MAX_SPARE_PIPES = 64
_SPARE_PIPES: list[tuple[int, int]] = []
#: A read smaller than this (and than asked) ends the callback: an exchange of messages rather
#: than a transfer, whose next read would only say "nothing yet" (one system call saved each time).
SHORT_READ = 64 * 1024
#: Chunks moved at most per readiness callback, before the event loop serves other connections.
ROUNDS = 16
#: Errors that mean the peer went away, not that the proxy is broken.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_GONE_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.EBADF})


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
        answer: AnswerFraming | None = None,
        answer_cap: int | None = None,
    ) -> None:
        """Relay between ``client`` and ``server``.

        Args:
            client: The bubble's connection.
            server: The upstream connection.
            idle_timeout: Seconds without a byte in either direction before the relay ends.
            upstream_limit: When set, at most this many bytes go from the client to the server,
                then the client is only watched for its close (a plain-HTTP request's body:
                whatever follows it would be a second request that no decision covered). The
                relay is then one exchange: it ends as soon as either side closes.
            answer: For a plain-HTTP exchange, follows the answer, which ends the relay when complete.
            answer_cap: With ``answer``, the largest answer body relayed: an answer that announces
                more is answered 502 by the proxy instead; one that grows past it is cut.
        """
        self.client = client
        self.server = server
        self.idle_timeout = idle_timeout
        self.upstream_limit = upstream_limit
        self.answer = answer
        self.answer_cap = answer_cap
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
                await sockets.send_all(self.server, first_upstream)
                self.counters.upstream += len(first_upstream)
            if self._cut_reason:  # cut before the pumps started
                return self._end(self._cut_reason)
            # Two pumps driven by readiness callbacks and a timer for idleness: each tunnel's set-up
            # pays for no task (a cut, a pump's end or the timer settles ``ended``).
            pumps: list[_Pump] = []
            try:
                pumps.append(_Pump(self, self.client, self.server, upstream=True, limit=self.upstream_limit))
                pumps.append(_Pump(self, self.server, self.client, upstream=False, limit=None, answer=self.answer))
                for pump in pumps:
                    pump.start()
                self._idle_timer = loop.call_later(self.idle_timeout, self._check_idle)
                self.ended_by = await ended
            finally:
                if self._idle_timer is not None:
                    self._idle_timer.cancel()
                for pump in pumps:
                    pump.stop()
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

    def _pump_done(self, result: str | BaseException) -> None:
        """A pump finished: ``"eof"``, ``"answered"`` (a plain-HTTP answer ended), ``"reset"`` or its error."""
        ended = self._ended
        if ended is None or ended.done():
            return
        if isinstance(result, BaseException):
            ended.set_exception(result)
        elif result == "answered" or (result == "eof" and self.upstream_limit is not None):
            ended.set_result("closed")  # one exchange: over when either side closes or the answer ended
        elif result == "over_cap":
            ended.set_result(f"the answer is over the rule's cap of {self.answer_cap} bytes")
        elif result != "eof":
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


class _Pump:
    """One direction of a relay, driven by the event loop's readiness callbacks, with no task of its own.

    It reads the source while it is readable, writes what it read to the sink while the sink takes
    it, and waits for whichever of the two is blocking, registered with the loop for as long as it
    waits on the same side (not once per read, as ``sock_recv`` would). At end of file it half-closes
    the sink; with a ``limit`` it forwards no more than that many bytes, then only watches the source
    for its close, dropping what it reads. With an ``answer``, it forwards the answer's bytes and no
    more, and ends once the answer is complete. It reports its end to the relay with ``"eof"``,
    ``"answered"``, ``"reset"`` or the unexpected error.
    """

    def __init__(
        self,
        relay: Relay,
        source: socket.socket,
        sink: socket.socket,
        *,
        upstream: bool,
        limit: int | None,
        answer: AnswerFraming | None = None,
    ) -> None:
        self._relay = relay
        self._loop = asyncio.get_running_loop()
        self._source, self._sink = source, sink
        self._source_fd, self._sink_fd = source.fileno(), sink.fileno()
        self._upstream = upstream
        self._remaining = limit
        self._answer = answer
        self._held: _Pipe | _Buffer | None = _Pipe() if _HAS_SPLICE and limit is None and answer is None else _Buffer()
        self._waiting_on = ""  # "source", "sink", or "" (not registered)
        self._done = False

    def start(self) -> None:
        """Begin: wait for the source (at once called back if it holds bytes already)."""
        self._wait_on("source")

    def stop(self) -> None:
        """Stop waiting and give back what the pump holds (the relay is over); once only."""
        self._done = True
        self._wait_on("")
        if self._held is not None:
            self._held.release()
            self._held = None

    def _move(self) -> None:
        """Move bytes until a side would block (then wait on it) or end, at most ``ROUNDS`` chunks per call."""
        held = self._held
        if self._done or held is None:
            return
        short = False
        try:
            for _ in range(ROUNDS):
                if not held.pending:
                    if self._remaining == 0:
                        self._watch_for_close()
                        return
                    taken = self._take(held)
                    if taken is None:
                        return
                    short = taken
                written = held.drain(self._sink) if held.pending else 0
                self._relay._moved(written, upstream=self._upstream)  # the relay's own pump
                if self._answer is not None and self._answer.complete and not held.pending:
                    self._finish("answered")
                    return
                if short and not held.pending:
                    break  # a small read: the source is most likely empty, wait rather than ask in vain
        except (BlockingIOError, InterruptedError):
            pass
        except _GONE:
            self._finish("reset")
            return
        except OSError as error:
            self._finish("reset" if error.errno in _GONE_ERRNOS else error)
            return
        # Wait for the side that blocked, or let other work run before going on (a full round).
        self._wait_on("sink" if held.pending else "source")

    def _take(self, held: _Pipe | _Buffer) -> bool | None:
        """Read the next chunk from the source; whether it was short, or ``None`` when the pump finished."""
        size = CHUNK if self._remaining is None else min(CHUNK, self._remaining)
        count = held.fill(self._source, size)
        if count == 0:
            with contextlib.suppress(OSError):
                self._sink.shutdown(socket.SHUT_WR)
            self._finish("eof")
            return None
        if self._remaining is not None:
            self._remaining -= count
        if self._answer is not None and isinstance(held, _Buffer):
            held.pending = self._answer.feed(held.filled())  # nothing past the answer's end
            if self._answer.over(self._relay.answer_cap):
                self._refuse_answer()
                return None
        return count < min(size, SHORT_READ)

    def _refuse_answer(self) -> None:
        """An answer over the rule's cap: a 502 saying so if none of it was relayed yet (else a cut), then the end."""
        if self._relay.counters.downstream == 0:
            reason = (
                f"the answer of {self._answer.declared_length if self._answer else '?'} bytes or more is over "
                f"the rule's cap of {self._relay.answer_cap} bytes"
            )
            with contextlib.suppress(OSError):
                self._sink.send(response(502, reason))  # small: the socket's buffer takes it whole
        self._finish("over_cap")

    def _watch_for_close(self) -> None:
        """After the body: read the source only to see it close (or fail), dropping what it sends."""
        for _ in range(ROUNDS):
            try:
                dropped = self._source.recv(65536)  # a request after the one decided: never forwarded
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._finish("reset")
                return
            if not dropped:
                self._finish("eof")
                return
        self._wait_on("source")

    def _wait_on(self, side: str) -> None:
        """Be called back when ``side`` is ready (``""``: on nothing), changing the registration only if needed."""
        if side == self._waiting_on:
            return
        if self._waiting_on == "source":
            self._loop.remove_reader(self._source_fd)
        elif self._waiting_on == "sink":
            self._loop.remove_writer(self._sink_fd)
        if side == "source":
            self._loop.add_reader(self._source_fd, self._move)
        elif side == "sink":
            self._loop.add_writer(self._sink_fd, self._move)
        self._waiting_on = side

    def _finish(self, result: str | BaseException) -> None:
        self._done = True
        self._wait_on("")
        self._relay._pump_done(result)


class _Pipe:
    """Bytes in flight held in a kernel pipe: ``splice(2)`` moves them socket → pipe → socket, never into Python.

    Pipes are reused from tunnel to tunnel (making one is three system calls, closing it two more),
    but only when the kernel says they are empty: no byte of one tunnel can reach another.
    """

    def __init__(self) -> None:
        if _SPARE_PIPES:
            self._read_end, self._write_end = _SPARE_PIPES.pop()
        else:
            self._read_end, self._write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._write_end, _F_SETPIPE_SZ, CHUNK)
        self.pending = 0

    def fill(self, source: socket.socket, size: int) -> int:
        """Move up to ``size`` bytes from ``source`` into the pipe; 0 at end of file."""
        count = os.splice(source.fileno(), self._write_end, size, flags=_SPLICE_FLAGS)
        self.pending += count
        return count

    def drain(self, sink: socket.socket) -> int:
        """Move what the pipe holds (or as much as ``sink`` takes) out to ``sink``."""
        count = os.splice(self._read_end, sink.fileno(), self.pending, flags=_SPLICE_FLAGS)
        self.pending -= count
        return count

    def release(self) -> None:
        """Keep the pipe for another tunnel if it is empty and fewer than ``MAX_SPARE_PIPES`` wait; else close it."""
        ends = (self._read_end, self._write_end)
        if self.pending == 0 and len(_SPARE_PIPES) < MAX_SPARE_PIPES and _unread(self._read_end) == 0:
            _SPARE_PIPES.append(ends)
        else:
            for end in ends:
                os.close(end)


def _unread(fd: int) -> int:
    """Bytes waiting in pipe ``fd``, as the kernel counts them (-1 when it cannot tell)."""
    try:
        return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder, signed=True)
    except OSError:
        return -1


class _Buffer:
    """Bytes in flight held in a buffer: ``recv_into`` and ``send`` (no ``splice`` here, or a body's limit)."""

    SIZE = 256 * 1024

    def __init__(self) -> None:
        self._buffer = bytearray(self.SIZE)
        self._view = memoryview(self._buffer)
        self._start = 0
        self.pending = 0

    def fill(self, source: socket.socket, size: int) -> int:
        """Receive up to ``size`` bytes from ``source``; 0 at end of file."""
        count = source.recv_into(self._view, min(size, self.SIZE))
        self._start, self.pending = 0, count
        return count

    def filled(self) -> memoryview:
        """The bytes the last :meth:`fill` received (to be cut short with :attr:`pending`)."""
        return self._view[: self.pending]

    def drain(self, sink: socket.socket) -> int:
        """Send what the buffer holds (or as much as ``sink`` takes)."""
        count = sink.send(self._view[self._start : self._start + self.pending])
        self._start += count
        self.pending -= count
        return count

    def release(self) -> None:
        self._view.release()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()

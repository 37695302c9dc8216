"""TLS over the proxy's own non-blocking sockets, through memory buffers (``ssl.MemoryBIO``).

An inspected connection holds two TLS sessions: the bubble's, which the proxy terminates as the
server, and the upstream's, which it opens as a client. Both run here over the same direct socket
operations as the rest of the proxy (:mod:`infracalc.proxy.sockets`), not through asyncio
transports: the proxy decides when to read, how much (never past a request's body), and moves
large batches per call, so that a download costs a few Python calls per 256 KiB and the rest is
OpenSSL's work.

asyncio's ``start_tls`` was not used: it hands the socket to a transport and a protocol, which
would leave the proxy two ways of doing I/O and cost a copy through a stream reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import cast

from infracalc.proxy import sockets

#: Bytes received from a socket at most per call.
RECEIVE = 256 * 1024


class TlsConnection:
    """One TLS session over a connected, non-blocking socket (server or client side)."""

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        received: bytes = b"",
        session: ssl.SSLSession | None = None,
    ) -> None:
        """Wrap ``sock``.

        Args:
            sock: The connection.
            context: The TLS context (server or client).
            server_side: The proxy is the server (the bubble's side).
            server_hostname: The name to verify (client side).
            received: Bytes already read from ``sock`` that belong to the TLS stream (a ClientHello
                sent right behind the CONNECT).
            session: A session to resume (client side).
        """
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname, session=session
        )
        if received:
            self._incoming.write(received)
        self._receive_buffer = bytearray(RECEIVE)
        self._receive_view = memoryview(self._receive_buffer)
        self.at_eof = False

    async def handshake(self) -> None:
        """Complete the handshake.

        Raises:
            ssl.SSLError: it failed (``ssl.SSLCertVerificationError`` for a certificate refused).
            ConnectionError: the peer closed before it completed.
        """
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._receive():
                    raise ConnectionResetError("the peer closed the connection during the TLS handshake") from None
                continue
            await self._flush()
            return

    async def read_into(self, view: memoryview) -> int:
        """Decrypted bytes into ``view`` (as many as are there, waiting for the first); 0 at the end.

        Never takes more than ``len(view)`` bytes out of the TLS session: what follows stays there.
        """
        while True:
            count = self._read_available(view)
            if count or self.at_eof:
                return count
            await self._flush()  # a key update or a ticket may want an answer
            if not await self._receive():
                self.at_eof = True

    def _read_available(self, view: memoryview) -> int:
        """What can be decrypted now, without a system call."""
        total, size = 0, len(view)
        tls = self.tls
        while total < size:
            try:
                # Into the caller's buffer: OpenSSL decrypts in place, no bytes object per record.
                count = cast("int", tls.read(size - total, view[total:]))
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.at_eof = True
                break
            if not count:
                self.at_eof = True
                break
            total += count
        return total

    async def send(self, data: bytes | memoryview) -> None:
        """Encrypt ``data`` and send it all."""
        if data:
            self.tls.write(data)
        await self._flush()

    async def _flush(self) -> None:
        """Send what the TLS session has produced (records, alerts, handshake messages)."""
        pending = self._outgoing.read()
        if pending:
            await sockets.send_all(self.sock, pending)

    async def _receive(self) -> bool:
        """Read what the socket holds into the TLS session; ``False`` at end of file (then told to the session)."""
        while True:
            try:
                count = self.sock.recv_into(self._receive_view, RECEIVE)
            except (BlockingIOError, InterruptedError):
                await sockets.wait_readable(self.sock.fileno())
                continue
            if count == 0:
                self._incoming.write_eof()
                return False
            self._incoming.write(self._receive_view[:count])
            return True

    async def close(self) -> None:
        """Say goodbye (close_notify) if the session is up, then close the socket; never raises."""
        with contextlib.suppress(ssl.SSLError, OSError, ValueError, TimeoutError):
            with contextlib.suppress(ssl.SSLWantReadError):
                self.tls.unwrap()
            async with asyncio.timeout(1):
                await self._flush()
        with contextlib.suppress(OSError):
            self.sock.close()

    def selected_protocol(self) -> str | None:
        """The protocol agreed by ALPN (``http/1.1``), ``None`` when none was."""
        return self.tls.selected_alpn_protocol()

"""Connections a trusted forwarder hands over, with the address they really come from.

The egress proxy binds a bubble's credentials to the address the bubble runs at, which it reads
from the connection. Locally, bubbles do not reach the proxy directly: they reach a forwarder the
hub runs on their network namespace's gateway (:mod:`infracalc.hub.forwarders`), so every connection
would seem to come from the host. The forwarder therefore hands each one over through a Unix socket
that only its owner may open (``INFRACALC_EGRESS_FORWARDED_SOCKET``, mode 0600), and starts it with
a PROXY protocol version 1 line (HAProxy's, which nginx and others read too) naming the bubble's
address, ended by CR LF::

    PROXY TCP4 10.233.0.2 10.233.0.1 41234 3128

The proxy believes that line on this socket only, never on its TCP port: only a process that can
open the socket could forge it, and that takes the hub's own user (root, for network namespaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from pathlib import Path

from infracalc.egress import InvalidSourceAddress, source_address
from infracalc.proxy import sockets
from infracalc.proxy.wire import ProxyError

#: The longest PROXY version 1 line, ``\r\n`` included (the protocol's own limit).
MAX_LINE = 107
_SIGNATURE = b"PROXY "
#: Seconds between looks at a line that arrived in part (forwarders send it in one write: rare).
_PARTIAL_WAIT = 0.005
_FAMILIES = {"TCP4": socket.AF_INET, "TCP6": socket.AF_INET6}


def _refuse(reason: str) -> ProxyError:
    return ProxyError(400, "malformed_forwarding", reason)


def header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The PROXY line a forwarder sends first for a connection from ``source`` to ``destination``."""
    family = "TCP6" if ":" in source[0] else "TCP4"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode("ascii")


def parse(line: bytes) -> str:
    """The source address a PROXY line names, in the form the policy compares.

    Raises:
        ProxyError: 400, not a well-formed ``PROXY TCP4|TCP6`` line.
    """
    if not line.startswith(_SIGNATURE) or not line.endswith(b"\r\n") or len(line) > MAX_LINE:
        raise _refuse("a forwarded connection must start with a PROXY line")
    fields = line[len(_SIGNATURE) : -2].decode("ascii", errors="replace").split(" ")
    if len(fields) != 5 or fields[0] not in _FAMILIES:  # noqa: PLR2004 - family, two addresses, two ports
        raise _refuse("the PROXY line must be: PROXY TCP4|TCP6 <source> <destination> <port> <port>")
    family, source, destination, *ports = fields
    for address in (source, destination):
        try:
            socket.inet_pton(_FAMILIES[family], address)
        except OSError:
            raise _refuse(f"the PROXY line names {address!r}, not a {family} address") from None
    if not all(port.isdigit() and 0 < int(port) < 65536 for port in ports):  # noqa: PLR2004
        raise _refuse("the PROXY line's ports must be 1 to 65535")
    try:
        return source_address(source)
    except InvalidSourceAddress as error:
        raise _refuse(str(error)) from None


async def read_source(sock: socket.socket, *, timeout: float) -> str:
    """Read the PROXY line at the start of ``sock`` (and nothing after it); the source address it names.

    The bytes are peeked until the line's end is there, then exactly the line is consumed, so that
    the request head after it is read as from any other connection.

    Raises:
        ProxyError: 400 for a missing or malformed line, 408 when it does not arrive within ``timeout``.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    seen = sock.recv(MAX_LINE, socket.MSG_PEEK)
                except (BlockingIOError, InterruptedError):
                    await sockets.wait_readable(sock.fileno())
                    continue
                end = seen.find(b"\r\n")
                if end != -1:
                    line = sock.recv(end + 2)
                    return parse(line)
                if not seen or len(seen) >= MAX_LINE or not _SIGNATURE.startswith(seen[: len(_SIGNATURE)]):
                    raise _refuse("a forwarded connection must start with a PROXY line")
                # Part of the line is there (peeked bytes stay readable): wait a little for the rest.
                await asyncio.sleep(_PARTIAL_WAIT)
    except TimeoutError:
        raise ProxyError(408, "header_timeout", f"the PROXY line did not arrive within {timeout:g} s") from None


def listen(path: Path) -> socket.socket:
    """A non-blocking Unix socket listening at ``path``, readable and writable by its owner only.

    A socket file left by an earlier run is replaced; any other file there is an error.

    Raises:
        OSError: ``path`` holds something else than a socket, or cannot be bound.
    """
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # created 0600: the mode is right from the first instant
    try:
        listener.bind(str(path))
    finally:
        os.umask(previous)
    listener.listen(1024)
    listener.setblocking(False)
    return listener

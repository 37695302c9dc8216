"""The PROXY line a local forwarder starts each connection with, read on the forwarded socket only."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import pytest

from infracalc.proxy.forwarded import MAX_LINE, header, listen, parse, read_source
from infracalc.proxy.wire import ProxyError


def test_a_forwarders_line_names_the_bubbles_address() -> None:
    assert header(("10.233.0.2", 41234), ("10.233.0.1", 3128)) == b"PROXY TCP4 10.233.0.2 10.233.0.1 41234 3128\r\n"
    assert parse(header(("10.233.0.2", 41234), ("10.233.0.1", 3128))) == "10.233.0.2"
    assert parse(b"PROXY TCP6 FD00::2 fd00::1 1 65535\r\n") == "fd00::2"
    assert parse(b"PROXY TCP6 ::ffff:10.0.0.2 ::1 1 2\r\n") == "10.0.0.2"


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP4 10.0.0.2 10.0.0.1 1 2",  # no CR LF
        b"PROXY TCP4 10.0.0.2 10.0.0.1 1\r\n",
        b"PROXY TCP4 fd00::2 10.0.0.1 1 2\r\n",  # an IPv6 address named TCP4
        b"PROXY TCP4 10.0.0.2 10.0.0.1 0 2\r\n",
        b"PROXY TCP4 10.0.0.2 10.0.0.1 1 65536\r\n",
        b"PROXY TCP4 0.0.0.0 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 10.0.0.2  10.0.0.1 1 2\r\n",
        b"PROXY TCP4 " + b"1" * MAX_LINE + b"\r\n",
    ],
)
def test_anything_else_is_refused_400(line: bytes) -> None:
    with pytest.raises(ProxyError) as refused:
        parse(line)
    assert (refused.value.status, refused.value.label) == (400, "malformed_forwarding")


async def test_the_line_is_read_and_consumed_and_nothing_after_it() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        theirs.sendall(b"PROXY TCP4 10.233.0.2 10.233.0.1 5 3128\r\nCONNECT a.example:443 HTTP/1.1\r\n\r\n")
        assert await read_source(ours, timeout=1) == "10.233.0.2"
        assert ours.recv(100) == b"CONNECT a.example:443 HTTP/1.1\r\n\r\n"


async def test_a_line_in_pieces_is_waited_for_and_a_missing_one_refused() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        theirs.sendall(b"PROXY TCP4 10.233.")

        async def rest() -> None:
            await asyncio.sleep(0.05)
            theirs.sendall(b"0.2 10.233.0.1 5 3128\r\n")

        late = asyncio.create_task(rest())
        assert await read_source(ours, timeout=1) == "10.233.0.2"
        await late
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        theirs.sendall(b"CONNECT a.example:443 HTTP/1.1\r\n\r\n")
        with pytest.raises(ProxyError, match="must start with a PROXY line"):
            await read_source(ours, timeout=1)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs, pytest.raises(ProxyError) as slow:
        await read_source(ours, timeout=0.1)
    assert slow.value.status == 408


def test_the_socket_is_its_owners_only_and_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "forwarded.sock"
    first = listen(path)
    first.close()
    second = listen(path)  # the file left behind is replaced
    with second:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = tmp_path / "not-a-socket"
    other.write_text("keep me")
    with pytest.raises(FileExistsError):
        listen(other)
    assert other.read_text() == "keep me"

"""A small DNS server for the network-namespace lab, whose answers change from one query to the next.

Run from the repository root, inside the lab's external namespace::

    python -m tests.support.dns_server --listen 10.231.200.2:53 \\
        --name rebind.allowed.test=10.231.200.2,127.0.0.1 --exit-on-stdin-eof

Each ``--name NAME=ADDRESS,ADDRESS...`` answers its ``A`` queries with one address at a time, in
turn (the first query gets the first address, the second the next...), with a TTL of 0: what a DNS
rebinding attack looks like. ``AAAA`` queries of a known name get an empty answer, unknown names
NXDOMAIN. UDP only. Every query is written to stdout as one line, ``<type> <name> <answer>``,
after a first line ``ready``; the lab reads them to count the queries.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import threading
from collections.abc import Sequence
from ipaddress import IPv4Address

_A, _AAAA, _IN = 1, 28, 1
_NXDOMAIN = 3


def _question(message: bytes) -> tuple[str, int, int]:
    """The first question's name, type, and the offset just after it."""
    offset, labels = 12, []
    while (length := message[offset]) != 0:
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    qtype, _ = struct.unpack("!HH", message[offset + 1 : offset + 5])
    return ".".join(labels), qtype, offset + 5


def answer(message: bytes, names: dict[str, list[str]], turns: dict[str, int]) -> tuple[bytes, str]:
    """The reply to query ``message``, and what it said (for the log)."""
    identifier, flags = struct.unpack("!HH", message[:4])
    name, qtype, end = _question(message)
    question = message[12:end]
    rd = flags & 0x0100
    if name not in names:
        header = struct.pack("!HHHHHH", identifier, 0x8080 | rd | _NXDOMAIN, 1, 0, 0, 0)
        return header + question, f"{qtype} {name} NXDOMAIN"
    if qtype != _A:
        return struct.pack("!HHHHHH", identifier, 0x8080 | rd, 1, 0, 0, 0) + question, f"{qtype} {name} -"
    addresses = names[name]
    address = addresses[turns.get(name, 0) % len(addresses)]
    turns[name] = turns.get(name, 0) + 1
    record = struct.pack("!HHHIH", 0xC00C, _A, _IN, 0, 4) + IPv4Address(address).packed
    return struct.pack("!HHHHHH", identifier, 0x8080 | rd, 1, 1, 0, 0) + question + record, f"A {name} {address}"


def serve(listen: tuple[str, int], names: dict[str, list[str]]) -> None:
    """Answer queries on ``listen`` forever."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(listen)
    print("ready", flush=True)
    turns: dict[str, int] = {}
    while True:
        message, client = server.recvfrom(4096)
        try:
            reply, said = answer(message, names, turns)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue  # not a query this server understands
        server.sendto(reply, client)
        print(said, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--name", action="append", default=[], help="NAME=ADDRESS,ADDRESS...")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    arguments = parser.parse_args(argv)
    host, _, port = arguments.listen.rpartition(":")
    names = {}
    for item in arguments.name:
        name, _, addresses = item.partition("=")
        names[name.lower().rstrip(".")] = addresses.split(",")
    if arguments.exit_on_stdin_eof:

        def watch() -> None:
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    serve((host, int(port)), names)


if __name__ == "__main__":
    main()

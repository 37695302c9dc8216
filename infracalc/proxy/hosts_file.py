"""A resolver that reads a hosts file instead of DNS, for integration tests only.

Tests give their upstream servers names (``api.allowed.test``) and private addresses inside
network namespaces they create. The proxy reads those names from ``INFRACALC_EGRESS_TEST_HOSTS``,
which :class:`infracalc.proxy.settings.ProxySettings` accepts only with the same consent phrase as
the test allow ranges. A name missing from the file does not resolve (there is no fallback to
DNS), so a test never sends a query, or a packet, off the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path

from infracalc.egress import EgressConfigError, Resolver, normalise_host
from infracalc.egress.addresses import AddrInfo


def read_hosts(path: Path) -> dict[str, list[str]]:
    """``{name: [address, ...]}`` from an ``/etc/hosts``-style file (names normalised, order kept).

    Raises:
        EgressConfigError: the file cannot be read or a line is malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EgressConfigError(f"test hosts file {path}: {error.strerror or error}") from None
    table: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:  # noqa: PLR2004 - an address and at least one name
            raise EgressConfigError(f"test hosts file {path}, line {number}: expected an address and names")
        try:
            address = str(ip_address(fields[0]))
        except ValueError:
            raise EgressConfigError(f"test hosts file {path}, line {number}: {fields[0]!r} is not an address") from None
        for name in fields[1:]:
            table.setdefault(normalise_host(name), []).append(address)
    return table


def hosts_resolver(path: Path) -> Resolver:
    """A resolver answering from ``path`` only (read once, now)."""
    table = read_hosts(path)

    async def resolve(host: str, port: int) -> Sequence[AddrInfo]:
        addresses = table.get(host)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "not in the test hosts file")
        entries: list[AddrInfo] = []
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            entries.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)))
        return entries

    return resolve

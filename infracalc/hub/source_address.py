"""Where a hub request really comes from: the socket peer, and ``X-Forwarded-For`` only from trusted proxies.

JupyterHub runs tornado with ``xheaders=True``, so ``request.remote_ip`` is taken from
``X-Real-Ip`` or ``X-Forwarded-For`` whoever sent them: configurable-http-proxy passes a client's
own headers through (it appends to ``X-Forwarded-For``, and leaves ``X-Real-Ip`` alone), so a
browser could name any address it likes. The login policy decides on the source address, so the
hub reads the address of the TCP peer itself (:func:`peer_address`) and believes
``X-Forwarded-For`` only as far as a chain of trusted proxies vouches for it
(:func:`client_address`): walking the header right to left, each entry was written by the hop to
its right, which is believed only if that hop is a trusted proxy. ``X-Real-Ip`` is never read.

An entry that is not an address where the walk needs one (a trusted proxy wrote garbage, or a
header was tampered with) gives no address at all: the caller refuses rather than guesses.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

#: configurable-http-proxy runs beside the hub and connects to it over loopback.
DEFAULT_TRUSTED_PROXIES: Final = ("127.0.0.1/32", "::1/128")

_BRACKETED: Final = re.compile(r"\[(?P<host>[^\[\]]+)\](?::(?P<port>[0-9]{1,5}))?")
_IPV4_WITH_PORT: Final = re.compile(r"(?P<host>[0-9.]+):(?P<port>[0-9]{1,5})")


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The networks of ``cidrs`` (``203.0.113.0/24``, ``2001:db8::/32``, or a bare address).

    Raises:
        ValueError: an entry is not a network, or has host bits set (``10.0.0.1/8``).
    """
    return tuple(ip_network(cidr.strip(), strict=True) for cidr in cidrs)


def parse_address(text: str) -> IPAddress | None:
    """The address in a header entry or a socket address, or ``None`` when there is none.

    Accepts IPv4 and IPv6, optionally with a port (``192.0.2.1:443``, ``[2001:db8::1]:443``) as some
    proxies write them; an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what Node reports on a
    dual-stack socket) is the IPv4 address it carries; an IPv6 zone (``%eth0``) is dropped.
    """
    text = text.strip()
    if (match := _BRACKETED.fullmatch(text)) or (match := _IPV4_WITH_PORT.fullmatch(text)):
        text = match["host"]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return IPv6Address(address.packed)
    return address


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    """Whether ``address`` is in one of the ``trusted`` networks."""
    return any(address in network for network in trusted if network.version == address.version)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client's address, as far as trusted proxies vouch for it.

    Starts from the socket ``peer``; while the current hop is a trusted proxy, steps to the entry
    of ``X-Forwarded-For`` it appended (the rightmost one not yet used). Stops at the first hop
    that is not trusted, which is the answer; if every hop is trusted, the leftmost one is.

    Args:
        peer: The TCP peer's address (see :func:`peer_address`); ``None`` when unknown.
        forwarded_for: Every ``X-Forwarded-For`` header line, in the order received.
        trusted: The proxies whose ``X-Forwarded-For`` entries are believed.

    Returns:
        The address, or ``None`` when the peer is unknown or the walk meets an entry that is not an
        address before it meets an untrusted hop.
    """
    current = parse_address(peer) if peer is not None else None
    if current is None:
        return None
    # An empty header line says nothing; empty entries inside a list are garbage like any other.
    entries = [entry for line in forwarded_for if line.strip() for entry in line.split(",")]
    for entry in reversed(entries):
        if not is_trusted(current, trusted):
            return current
        current = parse_address(entry)
        if current is None:
            return None
    return current


def peer_address(request: HTTPServerRequest) -> str | None:
    """The TCP peer of ``request`` as tornado accepted it, before any ``X-*`` header rewrote ``remote_ip``.

    Tornado keeps the accepted socket's address in the connection's context (``address``, with its
    ``address_family``); with ``xheaders=True`` only ``remote_ip`` is rewritten per request.
    ``None`` for a Unix-socket peer or any other connection without an IP address.
    """
    context = getattr(request.connection, "context", None)
    family = getattr(context, "address_family", None)
    address = getattr(context, "address", None)
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        return str(address[0])
    return None


def source_address(request: HTTPServerRequest, trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The address ``request`` comes from: :func:`client_address` of its peer and ``X-Forwarded-For`` lines."""
    return client_address(peer_address(request), request.headers.get_list("X-Forwarded-For"), trusted)

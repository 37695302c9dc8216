"""Where a bubble's connections come from: the one network address its credentials are bound to.

The hub registers each bubble's address (its network namespace's locally, its container's or pod's
in production) and the egress proxy passes the address each connection comes from; the policy
compares the two as text, so both sides write an address the same way, here: Python's compressed
form, lowercase, without an IPv6 zone, and an IPv4 address carried in IPv6 (``::ffff:10.0.0.2``, what
a dual-stack listener reports for an IPv4 client) written as IPv4.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from infracalc.egress.addresses import EgressError


class InvalidSourceAddress(EgressError):
    """Text that cannot be a bubble's address (not an IP address, or one no connection comes from)."""


def source_address(text: str) -> str:
    """``text`` (an IP address) in the one form the policy compares.

    Raises:
        InvalidSourceAddress: not an IP address, or an unspecified (``0.0.0.0``, ``::``) or multicast one.
    """
    try:
        parsed: IPv4Address | IPv6Address = ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        raise InvalidSourceAddress(f"{text!r} is not an IP address") from None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.is_unspecified or parsed.is_multicast:
        raise InvalidSourceAddress(f"{parsed} cannot be the address a bubble connects from")
    return str(parsed)

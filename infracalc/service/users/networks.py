"""Registered networks: checking and normalising the CIDRs a person may sign in from.

A registered network narrows where a person may open a hub session (``infracalc.login``), so a
network too wide to narrow anything is refused rather than stored: ``0.0.0.0/0``, ``::/0``, and any
network wider than :data:`WIDEST_PREFIX` says (an institution's network, IPv4 ``/16`` or IPv6
``/48``, is the widest anyone signs in from). The rule is the same everywhere: the API, the console
and enrollment. Each network is written in
strict CIDR form, an address and a prefix length with no host bits set (``203.0.113.0/24``, not
``203.0.113.7/24``, nor a netmask, nor an IPv6 zone); IPv4 networks are written as IPv4, not
IPv4-mapped IPv6 (``::ffff:203.0.113.0/120``), which the login policy would never match.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Final

from infracalc.policy.sync import network_order
from infracalc.service.errors import InvalidInput

#: The most networks one person may register.
MAX_NETWORKS = 20
#: The widest networks accepted, as prefix lengths, by IP version: a site's network (a campus /16, an IPv6 /48).
WIDEST_PREFIX: Final[Mapping[int, int]] = {4: 16, 6: 48}
#: The rule, as the API documents it (the console says it from its catalogue, with the same numbers).
NETWORK_RULE: Final = (
    f"an address or a network in strict CIDR form (203.0.113.0/24), IPv4 /{WIDEST_PREFIX[4]} and "
    f"IPv6 /{WIDEST_PREFIX[6]} at widest, at most {MAX_NETWORKS}"
)

# Digits and dots, or hexadecimal digits and colons (and dots: an embedded IPv4 tail); a decimal
# prefix without leading zeros. Anything else (a netmask, a zone, spaces) is not strict CIDR form.
_CIDR = re.compile(r"(?:[0-9.]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)/(?:0|[1-9][0-9]{0,2})")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def normalise_networks(values: Sequence[str], field: str = "networks") -> list[str]:
    """``values`` as networks in normal form (lowercase, compressed), without duplicates, IPv4 first then by address.

    Raises:
        InvalidInput: one value is refused; ``field`` is ``networks[<index>]`` and the message says why.
    """
    if len(values) > MAX_NETWORKS:
        raise InvalidInput(f"{field}: at most {MAX_NETWORKS} networks, got {len(values)}", field=field)
    networks = {_network(value, f"{field}[{index}]") for index, value in enumerate(values)}
    return sorted(networks, key=network_order)


def _network(value: str, field: str) -> str:
    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"{field}: {value!r} {why}", field=field)

    if not _CIDR.fullmatch(value):
        raise refuse("is not a network in CIDR form (an address, a slash and a prefix length: 203.0.113.0/24)")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise refuse("is not a valid IPv4 or IPv6 network (check the address and the prefix length)") from None
    if network.network_address != ipaddress.ip_address(value.partition("/")[0]):
        raise refuse(f"has host bits set (did you mean {network}?)")
    if network.prefixlen == 0:
        raise refuse("is every address: register the networks you sign in from")
    widest = WIDEST_PREFIX[network.version]
    if network.prefixlen < widest:
        raise refuse(f"is too wide: IPv{network.version} networks may be /{widest} at widest")
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        raise refuse(f"is IPv4-mapped: write it as IPv4 ({_unmapped(network)})")
    return str(network)


def _unmapped(network: ipaddress.IPv6Network) -> str:
    address = network.network_address.ipv4_mapped
    return f"{address}/{network.prefixlen - 96}"

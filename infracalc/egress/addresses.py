"""Which IP addresses the egress proxy may dial, and resolving a name once to choose one.

The proxy resolves a host name once, checks every address it got, and then connects to exactly the
address it checked, so that a second, different DNS answer (DNS rebinding) can never reach the
socket. Only globally routable unicast addresses may be dialled. The special-purpose ranges are
listed below in explicit tables, each with the RFC that reserves it, rather than taken from
:attr:`ipaddress.IPv4Address.is_global`, whose answers have gaps and changed between Python versions
(and which, for instance, calls some IPv4-embedding IPv6 forms global).

Errors of the egress package (all subclasses of :class:`EgressError`):

- :class:`EgressConfigError`: the test-only allow ranges are set without consent or are unsafe.
- :class:`AddressRefused`: :func:`choose` found an address the policy refuses.
- :class:`ResolutionFailed` (and :class:`ResolutionTimeout`): the name could not be resolved.
- :class:`infracalc.egress.hosts.InvalidHost` (and ``InvalidHostPattern``): see that module.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, ClassVar

from infracalc.errors import InfracalcError

logger = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

#: One ``getaddrinfo`` entry: ``(family, type, proto, canonname, sockaddr)``.
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]

#: Resolves ``(host, port)`` like :meth:`asyncio.AbstractEventLoop.getaddrinfo`; injectable for tests.
Resolver = Callable[[str, int], Awaitable[Sequence[AddrInfo]]]


class EgressError(InfracalcError):
    """Base class of the egress package's errors."""


class EgressConfigError(EgressError):
    """The egress settings cannot be used (for instance an unsafe or unconsented test allow range)."""


class AddressRefused(EgressError):
    """A resolved address may not be dialled; :attr:`verdict` says which and why."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


class ResolutionFailed(EgressError):
    """A host name could not be resolved to any address."""


class ResolutionTimeout(ResolutionFailed):
    """Resolving a host name took longer than allowed."""


class AddressClass(enum.Enum):
    """What kind of address an IP address is; only :attr:`GLOBAL` may be dialled."""

    GLOBAL = "global"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    CGNAT = "cgnat"
    ULA = "ula"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"
    DOCUMENTATION = "documentation"
    EMBEDDED_IPV4 = "embedded-ipv4"
    BENCHMARK = "benchmark"
    THIS_NETWORK = "this-network"
    BROADCAST = "broadcast"


#: How each class reads in a sentence ("10.1.2.3 is private").
_CLASS_WORDS: dict[AddressClass, str] = {
    AddressClass.GLOBAL: "globally routable",
    AddressClass.LOOPBACK: "loopback",
    AddressClass.PRIVATE: "private",
    AddressClass.LINK_LOCAL: "link-local",
    AddressClass.CGNAT: "carrier-grade NAT shared space",
    AddressClass.ULA: "a unique local address",
    AddressClass.MULTICAST: "multicast",
    AddressClass.UNSPECIFIED: "the unspecified address",
    AddressClass.RESERVED: "reserved",
    AddressClass.DOCUMENTATION: "reserved for documentation",
    AddressClass.EMBEDDED_IPV4: "an IPv6 form that embeds an IPv4 address",
    AddressClass.BENCHMARK: "reserved for benchmarking",
    AddressClass.THIS_NETWORK: "in 'this network'",
    AddressClass.BROADCAST: "the limited broadcast address",
}


def _low_32_bits(address: IPv6Address) -> IPv4Address:
    return IPv4Address(int(address) & 0xFFFF_FFFF)


def _sixtofour(address: IPv6Address) -> IPv4Address:
    embedded = address.sixtofour
    if embedded is None:  # pragma: no cover - only called for 2002::/16, where it is never None
        raise ValueError(f"{address} is not a 6to4 address")
    return embedded


def _teredo_client(address: IPv6Address) -> IPv4Address:
    pair = address.teredo
    if pair is None:  # pragma: no cover - only called for 2001::/32, where it is never None
        raise ValueError(f"{address} is not a Teredo address")
    return pair[1]


@dataclass(frozen=True, slots=True)
class _Range:
    network: IPNetwork
    address_class: AddressClass
    detail: str
    embedded: Callable[[IPv6Address], IPv4Address] | None = None


def _v4(network: str, address_class: AddressClass, detail: str) -> _Range:
    return _Range(IPv4Network(network), address_class, detail)


def _v6(
    network: str,
    address_class: AddressClass,
    detail: str,
    embedded: Callable[[IPv6Address], IPv4Address] | None = None,
) -> _Range:
    return _Range(IPv6Network(network), address_class, detail, embedded)


# IANA's IPv4 special-purpose registry (RFC 6890 and updates). Ranges that IANA marks globally
# reachable but that no external API lives in (192.0.0.9/32, 192.0.0.10/32 inside 192.0.0.0/24) are
# refused with their parent block: the safe side. Anything not listed is GLOBAL.
_IPV4_RANGES: tuple[_Range, ...] = (
    _v4("0.0.0.0/32", AddressClass.UNSPECIFIED, "RFC 1122"),
    _v4("0.0.0.0/8", AddressClass.THIS_NETWORK, "RFC 791, RFC 1122"),
    _v4("10.0.0.0/8", AddressClass.PRIVATE, "RFC 1918"),
    _v4("100.64.0.0/10", AddressClass.CGNAT, "RFC 6598"),
    _v4("127.0.0.0/8", AddressClass.LOOPBACK, "RFC 1122"),
    _v4("169.254.0.0/16", AddressClass.LINK_LOCAL, "RFC 3927"),
    _v4("172.16.0.0/12", AddressClass.PRIVATE, "RFC 1918"),
    _v4("192.0.0.0/24", AddressClass.RESERVED, "IETF protocol assignments, RFC 6890"),
    _v4("192.0.2.0/24", AddressClass.DOCUMENTATION, "TEST-NET-1, RFC 5737"),
    _v4("192.88.99.0/24", AddressClass.RESERVED, "former 6to4 relay anycast, RFC 7526"),
    _v4("192.168.0.0/16", AddressClass.PRIVATE, "RFC 1918"),
    _v4("198.18.0.0/15", AddressClass.BENCHMARK, "RFC 2544"),
    _v4("198.51.100.0/24", AddressClass.DOCUMENTATION, "TEST-NET-2, RFC 5737"),
    _v4("203.0.113.0/24", AddressClass.DOCUMENTATION, "TEST-NET-3, RFC 5737"),
    _v4("224.0.0.0/4", AddressClass.MULTICAST, "RFC 5771"),
    _v4("240.0.0.0/4", AddressClass.RESERVED, "future use, RFC 1112"),
    _v4("255.255.255.255/32", AddressClass.BROADCAST, "RFC 919"),
)

# IANA's IPv6 special-purpose registry (RFC 6890 and updates). Only the global unicast space
# 2000::/3 can be GLOBAL; everything outside it is RESERVED unless listed. The forms that carry an
# IPv4 address are EMBEDDED_IPV4 whatever that IPv4 address is: dialling them would reach an IPv4
# host (through the kernel, a NAT64 gateway or a tunnel) that the IPv4 table never saw.
_IPV6_RANGES: tuple[_Range, ...] = (
    _v6("::/128", AddressClass.UNSPECIFIED, "RFC 4291"),
    _v6("::1/128", AddressClass.LOOPBACK, "RFC 4291"),
    _v6("::ffff:0:0/96", AddressClass.EMBEDDED_IPV4, "IPv4-mapped, RFC 4291", _low_32_bits),
    _v6("::/96", AddressClass.EMBEDDED_IPV4, "IPv4-compatible (deprecated), RFC 4291", _low_32_bits),
    _v6("::ffff:0:0:0/96", AddressClass.EMBEDDED_IPV4, "IPv4-translated (SIIT), RFC 2765", _low_32_bits),
    _v6("64:ff9b::/96", AddressClass.EMBEDDED_IPV4, "NAT64 well-known prefix, RFC 6052", _low_32_bits),
    # Local-use NAT64 prefixes are usually carved into /96 networks, so the IPv4 address is read
    # from the low 32 bits; the address is refused whichever layout an operator chose.
    _v6("64:ff9b:1::/48", AddressClass.EMBEDDED_IPV4, "local-use NAT64, RFC 8215", _low_32_bits),
    _v6("100::/64", AddressClass.RESERVED, "discard-only, RFC 6666"),
    _v6("2001::/32", AddressClass.EMBEDDED_IPV4, "Teredo, RFC 4380", _teredo_client),
    _v6("2001:2::/48", AddressClass.BENCHMARK, "RFC 5180"),
    _v6("2001::/23", AddressClass.RESERVED, "IETF protocol assignments, RFC 2928"),
    _v6("2001:db8::/32", AddressClass.DOCUMENTATION, "RFC 3849"),
    _v6("2002::/16", AddressClass.EMBEDDED_IPV4, "6to4, RFC 3056", _sixtofour),
    _v6("3fff::/20", AddressClass.DOCUMENTATION, "RFC 9637"),
    _v6("5f00::/16", AddressClass.RESERVED, "SRv6 SIDs, RFC 9602"),
    _v6("fc00::/7", AddressClass.ULA, "RFC 4193"),
    _v6("fe80::/10", AddressClass.LINK_LOCAL, "RFC 4291"),
    _v6("fec0::/10", AddressClass.PRIVATE, "site-local (deprecated), RFC 3879"),
    _v6("ff00::/8", AddressClass.MULTICAST, "RFC 4291"),
)

_IPV6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_IPV6_OUTSIDE_GLOBAL_UNICAST = _Range(
    IPv6Network("::/0"), AddressClass.RESERVED, "outside the global unicast space 2000::/3, RFC 4291"
)

# Most specific first, so that 0.0.0.0/32 wins over 0.0.0.0/8 and 2001:2::/48 over 2001::/23.
_V4_BY_SPECIFICITY = tuple(sorted(_IPV4_RANGES, key=lambda entry: -entry.network.prefixlen))
_V6_BY_SPECIFICITY = tuple(sorted(_IPV6_RANGES, key=lambda entry: -entry.network.prefixlen))

#: Addresses where clouds serve instance metadata and credentials: never reachable, named in refusals.
METADATA_ADDRESSES: Mapping[IPAddress, str] = {
    IPv4Address("169.254.169.254"): "the cloud metadata address",
    IPv4Address("169.254.170.2"): "the container credentials address of AWS ECS",
    IPv4Address("100.100.100.200"): "the metadata address of Alibaba Cloud",
    IPv6Address("fd00:ec2::254"): "the IPv6 metadata address of AWS",
}


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """What an address is, why, and (for IPv6 forms that embed one) which IPv4 address it carries.

    Attributes:
        address: The address classified.
        address_class: Its class.
        network: The special-purpose range it falls in, or None for a global address.
        detail: What that range is and the RFC that reserves it (or the metadata service it hosts).
        embedded_ipv4: The IPv4 address inside an :attr:`AddressClass.EMBEDDED_IPV4` form (for
            Teredo, the client's address), else None.
    """

    address: IPAddress
    address_class: AddressClass
    network: IPNetwork | None
    detail: str
    embedded_ipv4: IPv4Address | None = None

    def describe(self) -> str:
        """Say in words what the address is, e.g. ``10.1.2.3 is private (RFC 1918)``."""
        text = f"{self.address} is {_CLASS_WORDS[self.address_class]}"
        if self.detail:
            text += f" ({self.detail})"
        if self.embedded_ipv4 is not None:
            inner = describe_address(self.embedded_ipv4)
            text += f" carrying the IPv4 address {self.embedded_ipv4}, which is {_CLASS_WORDS[inner.address_class]}"
        return text


@functools.lru_cache(maxsize=4096)
def describe_address(address: IPAddress) -> AddressInfo:
    """Classify ``address`` and keep the range, the reason and any embedded IPv4 address.

    Answers are remembered (4,096 addresses): the proxy asks about the same few addresses at
    every connection, and the answer of an address never changes.

    Args:
        address: An IPv4 or IPv6 address (an IPv6 zone such as ``%eth0`` is ignored for the lookup).

    Returns:
        The classification with its explanation.
    """
    if isinstance(address, IPv4Address):
        table = _V4_BY_SPECIFICITY
    elif isinstance(address, IPv6Address):
        table = _V6_BY_SPECIFICITY
    else:
        raise TypeError(f"expected an IPv4Address or IPv6Address, got {type(address).__name__}")
    entry = next((candidate for candidate in table if address in candidate.network), None)
    if entry is None:
        if isinstance(address, IPv6Address) and address not in _IPV6_GLOBAL_UNICAST:
            entry = _IPV6_OUTSIDE_GLOBAL_UNICAST
        else:
            return AddressInfo(address, AddressClass.GLOBAL, None, "")
    detail = METADATA_ADDRESSES.get(address, entry.detail)
    embedded = entry.embedded(address) if entry.embedded is not None and isinstance(address, IPv6Address) else None
    return AddressInfo(address, entry.address_class, entry.network, detail, embedded)


def classify(address: IPAddress) -> AddressClass:
    """Return the class of ``address``; only :attr:`AddressClass.GLOBAL` may be dialled."""
    return describe_address(address).address_class


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the proxy may dial an address, and why, in words meant for people and logs.

    Attributes:
        allowed: True when the address may be dialled.
        reason: For instance ``169.254.169.254 is link-local (the cloud metadata address): refused``.
        address_class: The address's class: a short, stable label for metrics.
        operator_denied: Refused because the operator's deny list names it (whatever its class).
    """

    allowed: bool
    reason: str
    address_class: AddressClass
    operator_denied: bool = False


# What no test allow range may touch, even with consent: reaching these from a bubble would expose
# the proxy's own machine (loopback, and 0.0.0.0 and :: which Linux routes to it), the cloud's
# credentials, or an IPv4 host hidden in an IPv6 form.
_NEVER_ALLOWED: tuple[tuple[IPNetwork, str], ...] = (
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv6Network("::1/128"), "loopback"),
    (IPv4Network("0.0.0.0/8"), "'this network', which reaches the proxy's own host"),
    (IPv6Network("::/128"), "the unspecified address, which reaches the proxy's own host"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv6Network("ff00::/8"), "multicast"),
    (IPv4Network("255.255.255.255/32"), "the limited broadcast address"),
    *((ip_network(metadata), description) for metadata, description in METADATA_ADDRESSES.items()),
    *((entry.network, entry.detail) for entry in _IPV6_RANGES if entry.embedded is not None),
)

#: The widest test allow range accepted, per IP version: a test needs a few namespace addresses.
MAX_ALLOW_RANGE_PREFIX: Mapping[int, int] = {4: 16, 6: 48}


def _check_allow_range(network: IPNetwork) -> None:
    widest = MAX_ALLOW_RANGE_PREFIX[network.version]
    if network.prefixlen < widest:
        raise EgressConfigError(
            f"test allow range {network} is wider than /{widest}: list the few networks the test servers use"
        )
    for forbidden, description in _NEVER_ALLOWED:
        if network.version == forbidden.version and network.overlaps(forbidden):
            raise EgressConfigError(
                f"test allow range {network} overlaps {forbidden} ({description}), which is never allowed"
            )


@dataclass(frozen=True, slots=True)
class DenyEntry:
    """An entry of the operator's deny list: a network (one address: a /32 or /128), and a port or all ports.

    Attributes:
        network: The addresses denied.
        port: The one port denied, or None for every port.
    """

    network: IPNetwork
    port: int | None = None

    def __str__(self) -> str:
        return str(self.network) if self.port is None else f"{self.network} port {self.port}"

    def matches(self, address: IPAddress, port: int | None) -> bool:
        """Whether dialling ``address`` (on ``port``; None: any) is denied by this entry."""
        return (
            address.version == self.network.version
            and address in self.network
            and (self.port is None or port is None or port == self.port)
        )


#: Verdicts remembered per policy: the policy is immutable, and so is each verdict.
_MAX_VERDICTS = 4096


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which resolved addresses the proxy may dial: global unicast only, less a deny list, plus test-only ranges.

    ``deny`` is the operator's deny list (``INFRACALC_EGRESS_DENY_RANGES`` and
    ``INFRACALC_EGRESS_DENY_ADDRESSES``): addresses that are globally routable but must not be
    reached from a bubble, such as the platform's own public addresses. It is checked first, after
    resolution, and wins over everything, test allow ranges included.

    ``allow_ranges`` is an escape hatch for integration tests only (like Smokescreen's allow-range):
    it lets the proxy reach test servers on private addresses inside network namespaces that the
    tests create. Production configuration cannot turn it on by accident: :meth:`from_env` reads it
    only together with an explicit consent phrase, and every range, however it is given, is refused
    when it is wider than /16 (IPv4) or /48 (IPv6), or overlaps loopback, 0.0.0.0/8, ``::``,
    multicast, broadcast, a cloud metadata address or an IPv6 form that embeds IPv4.

    Attributes:
        allow_ranges: Test-only networks whose addresses are allowed although not global.
        deny: The operator's deny list.
    """

    allow_ranges: tuple[IPNetwork, ...] = ()
    deny: tuple[DenyEntry, ...] = ()
    _verdicts: dict[tuple[IPAddress, int | None], Verdict] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    #: ``INFRACALC_EGRESS_TEST_ALLOW_RANGES`` (tests only): private networks the proxy may dial, honoured only with
    #: ``INFRACALC_EGRESS_TEST_MODE`` (never loopback or metadata addresses).
    TEST_ALLOW_RANGES_VARIABLE: ClassVar[str] = "INFRACALC_EGRESS_TEST_ALLOW_RANGES"
    #: ``INFRACALC_EGRESS_TEST_MODE`` (tests only): must be ``i-understand-this-disables-ssrf-protection`` for the test
    #: ranges and hosts file to be honoured.
    TEST_MODE_VARIABLE: ClassVar[str] = "INFRACALC_EGRESS_TEST_MODE"
    TEST_MODE_CONSENT: ClassVar[str] = "i-understand-this-disables-ssrf-protection"
    #: ``INFRACALC_EGRESS_DENY_RANGES``: networks the proxy never dials, checked after resolution (``203.0.113.0/24``,
    #: ``[2001:db8::/32]:443``), comma- or space-separated, each with an optional port.
    DENY_RANGES_VARIABLE: ClassVar[str] = "INFRACALC_EGRESS_DENY_RANGES"
    #: ``INFRACALC_EGRESS_DENY_ADDRESSES``: single addresses the proxy never dials (``198.51.100.7:8443``), likewise.
    DENY_ADDRESSES_VARIABLE: ClassVar[str] = "INFRACALC_EGRESS_DENY_ADDRESSES"

    def __post_init__(self) -> None:
        for network in self.allow_ranges:
            if not isinstance(network, IPv4Network | IPv6Network):
                raise EgressConfigError(f"test allow range {network!r} is not an IPv4Network or IPv6Network")
            _check_allow_range(network)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AddressPolicy:
        """Read the policy from ``env`` (default: the process environment).

        The deny list: ``INFRACALC_EGRESS_DENY_RANGES`` (networks in CIDR notation) and
        ``INFRACALC_EGRESS_DENY_ADDRESSES`` (single addresses), separated by commas or spaces, each
        with an optional port: ``203.0.113.0/24``, ``198.51.100.7:8443``, ``[2001:db8::/32]:443``.

        ``INFRACALC_EGRESS_TEST_ALLOW_RANGES`` (networks in CIDR notation, separated by commas or
        spaces) is honoured only when ``INFRACALC_EGRESS_TEST_MODE`` is exactly
        ``i-understand-this-disables-ssrf-protection``; without it the ranges are refused rather
        than ignored, so that a stray setting is noticed at start.

        Raises:
            EgressConfigError: The ranges are set without the consent phrase, an entry is
                malformed, or the ranges break the rules in the class docstring.
        """
        env = os.environ if env is None else env
        deny = tuple(
            _parse_deny_entry(item, variable, single=variable == cls.DENY_ADDRESSES_VARIABLE)
            for variable in (cls.DENY_RANGES_VARIABLE, cls.DENY_ADDRESSES_VARIABLE)
            for item in env.get(variable, "").replace(",", " ").split()
        )
        raw = env.get(cls.TEST_ALLOW_RANGES_VARIABLE, "").strip()
        if not raw:
            return cls(deny=deny)
        if env.get(cls.TEST_MODE_VARIABLE) != cls.TEST_MODE_CONSENT:
            raise EgressConfigError(
                f"{cls.TEST_ALLOW_RANGES_VARIABLE} is set, but it is for integration tests only and disables part "
                f"of the egress proxy's protection; set {cls.TEST_MODE_VARIABLE}={cls.TEST_MODE_CONSENT} "
                f"to use it, or unset {cls.TEST_ALLOW_RANGES_VARIABLE}"
            )
        ranges = tuple(_parse_network(item) for item in raw.replace(",", " ").split())
        policy = cls(allow_ranges=ranges, deny=deny)
        logger.warning(
            "egress test mode: the proxy may dial these non-global ranges: %s",
            ", ".join(str(network) for network in ranges),
        )
        return policy

    def check(self, address: IPAddress, port: int | None = None) -> Verdict:
        """Decide whether the proxy may dial ``address`` (on ``port``; None: on some port), with the reason.

        Remembered per policy (4,096 verdicts): the policy is immutable, and so is the verdict.
        """
        key = (address, port)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            verdict = self._verdicts[key] = _verdict(self, address, port)
        return verdict


def _verdict(policy: AddressPolicy, address: IPAddress, port: int | None) -> Verdict:
    """:meth:`AddressPolicy.check`'s answer."""
    for entry in policy.deny:
        if entry.matches(address, port):
            return Verdict(
                False,
                f"{address} is on the operator's deny list ({entry}): refused",
                classify(address),
                operator_denied=True,
            )
    info = describe_address(address)
    if info.address_class is AddressClass.GLOBAL:
        return Verdict(True, f"{info.describe()}: allowed", info.address_class)
    for network in policy.allow_ranges:
        if network.version == address.version and address in network:
            return Verdict(
                True,
                f"{info.describe()} but inside the test-only allow range {network}: allowed",
                info.address_class,
            )
    return Verdict(False, f"{info.describe()}: refused", info.address_class)


def _parse_deny_entry(text: str, variable: str, *, single: bool) -> DenyEntry:
    """One deny-list entry: ``network`` or ``address``, with ``:port`` (``[v6]:port`` for IPv6) or without."""
    what = "an address" if single else "a network in CIDR notation"
    problem = EgressConfigError(
        f"{variable}: {text!r} is not {what} with an optional port (203.0.113.7, 198.51.100.0/24:443, "
        "[2001:db8::/32]:443)"
    )
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise problem
        port_text = after[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        network = ip_network(host, strict=True)
        port = int(port_text) if port_text else None
    except ValueError:
        raise problem from None
    if (single and network.num_addresses != 1) or (port is not None and not 1 <= port <= 65535):  # noqa: PLR2004
        raise problem
    return DenyEntry(network, port)


def _parse_network(text: str) -> IPNetwork:
    try:
        return ip_network(text, strict=True)
    except ValueError:
        raise EgressConfigError(
            f"{AddressPolicy.TEST_ALLOW_RANGES_VARIABLE}: {text!r} is not a network in CIDR notation "
            "(such as 10.200.0.0/24) with no host bits set"
        ) from None


async def _system_resolver(host: str, port: int) -> Sequence[AddrInfo]:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


@functools.lru_cache(maxsize=4096)
def _parse_address(text: str) -> IPAddress:
    """``ip_address(text)``, remembered: a resolver answers with the same few addresses again and again."""
    return ip_address(text)


def _unique_addresses(entries: Iterable[AddrInfo]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in entries:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = _parse_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def resolve_once(
    host: str, port: int, *, resolver: Resolver | None = None, timeout: float = 5.0
) -> list[IPAddress]:
    """Resolve ``host`` once and return every address of the answer, in its order, without repeats.

    Args:
        host: The name to resolve (already normalised, see :func:`infracalc.egress.hosts.normalise_host`).
        port: The port that will be dialled (passed on to the resolver).
        resolver: Resolves like :meth:`asyncio.AbstractEventLoop.getaddrinfo`; default: the running
            loop's ``getaddrinfo`` for stream sockets.
        timeout: Seconds to wait for the answer (5 s, like Smokescreen).

    Returns:
        The addresses, IPv4 and IPv6; :func:`choose` decides which one may be dialled.

    Raises:
        ResolutionTimeout: No answer within ``timeout``.
        ResolutionFailed: The name does not resolve, or resolves to no IP address.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    resolve = resolver if resolver is not None else _system_resolver
    try:
        async with asyncio.timeout(timeout):
            entries = await resolve(host, port)
    except TimeoutError:
        raise ResolutionTimeout(f"resolving {host} took longer than {timeout:g} s") from None
    except socket.gaierror as error:
        raise ResolutionFailed(f"{host} does not resolve: {error.strerror or error}") from None
    try:
        addresses = _unique_addresses(entries)
    except ValueError as error:
        raise ResolutionFailed(f"the resolver answered for {host} with something not an IP address: {error}") from None
    if not addresses:
        raise ResolutionFailed(f"{host} resolves to no IP address")
    return addresses


def choose(addresses: Sequence[IPAddress], policy: AddressPolicy, port: int | None = None) -> IPAddress:
    """Return the address to dial: the first one, provided that every address is allowed.

    A name whose answer mixes allowed and refused addresses is refused whole, even though one
    allowed address would be enough to connect: such an answer is what DNS-rebinding and similar
    tricks produce (a public address to pass a check, a private one for the client library or a
    retry to use), and no honest public API needs to publish a private or loopback address beside
    its public ones. Refusing the name also keeps the verdict independent of the answer's order.

    Args:
        addresses: Every address of one answer, as :func:`resolve_once` returns them.
        policy: Which addresses may be dialled.
        port: The port that will be dialled (the operator's deny list may name ports).

    Returns:
        The first address, which the proxy then connects to (and only to it).

    Raises:
        AddressRefused: Some address is not allowed; the error carries its verdict.
        ResolutionFailed: ``addresses`` is empty.
    """
    if not addresses:
        raise ResolutionFailed("there is no address to choose from")
    for address in addresses:
        verdict = policy.check(address, port)
        if not verdict.allowed:
            others = "" if len(addresses) == 1 else f" (one of {len(addresses)} addresses in the answer)"
            raise AddressRefused(f"{verdict.reason}{others}", verdict)
    return addresses[0]

"""Address classes, the address policy and its test-only allow ranges, resolving once and choosing."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import pytest

from infracalc.egress import (
    AddressClass,
    AddressPolicy,
    AddressRefused,
    EgressConfigError,
    EgressError,
    IPAddress,
    ResolutionFailed,
    ResolutionTimeout,
    choose,
    classify,
    describe_address,
    resolve_once,
)
from infracalc.errors import InfracalcError

CONSENT = {"INFRACALC_EGRESS_TEST_MODE": "i-understand-this-disables-ssrf-protection"}

# (address, class, embedded IPv4 address or None). These addresses are only classified, never contacted.
CLASSES: list[tuple[str, AddressClass, str | None]] = [
    ("8.8.8.8", AddressClass.GLOBAL, None),
    ("1.1.1.1", AddressClass.GLOBAL, None),
    ("2606:4700:4700::1111", AddressClass.GLOBAL, None),
    ("2a00:1450:4007:80e::200e", AddressClass.GLOBAL, None),
    ("127.0.0.1", AddressClass.LOOPBACK, None),
    ("127.255.255.254", AddressClass.LOOPBACK, None),
    ("::1", AddressClass.LOOPBACK, None),
    ("10.1.2.3", AddressClass.PRIVATE, None),
    ("172.16.0.1", AddressClass.PRIVATE, None),
    ("172.31.255.255", AddressClass.PRIVATE, None),
    ("192.168.1.1", AddressClass.PRIVATE, None),
    ("fec0::1", AddressClass.PRIVATE, None),
    ("169.254.169.254", AddressClass.LINK_LOCAL, None),
    ("169.254.0.1", AddressClass.LINK_LOCAL, None),
    ("fe80::1", AddressClass.LINK_LOCAL, None),
    ("fe80::1%eth0", AddressClass.LINK_LOCAL, None),
    ("100.64.0.1", AddressClass.CGNAT, None),
    ("100.127.255.254", AddressClass.CGNAT, None),
    ("fc00::1", AddressClass.ULA, None),
    ("fd12::1", AddressClass.ULA, None),
    ("fd00:ec2::254", AddressClass.ULA, None),
    ("224.0.0.1", AddressClass.MULTICAST, None),
    ("239.255.255.250", AddressClass.MULTICAST, None),
    ("ff02::1", AddressClass.MULTICAST, None),
    ("0.0.0.0", AddressClass.UNSPECIFIED, None),  # noqa: S104 - classified, never bound
    ("::", AddressClass.UNSPECIFIED, None),
    ("0.1.2.3", AddressClass.THIS_NETWORK, None),
    ("255.255.255.255", AddressClass.BROADCAST, None),
    ("240.0.0.1", AddressClass.RESERVED, None),
    ("192.0.0.9", AddressClass.RESERVED, None),
    ("192.88.99.1", AddressClass.RESERVED, None),
    ("100::1", AddressClass.RESERVED, None),
    ("2001:4:112::1", AddressClass.RESERVED, None),
    ("5f00::1", AddressClass.RESERVED, None),
    ("4000::1", AddressClass.RESERVED, None),
    ("192.0.2.1", AddressClass.DOCUMENTATION, None),
    ("198.51.100.7", AddressClass.DOCUMENTATION, None),
    ("203.0.113.9", AddressClass.DOCUMENTATION, None),
    ("2001:db8::1", AddressClass.DOCUMENTATION, None),
    ("3fff::1", AddressClass.DOCUMENTATION, None),
    ("198.18.0.1", AddressClass.BENCHMARK, None),
    ("198.19.255.254", AddressClass.BENCHMARK, None),
    ("2001:2::1", AddressClass.BENCHMARK, None),
    ("::ffff:127.0.0.1", AddressClass.EMBEDDED_IPV4, "127.0.0.1"),
    ("::ffff:10.0.0.1", AddressClass.EMBEDDED_IPV4, "10.0.0.1"),
    ("::ffff:8.8.8.8", AddressClass.EMBEDDED_IPV4, "8.8.8.8"),
    ("::ffff:0:a9fe:a9fe", AddressClass.EMBEDDED_IPV4, "169.254.169.254"),
    ("::10.0.0.1", AddressClass.EMBEDDED_IPV4, "10.0.0.1"),
    ("64:ff9b::a00:1", AddressClass.EMBEDDED_IPV4, "10.0.0.1"),
    ("64:ff9b::7f00:1", AddressClass.EMBEDDED_IPV4, "127.0.0.1"),
    ("64:ff9b:1::a9fe:a9fe", AddressClass.EMBEDDED_IPV4, "169.254.169.254"),
    ("64:ff9b:1:abcd::a00:1", AddressClass.EMBEDDED_IPV4, "10.0.0.1"),
    ("2002:a00:1::", AddressClass.EMBEDDED_IPV4, "10.0.0.1"),
    ("2002:7f00:1::1", AddressClass.EMBEDDED_IPV4, "127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", AddressClass.EMBEDDED_IPV4, "192.0.2.45"),
    ("2001:0:c633:6401:8000:f227:3fff:fdd2", AddressClass.EMBEDDED_IPV4, "192.0.2.45"),
]


@pytest.mark.parametrize(("text", "expected", "embedded"), CLASSES)
def test_classify_names_every_special_range(text: str, expected: AddressClass, embedded: str | None) -> None:
    address = ip_address(text)
    assert classify(address) is expected
    info = describe_address(address)
    assert info.address_class is expected
    assert info.embedded_ipv4 == (IPv4Address(embedded) if embedded else None)
    assert (info.network is None) == (expected is AddressClass.GLOBAL)


def test_every_address_class_is_covered_by_the_table() -> None:
    assert {expected for _, expected, _ in CLASSES} == set(AddressClass)


@pytest.mark.parametrize(("text", "expected", "embedded"), CLASSES)
def test_only_global_addresses_may_be_dialled(text: str, expected: AddressClass, embedded: str | None) -> None:
    verdict = AddressPolicy().check(ip_address(text))
    assert verdict.allowed is (expected is AddressClass.GLOBAL)
    assert verdict.address_class is expected
    assert verdict.reason.endswith(": allowed" if verdict.allowed else ": refused")
    assert verdict.reason.startswith(str(ip_address(text)))


def test_an_ipv4_form_embedded_in_ipv6_is_refused_even_when_the_ipv4_address_is_global() -> None:
    verdict = AddressPolicy().check(ip_address("::ffff:8.8.8.8"))
    assert not verdict.allowed
    assert "IPv4-mapped" in verdict.reason
    assert "8.8.8.8, which is globally routable" in verdict.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("169.254.169.254", "169.254.169.254 is link-local (the cloud metadata address): refused"),
        ("10.1.2.3", "10.1.2.3 is private (RFC 1918): refused"),
        (
            "100.100.100.200",
            "100.100.100.200 is carrier-grade NAT shared space (the metadata address of Alibaba Cloud)",
        ),
        ("fd00:ec2::254", "fd00:ec2::254 is a unique local address (the IPv6 metadata address of AWS): refused"),
        (
            "64:ff9b::7f00:1",
            "(NAT64 well-known prefix, RFC 6052) carrying the IPv4 address 127.0.0.1, which is loopback",
        ),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "(Teredo, RFC 4380) carrying the IPv4 address 192.0.2.45"),
        ("8.8.8.8", "8.8.8.8 is globally routable: allowed"),
    ],
)
def test_the_reason_says_what_the_address_is(text: str, reason: str) -> None:
    assert reason in AddressPolicy().check(ip_address(text)).reason


def test_classify_refuses_what_is_not_an_address() -> None:
    with pytest.raises(TypeError, match="IPv4Address or IPv6Address"):
        classify("127.0.0.1")  # type: ignore[arg-type]


# --- the test-only allow ranges -------------------------------------------------------------


def test_no_allow_ranges_without_the_variable() -> None:
    assert AddressPolicy.from_env({}) == AddressPolicy()
    assert AddressPolicy.from_env({**CONSENT, "INFRACALC_EGRESS_TEST_ALLOW_RANGES": "  "}) == AddressPolicy()


@pytest.mark.parametrize(
    "mode",
    [
        None,
        "",
        "1",
        "true",
        "yes",
        "I-UNDERSTAND-THIS-DISABLES-SSRF-PROTECTION",
        "i-understand-this-disables-ssrf-protection ",
    ],
)
def test_allow_ranges_without_the_exact_consent_phrase_are_refused(mode: str | None) -> None:
    env = {"INFRACALC_EGRESS_TEST_ALLOW_RANGES": "10.200.0.0/24"}
    if mode is not None:
        env["INFRACALC_EGRESS_TEST_MODE"] = mode
    with pytest.raises(
        EgressConfigError, match="INFRACALC_EGRESS_TEST_MODE=i-understand-this-disables-ssrf-protection"
    ):
        AddressPolicy.from_env(env)


def test_allow_ranges_with_consent_let_test_servers_through(caplog: pytest.LogCaptureFixture) -> None:
    env = {**CONSENT, "INFRACALC_EGRESS_TEST_ALLOW_RANGES": "10.200.0.0/24, fd00:1234:5678::/64"}
    policy = AddressPolicy.from_env(env)
    assert policy.allow_ranges == (IPv4Network("10.200.0.0/24"), IPv6Network("fd00:1234:5678::/64"))
    inside = policy.check(ip_address("10.200.0.5"))
    assert inside.allowed
    assert inside.reason == (
        "10.200.0.5 is private (RFC 1918) but inside the test-only allow range 10.200.0.0/24: allowed"
    )
    assert policy.check(ip_address("fd00:1234:5678::9")).allowed
    assert not policy.check(ip_address("10.201.0.5")).allowed
    assert not policy.check(ip_address("127.0.0.1")).allowed
    assert not policy.check(ip_address("::ffff:10.200.0.5")).allowed, "an IPv4 range does not open IPv6 forms"
    assert "egress test mode" in caplog.text


def test_from_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRACALC_EGRESS_TEST_ALLOW_RANGES", "10.200.0.0/24")
    monkeypatch.delenv("INFRACALC_EGRESS_TEST_MODE", raising=False)
    with pytest.raises(EgressConfigError):
        AddressPolicy.from_env()
    monkeypatch.setenv("INFRACALC_EGRESS_TEST_MODE", CONSENT["INFRACALC_EGRESS_TEST_MODE"])
    assert AddressPolicy.from_env().allow_ranges == (IPv4Network("10.200.0.0/24"),)


@pytest.mark.parametrize(
    ("ranges", "problem"),
    [
        ("10.0.0.0/8", "wider than /16"),
        ("192.168.0.0/15", "wider than /16"),
        ("fd00::/8", "wider than /48"),
        ("fd00:1::/47", "wider than /48"),
        ("127.0.0.0/24", "loopback"),
        ("127.0.0.1/32", "loopback"),
        ("::1/128", "loopback"),
        ("0.0.0.0/16", "this network"),
        ("::/128", "unspecified"),
        ("169.254.169.0/24", "the cloud metadata address"),
        ("169.254.0.0/16", "the cloud metadata address"),
        ("100.100.100.0/24", "Alibaba"),
        ("fd00:ec2::/64", "AWS"),
        ("224.0.0.0/24", "multicast"),
        ("ff02::/64", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("::ffff:10.0.0.0/120", "IPv4-mapped"),
        ("64:ff9b::/120", "NAT64"),
        ("2002:a00::/48", "6to4"),
        ("10.200.0.0/24, 127.0.0.0/24", "loopback"),
        ("10.0.0.1/24", "no host bits"),
        ("not-a-network", "CIDR"),
    ],
)
def test_unsafe_or_malformed_allow_ranges_are_refused_even_with_consent(ranges: str, problem: str) -> None:
    with pytest.raises(EgressConfigError, match=problem):
        AddressPolicy.from_env({**CONSENT, "INFRACALC_EGRESS_TEST_ALLOW_RANGES": ranges})


@pytest.mark.parametrize("network", ["10.0.0.0/16", "fd00:1::/48", "192.168.77.0/24", "10.200.0.5/32"])
def test_the_widest_safe_ranges_are_accepted(network: str) -> None:
    policy = AddressPolicy.from_env({**CONSENT, "INFRACALC_EGRESS_TEST_ALLOW_RANGES": network})
    assert policy.allow_ranges == (ip_network(network),)


def test_the_constructor_enforces_the_same_range_rules() -> None:
    with pytest.raises(EgressConfigError, match="loopback"):
        AddressPolicy(allow_ranges=(IPv4Network("127.0.0.0/24"),))
    with pytest.raises(EgressConfigError, match="not an IPv4Network"):
        AddressPolicy(allow_ranges=("10.0.0.0/24",))  # type: ignore[arg-type]


# --- choosing the one address to dial -------------------------------------------------------


def _addresses(*texts: str) -> list[IPAddress]:
    return [ip_address(text) for text in texts]


def test_choose_returns_the_first_address_when_all_are_global() -> None:
    addresses = _addresses("2606:4700:4700::1111", "8.8.8.8")
    assert choose(addresses, AddressPolicy()) == IPv6Address("2606:4700:4700::1111")


@pytest.mark.parametrize(
    "answer",
    [
        ("8.8.8.8", "10.0.0.1"),
        ("10.0.0.1", "8.8.8.8"),
        ("8.8.8.8", "1.1.1.1", "169.254.169.254"),
        ("2606:4700:4700::1111", "::ffff:127.0.0.1"),
    ],
)
def test_choose_refuses_an_answer_with_any_refused_address(answer: tuple[str, ...]) -> None:
    with pytest.raises(AddressRefused) as caught:
        choose(_addresses(*answer), AddressPolicy())
    assert not caught.value.verdict.allowed
    assert caught.value.verdict.address_class is not AddressClass.GLOBAL
    assert f"one of {len(answer)} addresses" in str(caught.value)


def test_choose_allows_a_test_server_inside_an_allow_range() -> None:
    policy = AddressPolicy(allow_ranges=(IPv4Network("10.200.0.0/24"),))
    assert choose(_addresses("10.200.0.7"), policy) == IPv4Address("10.200.0.7")
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is loopback"):
        choose(_addresses("10.200.0.7", "127.0.0.1"), policy)


def test_choose_refuses_an_empty_answer() -> None:
    with pytest.raises(ResolutionFailed, match="no address"):
        choose([], AddressPolicy())


# --- resolving once -------------------------------------------------------------------------


class FakeResolver:
    """Answers like getaddrinfo from a fixed list and records what it was asked."""

    def __init__(
        self, answer: Sequence[tuple[Any, ...]] = (), error: Exception | None = None, delay: float = 0
    ) -> None:
        self.answer = answer
        self.error = error
        self.delay = delay
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[tuple[Any, ...]]:
        self.calls.append((host, port))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.answer


def _v4(address: str) -> tuple[Any, ...]:
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))


def _v6(address: str) -> tuple[Any, ...]:
    return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 443, 0, 0))


async def test_resolve_once_returns_every_address_once_in_order() -> None:
    resolver = FakeResolver(
        [_v4("93.184.215.14"), _v6("2606:2800:21f:cb07:6820:80da:af6b:8b2c"), _v4("93.184.215.14"), _v4("10.0.0.1")]
    )
    addresses = await resolve_once("api.example.org", 443, resolver=resolver)
    assert addresses == _addresses("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "10.0.0.1")
    assert resolver.calls == [("api.example.org", 443)], "resolved exactly once"
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.1 is private"):
        choose(addresses, AddressPolicy())


async def test_resolve_once_skips_entries_that_are_not_ip() -> None:
    resolver = FakeResolver([(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/run/socket",)), _v6("fe80::1%lo")])
    assert await resolve_once("host.example.org", 443, resolver=resolver) == [ip_address("fe80::1%lo")]


async def test_resolve_once_times_out() -> None:
    resolver = FakeResolver([_v4("8.8.8.8")], delay=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ResolutionTimeout, match=r"slow\.example\.org took longer than 0\.05 s"):
        await resolve_once("slow.example.org", 443, resolver=resolver, timeout=0.05)
    assert loop.time() - started < 1


@pytest.mark.parametrize(
    ("resolver", "message"),
    [
        (FakeResolver(error=socket.gaierror(socket.EAI_NONAME, "Name or service not known")), "does not resolve"),
        (FakeResolver([]), "resolves to no IP address"),
        (FakeResolver([(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("not-an-ip", 443))]), "not an IP address"),
    ],
)
async def test_resolve_once_fails_clearly(resolver: FakeResolver, message: str) -> None:
    with pytest.raises(ResolutionFailed, match=message):
        await resolve_once("missing.example.org", 443, resolver=resolver)


async def test_resolve_once_refuses_a_timeout_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        await resolve_once("api.example.org", 443, resolver=FakeResolver([_v4("8.8.8.8")]), timeout=0)


async def test_the_default_resolver_is_the_event_loops_getaddrinfo() -> None:
    # A numeric host is answered by getaddrinfo itself: no DNS query leaves the machine.
    assert await resolve_once("127.0.0.1", 443) == [IPv4Address("127.0.0.1")]


def test_errors_belong_to_the_infracalc_hierarchy() -> None:
    for error in (EgressConfigError, AddressRefused, ResolutionFailed, ResolutionTimeout):
        assert issubclass(error, EgressError)
    assert issubclass(EgressError, InfracalcError)


def test_importing_the_egress_package_loads_no_web_framework() -> None:
    frameworks = "('litestar', 'jupyterhub', 'msgspec', 'uvicorn')"
    code = f"import sys, infracalc.egress; print(sorted(m for m in {frameworks} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_operators_deny_list_wins_over_everything_with_or_without_a_port() -> None:
    policy = AddressPolicy.from_env(
        {
            "INFRACALC_EGRESS_DENY_RANGES": "198.51.100.0/24:443, [2001:db8::/32]",
            "INFRACALC_EGRESS_DENY_ADDRESSES": "93.184.216.34 10.231.200.3:8443",
            "INFRACALC_EGRESS_TEST_MODE": AddressPolicy.TEST_MODE_CONSENT,
            "INFRACALC_EGRESS_TEST_ALLOW_RANGES": "10.231.200.0/24",
        }
    )
    public = ip_address("93.184.216.34")
    assert not policy.check(public, 443).allowed
    assert policy.check(public, 443).operator_denied
    expected = "93.184.216.34 is on the operator's deny list (93.184.216.34/32): refused"
    assert policy.check(public, 443).reason == expected
    assert not policy.check(ip_address("198.51.100.7"), 443).allowed
    assert "198.51.100.0/24 port 443" in policy.check(ip_address("198.51.100.7"), 443).reason
    assert not policy.check(ip_address("198.51.100.7"), 80).operator_denied  # another port: its own class decides
    assert policy.check(ip_address("2001:db8::1"), 80).operator_denied
    # Even a test-only allow range does not lift the deny list.
    assert not policy.check(ip_address("10.231.200.3"), 8443).allowed
    assert policy.check(ip_address("10.231.200.3"), 443).allowed
    assert policy.check(ip_address("8.8.8.8"), 443).allowed
    with pytest.raises(AddressRefused, match="deny list"):
        choose([ip_address("8.8.8.8"), public], policy, 443)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INFRACALC_EGRESS_DENY_RANGES", "198.51.100.1/24"),  # host bits set
        ("INFRACALC_EGRESS_DENY_RANGES", "198.51.100.0/24:0"),
        ("INFRACALC_EGRESS_DENY_RANGES", "198.51.100.0/24:https"),
        ("INFRACALC_EGRESS_DENY_RANGES", "[2001:db8::/32"),
        ("INFRACALC_EGRESS_DENY_RANGES", "example.org"),
        ("INFRACALC_EGRESS_DENY_ADDRESSES", "198.51.100.0/24"),  # a network where an address is expected
        ("INFRACALC_EGRESS_DENY_ADDRESSES", "198.51.100.7:70000"),
    ],
)
def test_a_malformed_deny_entry_stops_the_start(variable: str, value: str) -> None:
    with pytest.raises(EgressConfigError, match=variable):
        AddressPolicy.from_env({variable: value})

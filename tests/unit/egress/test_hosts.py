"""Host names: the normal form, IP literals in every spelling, wildcard patterns and public suffixes."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from infracalc.egress import (
    EgressError,
    HostPattern,
    InvalidHost,
    InvalidHostPattern,
    is_public_suffix,
    normalise_host,
    parse_host_pattern,
    public_suffix_list_version,
)
from infracalc.egress import hosts as hosts_module

LABEL_63 = "a" * 63
# 3 labels of 63 + 1 of 61 + 3 dots = 253 octets.
NAME_253 = ".".join([LABEL_63, LABEL_63, LABEL_63, "b" * 61])


def _fullwidth(text: str) -> str:
    """Spell ASCII ``text`` in full-width forms (U+FF01 to U+FF5E), which UTS #46 maps back to ASCII."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org", "example.org"),
        ("EXAMPLE.ORG", "example.org"),
        ("Api.Example.Org", "api.example.org"),
        ("example.org.", "example.org"),
        ("API.example.org.", "api.example.org"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        (_fullwidth("example.com"), "example.com"),
        ("example。org", "example.org"),
        ("1password.com", "1password.com"),
        ("a-b-c.example.org", "a-b-c.example.org"),
        ("localhost", "localhost"),
        (f"{LABEL_63}.example", f"{LABEL_63}.example"),
        (NAME_253, NAME_253),
        (NAME_253 + ".", NAME_253),
    ],
)
def test_normalise_host(text: str, expected: str) -> None:
    assert normalise_host(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (".", "no labels"),
        ("example.org..", "empty label"),
        (".example.org", "empty label"),
        ("api..example.org", "empty label"),
        (f"{'a' * 64}.example", "64 octets long; the limit is 63"),
        (NAME_253 + "b", "254 octets long; the limit is 253"),
        (f"{'ü' * 60}.example", "not a valid internationalised label"),
        ("under_score.example.org", "underscore"),
        ("_dmarc.example.org", "underscore"),
        ("exa mple.org", "whitespace"),
        (" example.org", "whitespace"),
        ("example.org\n", "whitespace"),
        ("-api.example.org", "letters, digits and inner hyphens"),
        ("api-.example.org", "letters, digits and inner hyphens"),
        ("ex!ample.org", "letters, digits and inner hyphens"),
        ("example.org/path", "letters, digits and inner hyphens"),
        ("user@example.org", "letters, digits and inner hyphens"),
        ("%65xample.org", "letters, digits and inner hyphens"),
        ("ab--cd.example.org", "third and fourth characters"),
        ("xn--zz.example", "not valid punycode"),
        ("example.com:443", "give the port separately"),
        ("[example.com]", "give the port separately"),
    ],
)
def test_normalise_host_refuses_malformed_names(text: str, problem: str) -> None:
    with pytest.raises(InvalidHost, match=re.escape(problem)):
        normalise_host(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("2130706433", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0", "0.0.0.0"),  # noqa: S104 - an address in a table, never bound
        (_fullwidth("127.0.0.1"), "127.0.0.1"),
        ("127。0。0。1", "127.0.0.1"),
    ],
)
def test_normalise_host_refuses_ipv4_literals_in_every_notation(text: str, address: str) -> None:
    with pytest.raises(InvalidHost, match=rf"is the IPv4 address {re.escape(address)} in another notation"):
        normalise_host(text)


@pytest.mark.parametrize("text", ["1.2.3.4.5", "256.0.0.1", "127.0.0.08", "foo.123", "example.0x1f", "4294967296"])
def test_normalise_host_refuses_names_that_end_in_a_number(text: str) -> None:
    with pytest.raises(InvalidHost, match="ends in a number"):
        normalise_host(text)


@pytest.mark.parametrize(
    "text", ["::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "fe80::1", "[fe80::1]", "2001:db8::1", "::"]
)
def test_normalise_host_refuses_ipv6_literals_bare_or_bracketed(text: str) -> None:
    with pytest.raises(InvalidHost, match="is an IPv6 literal"):
        normalise_host(text)


@pytest.mark.parametrize(
    ("text", "host", "wildcard"),
    [
        ("api.example.org", "api.example.org", False),
        ("API.Example.org.", "api.example.org", False),
        ("*.example.org", "example.org", True),
        ("*.Example.ORG.", "example.org", True),
        ("*.api.example.org", "api.example.org", True),
        ("*.example.co.uk", "example.co.uk", True),
        ("*.someone.github.io", "someone.github.io", True),
        ("*.Bücher.example", "xn--bcher-kva.example", True),
        ("*.city.kobe.jp", "city.kobe.jp", True),
        # An exact rule names one host, even a host that is a public suffix: it covers nothing else.
        ("github.io", "github.io", False),
        ("co.uk", "co.uk", False),
    ],
)
def test_parse_host_pattern(text: str, host: str, wildcard: bool) -> None:
    pattern = parse_host_pattern(text)
    assert pattern == HostPattern(host=host, wildcard=wildcard)
    assert str(pattern) == (f"*.{host}" if wildcard else host)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("*", "bare '*'"),
        (" * ", "bare '*'"),
        ("**.example.org", "whole first label"),
        ("*example.org", "whole first label"),
        ("*.*.example.org", "whole first label"),
        ("api.*.example.org", "whole first label"),
        ("example.*", "whole first label"),
        ("a*.example.org", "whole first label"),
        ("*.com", "public suffix 'com'"),
        ("*.uk", "public suffix 'uk'"),
        ("*.co.uk", "public suffix 'co.uk'"),
        ("*.CO.UK.", "public suffix 'co.uk'"),
        ("*.github.io", "public suffix 'github.io'"),
        ("*.s3.amazonaws.com", "public suffix 's3.amazonaws.com'"),
        ("*.foo.kobe.jp", "public suffix 'foo.kobe.jp'"),
        ("*.internal", "public suffix 'internal'"),
        ("localhost", "single label"),
        ("intranet", "single label"),
    ],
)
def test_parse_host_pattern_refuses_unsafe_patterns(text: str, problem: str) -> None:
    with pytest.raises(InvalidHostPattern, match=re.escape(problem)):
        parse_host_pattern(text)


@pytest.mark.parametrize("text", ["127.0.0.1", "*.127.0.0.1", "2130706433", "[::1]", "*.", "", "*.under_score.org"])
def test_parse_host_pattern_refuses_invalid_hosts(text: str) -> None:
    with pytest.raises(InvalidHost):
        parse_host_pattern(text)


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("com", True),
        ("co.uk", True),
        ("github.io", True),
        ("s3.amazonaws.com", True),
        ("internal", True),
        ("example.org", False),
        ("example.co.uk", False),
        ("someone.github.io", False),
    ],
)
def test_is_public_suffix_counts_both_sections_of_the_list(host: str, public: bool) -> None:
    assert is_public_suffix(host) is public


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("api.example.org", "api.example.org", True),
        ("api.example.org", "API.Example.Org.", True),
        ("api.example.org", "example.org", False),
        ("api.example.org", "v2.api.example.org", False),
        ("api.example.org", "api.example.org.evil.com", False),
        ("*.example.org", "api.example.org", True),
        ("*.example.org", "a.b.example.org", True),
        ("*.example.org", "API.EXAMPLE.ORG.", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "badexample.org", False),
        ("*.example.org", "example.org.evil.com", False),
        ("*.example.org", "api.example.org.evil.com", False),
        ("*.xn--bcher-kva.example", "www.Bücher.example", True),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("*.example.org", "127.0.0.1", False),
        ("*.example.org", "under_score.example.org", False),
        ("*.example.org", "", False),
    ],
)
def test_host_pattern_matches(pattern: str, host: str, matches: bool) -> None:
    assert parse_host_pattern(pattern).matches(host) is matches


def test_the_public_suffix_list_is_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the public suffix list must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    hosts_module._public_suffix_list.cache_clear()
    try:
        with pytest.raises(InvalidHostPattern, match="public suffix"):
            parse_host_pattern("*.co.uk")
        assert parse_host_pattern("*.example.co.uk").wildcard
    finally:
        hosts_module._public_suffix_list.cache_clear()


def test_the_bundled_public_suffix_list_has_a_version() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_UTC", public_suffix_list_version())


def test_host_errors_belong_to_the_egress_hierarchy() -> None:
    assert issubclass(InvalidHostPattern, InvalidHost)
    assert issubclass(InvalidHost, EgressError)

"""Registered networks: strict CIDR form, not too wide, normalised (the API proves the 422s end to end)."""

from __future__ import annotations

import pytest

from infracalc.service.errors import InvalidInput
from infracalc.service.users.networks import MAX_NETWORKS, NETWORK_RULE, WIDEST_PREFIX, normalise_networks


def test_networks_are_normalised_deduplicated_and_sorted() -> None:
    given = ["2001:DB8:0:0::/48", "203.0.113.0/24", "10.1.0.0/16", "203.0.113.0/24", "2001:db8::/48", "::1/128"]
    assert normalise_networks(given) == ["10.1.0.0/16", "203.0.113.0/24", "::1/128", "2001:db8::/48"]


def test_the_widest_accepted_networks_and_no_networks_at_all() -> None:
    # One rule everywhere (API, console, enrollment): a site's network, IPv4 /16 and IPv6 /48, at widest.
    assert WIDEST_PREFIX == {4: 16, 6: 48}
    assert normalise_networks(["10.1.0.0/16", "2001:db8::/48"]) == ["10.1.0.0/16", "2001:db8::/48"]
    assert normalise_networks([]) == []
    assert "IPv4 /16 and IPv6 /48 at widest" in NETWORK_RULE


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0.0.0.0/0", "is every address"),
        ("::/0", "is every address"),
        ("128.0.0.0/1", "is too wide: IPv4 networks may be /16 at widest"),
        ("10.0.0.0/8", "is too wide: IPv4 networks may be /16 at widest"),
        ("10.0.0.0/15", "is too wide: IPv4 networks may be /16 at widest"),
        ("2001:db8::/47", "is too wide: IPv6 networks may be /48 at widest"),
        ("203.0.113.1/24", "has host bits set (did you mean 203.0.113.0/24?)"),
        ("2001:db8::1/48", "has host bits set (did you mean 2001:db8::/48?)"),
        ("203.0.113.0", "is not a network in CIDR form"),
        ("203.0.113.0/24 ", "is not a network in CIDR form"),
        ("203.0.113.0/024", "is not a network in CIDR form"),
        ("203.0.113.0/255.255.255.0", "is not a network in CIDR form"),
        ("fe80::%eth0/64", "is not a network in CIDR form"),
        ("203.0.113.0/24/8", "is not a network in CIDR form"),
        ("203.000.113.0/24", "is not a valid IPv4 or IPv6 network"),
        ("203.0.113.0/33", "is not a valid IPv4 or IPv6 network"),
        ("2001:db8::/129", "is not a valid IPv4 or IPv6 network"),
        ("::ffff:198.51.100.0/120", "is IPv4-mapped: write it as IPv4 (198.51.100.0/24)"),
    ],
)
def test_refused_networks_name_their_place_and_why(value: str, why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_networks(["198.51.100.0/24", value])
    assert refused.value.field == "networks[1]"
    assert str(refused.value).startswith(f"networks[1]: {value!r} {why}")


def test_at_most_twenty_networks() -> None:
    assert len(normalise_networks([f"10.{i}.0.0/16" for i in range(MAX_NETWORKS)])) == MAX_NETWORKS
    with pytest.raises(InvalidInput) as refused:
        normalise_networks([f"10.{i}.0.0/16" for i in range(MAX_NETWORKS + 1)])
    assert refused.value.field == "networks"

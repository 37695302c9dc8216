"""The one form of a bubble's address, written alike by the service (registration) and the proxy (each peer)."""

from __future__ import annotations

import pytest

from infracalc.egress import InvalidSourceAddress, source_address


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("10.233.0.2", "10.233.0.2"),
        (" 172.30.0.7 ", "172.30.0.7"),
        ("FD00:0233:0000::0002", "fd00:233::2"),
        ("::ffff:10.233.0.2", "10.233.0.2"),  # what a dual-stack listener reports for an IPv4 client
        ("fe80::1%eth0", "fe80::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_an_address_is_written_one_way(text: str, written: str) -> None:
    assert source_address(text) == written


@pytest.mark.parametrize("text", ["", "bubble.local", "10.233.0.0/30", "10.233.0.300", "0.0.0.0", "::", "224.0.0.1"])  # noqa: S104
def test_what_no_connection_comes_from_is_refused(text: str) -> None:
    with pytest.raises(InvalidSourceAddress):
        source_address(text)

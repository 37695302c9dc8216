"""The network proposed to an invitee: the socket peer, or X-Forwarded-For only as far as trusted proxies vouch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from litestar.datastructures import Headers

from infracalc.web.networks import proposed_network


def request(peer: str | None, forwarded: list[str]) -> Any:
    headers = Headers([(b"x-forwarded-for", line.encode()) for line in forwarded])
    return SimpleNamespace(client=None if peer is None else SimpleNamespace(host=peer), headers=headers)


def context(trusted: tuple[str, ...]) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(trusted_proxies=trusted))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("198.51.100.7", [], (), "198.51.100.7/32"),
        ("2001:db8::7", [], (), "2001:db8::7/128"),
        # Without a trusted proxy, a client's own header is ignored.
        ("198.51.100.7", ["203.0.113.9"], (), "198.51.100.7/32"),
        # Behind a trusted reverse proxy, the address it appended is believed, and only that one.
        ("10.0.0.2", ["192.0.2.66, 203.0.113.9"], ("10.0.0.0/24",), "203.0.113.9/32"),
        ("testclient", [], (), None),
        (None, [], (), None),
    ],
)
def test_the_proposed_network_is_where_the_request_really_comes_from(
    peer: str | None, forwarded: list[str], trusted: tuple[str, ...], expected: str | None
) -> None:
    assert proposed_network(request(peer, forwarded), context(trusted)) == expected

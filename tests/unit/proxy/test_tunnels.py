"""The per-bubble cap and the lookup by project."""

from __future__ import annotations

import pytest

from infracalc.proxy.tunnels import Tunnel, TunnelLimitReached, TunnelRegistry
from infracalc.proxy.wire import Destination, RequestKind


def tunnel(bubble: str, project: str) -> Tunnel:
    return Tunnel(bubble, project, RequestKind.CONNECT, Destination("a.example", 443), {}, "r1", None)


def test_a_bubble_cannot_hold_more_than_its_cap_and_others_are_unaffected() -> None:
    registry = TunnelRegistry(max_per_bubble=2)
    first, second = tunnel("b1", "p"), tunnel("b1", "p")
    registry.add(first)
    registry.add(second)
    with pytest.raises(TunnelLimitReached, match="b1"):
        registry.add(tunnel("b1", "p"))
    registry.add(tunnel("b2", "p"))
    registry.remove(first)
    registry.remove(first)
    registry.add(tunnel("b1", "p"))
    assert (registry.count("b1"), len(registry)) == (2, 3)


def test_open_connections_are_found_by_project() -> None:
    registry = TunnelRegistry(max_per_bubble=5)
    mine, theirs = tunnel("b1", "weather"), tunnel("b2", "cohort")
    registry.add(mine)
    registry.add(theirs)
    assert registry.of_projects({"weather"}) == [mine]
    assert set(registry.all()) == {mine, theirs}


def test_a_cut_before_the_relay_starts_is_remembered() -> None:
    waiting = tunnel("b1", "weather")
    waiting.cut("rule r1 was revoked")
    waiting.cut("later reason")
    assert waiting.cut_reason == "rule r1 was revoked"

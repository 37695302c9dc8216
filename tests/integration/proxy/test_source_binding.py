"""A bubble's credentials work from the bubble's own address only, from network namespaces.

The proxy sees the lab's bubbles directly (each from its own address), and a local hub's bubble
through the hub's forwarder and the proxy's forwarded socket (a PROXY line naming the bubble's
namespace address). The same valid token from another bubble, from the host, or before the hub knew
the bubble's address is refused with 407.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infracalc.hub import netns
from infracalc.hub.forwarders import Forwarders
from tests.fixtures.egress import EgressData, EgressProxyProcess, ProxyUnderTest
from tests.support.netns import Lab, Namespace

pytestmark = pytest.mark.integration

#: A pool of hub links no other test uses (tests/integration/hub/test_bubble_network.py uses 10.234.0.0/24).
POOL = "10.235.0.0/24"
URL = "https://api.allowed.test/anything/bound"


def test_a_valid_token_works_from_its_bubble_only(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    proxy = egress_proxy.another({"INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS": "0.3"})
    egress_data.allow("api.allowed.test", [443])
    own, other = lab.bubbles[0], lab.bubbles[1]
    login = egress_data.add_bubble(at=own)
    allowed = own.namespace.http_get(URL, proxy=proxy.url(login, own), cafile=lab.ca_path)
    assert allowed.status == 200, allowed
    # Copied into another bubble: refused, though the token is right and the user a member.
    stolen = other.namespace.http_get(URL, proxy=proxy.url(login, other), cafile=lab.ca_path)
    assert stolen.status == 407, stolen
    reason = f"the credentials of bubble {login.bubble_id} work only from the bubble's own address"
    assert reason in stolen.text
    # From the host, on its loopback: refused too.
    from_host = Namespace.root().http_get(URL, proxy=login.proxy_url("127.0.0.1", proxy.port), cafile=lab.ca_path)
    assert from_host.status == 407, from_host
    # Counted apart (a token used from elsewhere may be a stolen one), and audited as every 407: by source.
    assert proxy.metric("infracalc_egress_decisions_total", result="deny", reason="wrong_source") == 2
    refusals = egress_proxy.sink.wait_for(
        lambda event: event["kind"] == "refusals" and event["label"] == "wrong_source",
        enough=lambda found: sum(event["count"] for event in found) >= 2,  # the other bubble's and the host's
    )
    assert sum(event["count"] for event in refusals) == 2
    assert {(event["source"], event["status"], event["reason"], event.get("bubble")) for event in refusals} == {
        (other.address, 407, reason, None),
        ("127.0.0.1", 407, reason, None),
    }


def test_a_bubble_whose_address_the_hub_has_not_given_yet_goes_nowhere(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443])
    bubble = lab.bubbles[2]
    login = egress_data.add_bubble(at=None)
    waiting = bubble.namespace.http_get(URL, proxy=egress_proxy.proxy.url(login, bubble), cafile=lab.ca_path)
    assert waiting.status == 407, waiting
    assert f"bubble {login.bubble_id} has no registered address yet" in waiting.text
    egress_data.bind(login.bubble_id, bubble.address)
    bound = bubble.namespace.http_get(URL, proxy=egress_proxy.proxy.url(login, bubble), cafile=lab.ca_path)
    assert bound.status == 200, bound


def test_a_proxy_line_on_the_tcp_port_is_not_believed(lab: Lab, egress_proxy: ProxyUnderTest) -> None:
    with socket.create_connection(("127.0.0.1", egress_proxy.proxy.port), timeout=5) as connection:
        connection.sendall(
            b"PROXY TCP4 10.231.1.2 10.231.1.1 5555 3128\r\nCONNECT api.allowed.test:443 HTTP/1.1\r\n\r\n"
        )
        answer = connection.recv(200)
    assert answer.startswith(b"HTTP/1.1 400 ")


@pytest.fixture
def hub_link() -> Iterator[netns.BubbleLink]:
    """A local bubble's namespace as the hub's spawner makes it (root needed: the lab fixture skips without)."""
    made = netns.free_link(ipaddress.IPv4Network(POOL))
    netns.create(made)
    yield made
    netns.remove(made)


@pytest.fixture
def forwarding_proxy(egress_proxy: ProxyUnderTest, tmp_path: Path) -> tuple[EgressProxyProcess, Path]:
    """A proxy that also takes connections from the hub's forwarders, on its forwarded socket."""
    path = tmp_path / "egress-forwarded.sock"
    # On loopback, as with the hub: the forwarder binds the proxy's port on the bubble's gateway.
    forwarding = egress_proxy.another(
        {"INFRACALC_EGRESS_FORWARDED_SOCKET": str(path), "INFRACALC_EGRESS_PROXY_HOST": "127.0.0.1"}
    )
    return forwarding, path


async def test_a_hub_bubble_reaches_the_proxy_through_its_forwarder_with_its_own_address(
    lab: Lab,
    egress_data: EgressData,
    hub_link: netns.BubbleLink,
    forwarding_proxy: tuple[EgressProxyProcess, Path],
) -> None:
    proxy, path = forwarding_proxy
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble(at=hub_link.address)
    elsewhere = egress_data.add_bubble("bruno", at="10.235.0.6")
    forwarders = Forwarders(hub_link.gateway, (proxy.port,), unix_targets={proxy.port: str(path)})
    await forwarders.start()
    inside = Namespace(hub_link.namespace)
    try:
        through = await asyncio.to_thread(
            inside.http_get, URL, proxy=login.proxy_url(hub_link.gateway, proxy.port), cafile=lab.ca_path
        )
        assert through.status == 200, through
        assert through.json()["server"] == "upstream-a"
        bound_elsewhere = await asyncio.to_thread(
            inside.http_get, URL, proxy=elsewhere.proxy_url(hub_link.gateway, proxy.port), cafile=lab.ca_path
        )
        assert bound_elsewhere.status == 407, bound_elsewhere
    finally:
        await forwarders.close()
    # The bubble's own token, straight to the proxy's TCP port from the host: refused.
    direct = await asyncio.to_thread(
        Namespace.root().http_get, URL, proxy=login.proxy_url("127.0.0.1", proxy.port), cafile=lab.ca_path
    )
    assert direct.status == 407, direct
    # Without a PROXY line, the forwarded socket answers 400 and nothing is decided.
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(path))
        raw.sendall(b"CONNECT api.allowed.test:443 HTTP/1.1\r\n\r\n")
        assert raw.recv(200).startswith(b"HTTP/1.1 400 ")

"""The egress proxy against real OPA, from inside bubble namespaces, to upstream servers on a fake internet.

Each test runs ``infracalc egress-proxy`` as a process, writes a project's data to OPA as the
service does, and sends requests from a bubble namespace whose only reachable address is the
proxy's. The events the proxy reports go to a sink that stands in for the service here (the
service's own route is tested with the service; the whole chain in tests/integration/netns).
"""

from __future__ import annotations

import base64
import resource
import socket
import time
from pathlib import Path

import psutil
import pytest

from tests.fixtures.egress import BubbleLogin, EgressData, ProxyUnderTest
from tests.support.netns import Lab, Tunnel

pytestmark = pytest.mark.integration


def test_a_direct_connection_from_a_bubble_fails(lab: Lab) -> None:
    result = lab.bubbles[0].namespace.http_get(lab.upstreams["upstream-a"].url(), timeout=2)
    assert result.status is None
    assert "unreachable" in (result.error or "")


def test_an_approved_host_is_reached_through_a_tls_tunnel(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get(
        "https://api.allowed.test/anything/hello", proxy=egress_proxy.proxy.url(login, bubble), cafile=lab.ca_path
    )
    assert result.error is None, result
    assert result.status == 200
    assert result.json()["server"] == "upstream-a"
    assert result.json()["path"] == "/anything/hello"
    decisions = egress_proxy.sink.wait_for(lambda event: event["kind"] == "decision" and event["allow"])
    assert decisions[0] | {"at": None} == {
        "kind": "decision",
        "at": None,
        "bubble": login.bubble_id,
        "project": egress_data.project,
        "scheme": "connect",
        "host": "api.allowed.test",
        "port": 443,
        "allow": True,
        "reason": f"rule {rule} of project {egress_data.project} allows api.allowed.test:443",
        "rule_id": rule,
        "address": "10.231.200.2",
        "mode": "tunnel",
    }
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed")
    assert closed[0]["bytes_up"] > 0
    assert closed[0]["bytes_down"] > 0
    assert egress_proxy.proxy.metric("infracalc_egress_decisions_total", result="allow", reason="allowed") == 1
    logged = _log_lines(egress_proxy.proxy.log_path, " infracalc.egress allow ")
    assert len(logged) == 1
    assert logged[0].endswith(
        f"allow bubble={login.bubble_id} project={egress_data.project} CONNECT api.allowed.test:443 (tunnel) "
        f"rule={rule} address=10.231.200.2: {decisions[0]['reason']}"
    )


def test_an_unapproved_host_gets_403_with_the_reason(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get(
        "https://api.other.test/anything", proxy=egress_proxy.proxy.url(login, bubble), cafile=lab.ca_path
    )
    assert result.status == 403
    assert f"no approved rule of project {egress_data.project} allows api.other.test:443" in result.text
    denied = egress_proxy.sink.wait_for(lambda event: event["kind"] == "decision" and not event["allow"])
    assert denied[0]["host"] == "api.other.test"
    assert "address" not in denied[0]
    logged = _log_lines(egress_proxy.proxy.log_path, " infracalc.egress deny ")
    assert len(logged) == 1
    assert f"deny bubble={login.bubble_id} project={egress_data.project} CONNECT api.other.test:443 " in logged[0]


def test_a_port_not_in_the_rule_is_refused(lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData) -> None:
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get("http://api.allowed.test/anything", proxy=egress_proxy.proxy.url(login, bubble))
    assert result.status == 403
    assert "api.allowed.test:80" in result.text


def test_wrong_missing_or_revoked_credentials_get_407(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = egress_proxy.proxy
    url = "https://api.allowed.test/anything"
    forged = type(login)(login.bubble_id, login.token[:-4] + "0000")
    missing = bubble.namespace.http_get(url, proxy=f"http://{bubble.root_address}:{proxy.port}", cafile=lab.ca_path)
    assert missing.status == 407
    assert missing.header("Proxy-Authenticate") == 'Basic realm="infracalc-egress"'
    wrong = bubble.namespace.http_get(url, proxy=proxy.url(forged, bubble), cafile=lab.ca_path)
    assert wrong.status == 407
    assert "unknown bubble, revoked bubble or wrong token" in wrong.text
    assert login.token[-20:] not in wrong.text
    egress_data.remove_bubble(login.bubble_id)
    revoked = bubble.namespace.http_get(url, proxy=proxy.url(login, bubble), cafile=lab.ca_path)
    assert revoked.status == 407
    assert len(_log_lines(proxy.log_path, " infracalc.egress deny ", count=2)) == 2  # wrong, revoked
    assert login.token not in proxy.log_path.read_text()


def test_plain_http_is_decided_by_method_and_path(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("plain.allowed.test", [80], methods=["GET"], path_prefixes=["/anything/v1/"])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = egress_proxy.proxy.url(login, bubble)
    allowed = bubble.namespace.http_get("http://plain.allowed.test/anything/v1/items?q=1", proxy=proxy)
    assert allowed.status == 200, allowed
    assert allowed.json()["path"] == "/anything/v1/items?q=1"
    assert allowed.json()["host"] == "plain.allowed.test"
    assert "Proxy-Authorization" not in allowed.json()["headers"]
    posted = bubble.namespace.http_get(
        "http://plain.allowed.test/anything/v1/items", proxy=proxy, method="POST", body=b"x"
    )
    assert posted.status == 403
    assert "POST /anything/v1/items" in posted.text
    outside = bubble.namespace.http_get("http://plain.allowed.test/anything/v2/items", proxy=proxy)
    assert outside.status == 403
    escape = bubble.namespace.http_get("http://plain.allowed.test/anything/v1/../v2/items", proxy=proxy)
    assert escape.status == 403
    tunnel = bubble.namespace.http_get("https://plain.allowed.test/anything/v1/x", proxy=proxy, cafile=lab.ca_path)
    assert tunnel.status == 403
    credentials = base64.b64encode(f"{login.bubble_id}:{login.token}".encode()).decode()
    mismatch = _raw(
        egress_proxy.proxy.port,
        b"GET http://plain.allowed.test/anything/v1/x HTTP/1.1\r\nHost: api.other.test\r\n"
        + f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode(),
    )
    assert mismatch.startswith(b"HTTP/1.1 400 ")
    assert b"disagrees" in mismatch


def test_ip_literals_pass_only_when_a_rule_names_them(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("*.allowed.test".removeprefix("*."), [443], wildcard=True)
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = egress_proxy.proxy.url(login, bubble)
    literal = "https://10.231.200.3/anything"
    refused = bubble.namespace.http_get(literal, proxy=proxy, cafile=lab.ca_path)
    assert refused.status == 403
    egress_data.allow("10.231.200.3", [443])
    deadline = time.monotonic() + 2
    while (result := bubble.namespace.http_get(literal, proxy=proxy, cafile=lab.ca_path)).status != 200:
        assert time.monotonic() < deadline, result
    assert result.json()["server"] == "upstream-b"


def test_names_leading_to_forbidden_addresses_are_refused_even_when_allowlisted(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("rebind.test", [443], wildcard=True)
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = egress_proxy.proxy.url(login, bubble)
    for name, expected in [
        ("loopback.rebind.test", "127.0.0.1 is loopback"),
        ("private.rebind.test", "10.1.2.3 is private"),
        ("metadata.rebind.test", "169.254.169.254 is link-local"),
        ("mapped.rebind.test", "::ffff:7f00:1"),
    ]:
        result = bubble.namespace.http_get(f"https://{name}/anything", proxy=proxy, cafile=lab.ca_path)
        assert result.status == 403, (name, result)
        assert expected in result.text, (name, result.text)
    refusals = egress_proxy.sink.wait_for(lambda event: event.get("host") == "metadata.rebind.test")
    assert refusals[0]["allow"] is False


def test_approval_takes_effect_without_a_restart(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = egress_proxy.proxy.url(login, bubble)
    url = "https://second.allowed.test/anything"
    assert bubble.namespace.http_get(url, proxy=proxy, cafile=lab.ca_path).status == 403
    egress_data.allow("second.allowed.test", [443])
    # The data change drops the cached refusal within one revision poll (0.2 s).
    time.sleep(0.5)
    assert bubble.namespace.http_get(url, proxy=proxy, cafile=lab.ca_path).status == 200


def _open(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData, host: str = "api.allowed.test"
) -> tuple[Tunnel, BubbleLogin]:
    """A bubble of the project with a TLS tunnel open to ``host`` and busy (a request every 50 ms)."""
    bubble = lab.bubbles[1]
    login = egress_data.add_bubble(at=bubble)
    tunnel = bubble.namespace.open_tunnel(
        egress_proxy.proxy.url(login, bubble), f"{host}:443", tls=True, cafile=lab.ca_path, interval=0.05
    )
    tunnel.wait_for("open", timeout=10)
    tunnel.wait_for("ok", timeout=10)
    return tunnel, login


def _seconds_until_closed(tunnel: Tunnel) -> float:
    started = time.monotonic()
    tunnel.wait_for("closed", timeout=5)
    return time.monotonic() - started


def test_revoking_the_rule_cuts_an_open_tunnel_within_a_second(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = egress_data.allow("api.allowed.test", [443])
    tunnel, _ = _open(lab, egress_proxy, egress_data)
    with tunnel:
        egress_data.revoke(rule)
        assert _seconds_until_closed(tunnel) < 1.0
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed")
    assert f"no approved rule of project {egress_data.project}" in closed[0]["reason"]
    assert egress_proxy.proxy.metric("infracalc_egress_connections_cut_total") == 1


def test_switching_the_project_to_casd_cuts_an_open_tunnel(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443])
    tunnel, _ = _open(lab, egress_proxy, egress_data)
    with tunnel:
        egress_data.set_project("CASD")
        assert _seconds_until_closed(tunnel) < 1.0
    reasons = [event["reason"] for event in egress_proxy.sink.wait_for(lambda e: e["kind"] == "tunnel_closed")]
    assert reasons == [f"project {egress_data.project} is under CASD governance: no external API"]


def test_revoking_the_bubble_cuts_its_open_tunnel(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443])
    tunnel, login = _open(lab, egress_proxy, egress_data)
    with tunnel:
        egress_data.remove_bubble(login.bubble_id)
        assert _seconds_until_closed(tunnel) < 1.0


def test_a_bubble_whose_user_left_the_project_is_cut_and_refused_though_still_in_the_data(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    # The membership alone decides: the bubble's document stays in OPA, as after a revocation that failed to reach it.
    egress_data.allow("api.allowed.test", [443])
    tunnel, login = _open(lab, egress_proxy, egress_data)
    with tunnel:
        egress_data.remove_member("alice")
        assert _seconds_until_closed(tunnel) < 1.0
    bubble = lab.bubbles[1]
    again = bubble.namespace.http_get(
        "https://api.allowed.test/anything", proxy=egress_proxy.proxy.url(login, bubble), cafile=lab.ca_path
    )
    assert again.status == 407
    reason = f"alice is no longer a member of project {egress_data.project}: the bubble's credentials are revoked"
    assert reason in again.text
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed")
    assert closed[0]["reason"] == reason


def test_a_rule_that_expires_cuts_its_open_tunnel(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    egress_data.allow("api.allowed.test", [443], expires_in=2.0)
    tunnel, _ = _open(lab, egress_proxy, egress_data)
    with tunnel:
        event = tunnel.wait_for("closed", timeout=5)
        assert event.seq is not None
    closed = egress_proxy.sink.wait_for(lambda e: e["kind"] == "tunnel_closed")
    assert "expired at" in closed[0]["reason"]


def test_a_bubble_cannot_hold_more_tunnels_than_its_cap(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    capped = egress_proxy.another({"INFRACALC_EGRESS_MAX_TUNNELS_PER_BUBBLE": "2"})
    egress_data.allow("api.allowed.test", [443])
    bubble = lab.bubbles[2]
    login, other = egress_data.add_bubble(at=bubble), egress_data.add_bubble("bruno", at=bubble)
    url = capped.url(login, bubble)
    tunnels = [
        bubble.namespace.open_tunnel(url, "api.allowed.test:443", tls=True, cafile=lab.ca_path) for _ in range(2)
    ]
    try:
        for tunnel in tunnels:
            tunnel.wait_for("open", timeout=10)
        third = bubble.namespace.http_get("https://api.allowed.test/anything", proxy=url, cafile=lab.ca_path)
        assert third.status == 429
        assert "open connections" in third.text
        others = bubble.namespace.http_get(
            "https://api.allowed.test/anything", proxy=capped.url(other, bubble), cafile=lab.ca_path
        )
        assert others.status == 200
    finally:
        for tunnel in tunnels:
            tunnel.close()


def _log_lines(path: Path, needle: str, *, count: int = 1, wait: float = 5.0) -> list[str]:
    """The lines of the proxy's log holding ``needle``, once ``count`` are there (decision lines come in bursts)."""
    deadline = time.monotonic() + wait
    while True:
        lines = [line for line in path.read_text().splitlines() if needle in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` to the proxy from the root namespace and read its whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        if data:
            connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def test_bad_input_is_refused_cleanly_and_the_proxy_keeps_serving(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    impatient = egress_proxy.another(
        {"INFRACALC_EGRESS_HEADER_TIMEOUT": "0.5", "INFRACALC_EGRESS_MAX_HEADER_BYTES": "4096"}
    )
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    assert _raw(impatient.port, b"CONNECT api.allowed.test:443\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(impatient.port, b"CONNECT api.allowed.test:443 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 407 ")
    malformed_auth = b"CONNECT api.allowed.test:443 HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n"
    assert _raw(impatient.port, malformed_auth).startswith(b"HTTP/1.1 407 ")
    oversized = b"CONNECT api.allowed.test:443 HTTP/1.1\r\nX-Pad: " + b"a" * 8000 + b"\r\n\r\n"
    assert _raw(impatient.port, oversized).startswith(b"HTTP/1.1 431 ")
    started = time.monotonic()
    assert _raw(impatient.port, b"CONNECT api.allowed.test:443 HTTP/1.1\r\n").startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get(
        "https://api.allowed.test/anything", proxy=impatient.url(login, bubble), cafile=lab.ca_path
    )
    assert result.status == 200
    for label in ("malformed_request", "proxy_auth", "header_too_large", "header_timeout"):
        assert impatient.metric("infracalc_egress_refusals_total", reason=label) >= 1, label
    assert impatient.process.poll() is None


def test_a_proxy_out_of_file_descriptors_pauses_and_serves_again(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    short = egress_proxy.another({"INFRACALC_EGRESS_HEADER_TIMEOUT": "30"})
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    proxy = psutil.Process(short.process.pid)
    limits = resource.prlimit(proxy.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(proxy.pid, resource.RLIMIT_NOFILE, (proxy.num_fds() + 3, limits[1]))
    waiting = [socket.create_connection(("127.0.0.1", short.port), timeout=5) for _ in range(12)]
    try:
        assert _log_lines(short.log_path, "accept failed")
        # Connections wait in the backlog that it cannot accept: it pauses rather than spins.
        before = sum(proxy.cpu_times()[:2])
        time.sleep(1.0)
        assert sum(proxy.cpu_times()[:2]) - before < 0.3  # well under a third of a core
    finally:
        for connection in waiting:
            connection.close()
        resource.prlimit(proxy.pid, resource.RLIMIT_NOFILE, limits)
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get(
        "https://api.allowed.test/anything", proxy=short.url(login, bubble), cafile=lab.ca_path
    )
    assert result.status == 200
    assert short.process.poll() is None


def test_opa_unreachable_means_deny(lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData) -> None:
    blind = egress_proxy.another(opa_url="http://127.0.0.1:9")
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    result = bubble.namespace.http_get(
        "https://api.allowed.test/anything", proxy=blind.url(login, bubble), cafile=lab.ca_path
    )
    assert result.status == 403
    assert "OPA unavailable" in result.text


def test_decisions_that_cannot_be_recorded_stop_new_connections(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    strict = egress_proxy.another({"INFRACALC_EGRESS_AUDIT_GRACE_SECONDS": "0.5"})
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    url = "https://api.allowed.test/anything"
    egress_proxy.sink.status = 503
    assert bubble.namespace.http_get(url, proxy=strict.url(login, bubble), cafile=lab.ca_path).status == 200
    time.sleep(1.0)
    refused = bubble.namespace.http_get(url, proxy=strict.url(login, bubble), cafile=lab.ca_path)
    assert refused.status == 503
    assert "cannot be recorded" in refused.text
    egress_proxy.sink.status = 204
    deadline = time.monotonic() + 5
    while bubble.namespace.http_get(url, proxy=strict.url(login, bubble), cafile=lab.ca_path).status != 200:
        assert time.monotonic() < deadline
    recorded = egress_proxy.sink.wait_for(lambda event: event.get("bubble") == login.bubble_id and event["allow"])
    assert len(recorded) >= 2

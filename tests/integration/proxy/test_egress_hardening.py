"""The egress proxy's hardening (issue 15), from inside bubble namespaces against real OPA.

No credential in anything the proxy writes, plain-HTTP connections that end when their exchange
does, every refusal audited, limits on connections and their rate, operator deny lists and a
resolver of the operator's choosing. The events the proxy reports go to the sink that stands in for
the service (``tests.fixtures.egress``); the service's side of them is tested with the service.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from infracalc.identity import bubble_tokens
from tests.fixtures.egress import BubbleLogin, EgressData, EgressProxyProcess, ProxyUnderTest
from tests.support.netns import Bubble, Lab

pytestmark = pytest.mark.integration

#: Sends raw requests from inside a namespace; prints, per request, the answer (base64) on one line.
_RAW_CLIENT = """
import base64, json, socket, sys, time
host, port, requests = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
for spec in requests:
    data, hold = base64.b64decode(spec["data"]), spec["hold"]
    received = b""
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.sendall(data)
            if spec["half_close"]:
                connection.shutdown(socket.SHUT_WR)
            connection.settimeout(hold)
            try:
                while chunk := connection.recv(65536):
                    received += chunk
            except TimeoutError:
                pass
    except OSError as error:
        received += f"error: {error}".encode()
    print(base64.b64encode(received).decode(), flush=True)
"""


def raw(
    bubble: Bubble, proxy: EgressProxyProcess, *requests: bytes, hold: float = 5.0, half_close: bool = False
) -> list[bytes]:
    """Send each of ``requests`` on a connection of its own from ``bubble``; the proxy's answers."""
    specs = [{"data": base64.b64encode(data).decode(), "hold": hold, "half_close": half_close} for data in requests]
    completed = bubble.namespace.run_python(
        _RAW_CLIENT, bubble.root_address, str(proxy.port), json.dumps(specs), timeout=10 + len(requests) * (hold + 5)
    )
    assert completed.returncode == 0, completed.stderr
    return [base64.b64decode(line) for line in completed.stdout.splitlines()]


def basic(user: str, password: str) -> bytes:
    """A ``Proxy-Authorization`` header line."""
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


def test_no_refusal_path_lets_a_credential_out(lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData) -> None:
    impatient = egress_proxy.another({"INFRACALC_EGRESS_HEADER_TIMEOUT": "0.5"})
    egress_data.allow("plain.allowed.test", [80], methods=["GET"], path_prefixes=["/anything/v1/"])
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    token, secret = login.token, login.token.rsplit("_", 1)[1]
    auth = basic(login.bubble_id, token)
    userinfo = f"{login.bubble_id}:{token}".encode()
    bubble = lab.bubbles[0]
    attempts = {
        "userinfo in an absolute URI": b"GET http://" + userinfo + b"@plain.allowed.test/ HTTP/1.1\r\n" + auth,
        "userinfo in a CONNECT target": b"CONNECT " + userinfo + b"@api.allowed.test:443 HTTP/1.1\r\n" + auth,
        "userinfo and a bad port": b"CONNECT " + userinfo + b"@api.allowed.test:99999 HTTP/1.1\r\n" + auth,
        "userinfo in an https URI": b"GET https://" + userinfo + b"@api.allowed.test/ HTTP/1.1\r\n" + auth,
        "userinfo in the Host header": b"GET http://plain.allowed.test/anything/v1/ HTTP/1.1\r\nHost: "
        + userinfo
        + b"@plain.allowed.test\r\n"
        + auth,
        "token in a refused path": f"GET http://plain.allowed.test/anything/v2/?t={token} HTTP/1.1\r\n".encode() + auth,
        "token in an allowed path": f"GET http://plain.allowed.test/anything/v1/?t={token} HTTP/1.1\r\n".encode()
        + auth,
        "token as the host": f"CONNECT {token}:443 HTTP/1.1\r\n".encode() + auth,
        "token as a host in a path-less URI": f"GET http://{token}.test HTTP/1.1\r\n".encode() + auth,
        "wrong token": b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(login.bubble_id, token[:-4] + "0000"),
        "token as the user": b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(token, token),
        "token in a malformed request line": f"GET http://plain.allowed.test/{token} HTTP/9.9\r\n".encode() + auth,
        "token in a header with a control character": b"CONNECT api.allowed.test:443 HTTP/1.1\r\nX-T: "
        + token.encode()
        + b"\x01\r\n"
        + auth,
        "token in a chunked request": f"POST http://plain.allowed.test/anything/v1/{token} HTTP/1.1\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n"
        + auth,
        "token in an oversized head": b"CONNECT api.allowed.test:443 HTTP/1.1\r\nX-Pad: "
        + token.encode() * 300
        + b"\r\n"
        + auth,
    }
    answers = raw(bubble, impatient, *(data + b"\r\n" for data in attempts.values()))
    # A head that never ends: 408 once the header timeout passed.
    answers += raw(bubble, impatient, f"CONNECT {token}:443 HTTP/1.1\r\n".encode() + auth)
    statuses = {name: answer.split(b" ", 2)[1] for name, answer in zip(attempts, answers, strict=False)}
    assert statuses == {
        "userinfo in an absolute URI": b"400",
        "userinfo in a CONNECT target": b"400",
        "userinfo and a bad port": b"400",
        "userinfo in an https URI": b"400",
        "userinfo in the Host header": b"400",
        "token in a refused path": b"403",
        "token in an allowed path": b"200",
        "token as the host": b"400",
        "token as a host in a path-less URI": b"400",
        "wrong token": b"407",
        "token as the user": b"407",
        "token in a malformed request line": b"400",
        "token in a header with a control character": b"400",
        "token in a chunked request": b"411",
        "token in an oversized head": b"431",
    }
    assert answers[-1].startswith(b"HTTP/1.1 408 ")
    # A refusal names the path without its query (a query may carry data): the token is never quoted.
    assert (
        b"allows GET /anything/v2/ on plain.allowed.test:80" in answers[list(attempts).index("token in a refused path")]
    )
    time.sleep(1.0)  # the decision lines are written in bursts, the events sent every 0.2 s
    # Recorded paths carry the query's SHA-256, never the query.
    egress_proxy.sink.wait_for(lambda event: event.get("path", "").startswith("/anything/v1/?sha256="))
    written = {
        # The allowed request's answer is the upstream's (which echoes the path): not the proxy's words.
        "answers": b"\n".join(
            answer for name, answer in zip([*attempts, "timeout"], answers, strict=True) if "allowed" not in name
        ).decode("latin-1"),
        "log": impatient.log_path.read_text(),
        "events": json.dumps(egress_proxy.sink.events),
        "metrics": impatient.metrics(),
    }
    for where, text in written.items():
        for credential in (token, secret, secret[:16], base64.b64encode(userinfo).decode()):
            assert credential not in text, f"{credential[:12]}... found in the {where}"
    assert "<redacted>" in written["events"]


def upstream_sockets(proxy: EgressProxyProcess) -> list[str]:
    """The proxy's TCP connections to the lab's upstreams, as ``address:port status``."""
    return [
        f"{connection.raddr.ip}:{connection.raddr.port} {connection.status}"
        for connection in psutil.Process(proxy.process.pid).net_connections(kind="tcp")
        if connection.raddr and connection.raddr.ip.startswith("10.231.200.")
    ]


def wait_until(condition: Callable[[], object], timeout: float) -> float:
    """Seconds until ``condition()`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "the condition did not hold in time"
        time.sleep(0.02)
    return time.monotonic() - started


def plain_http_bubble(egress_data: EgressData) -> bytes:
    """A bubble allowed plain HTTP to plain.allowed.test: its ``Proxy-Authorization`` line."""
    egress_data.allow("plain.allowed.test", [80])
    login = egress_data.add_bubble()
    return basic(login.bubble_id, login.token)


def test_plain_http_ends_with_its_answer_though_the_upstream_never_closes(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    proxy, auth = egress_proxy.proxy, plain_http_bubble(egress_data)
    bubble = lab.bubbles[0]
    requests = [f"GET http://plain.allowed.test/keep-open/{n} HTTP/1.1\r\n".encode() + auth + b"\r\n" for n in range(3)]
    started = time.monotonic()
    answers = raw(bubble, proxy, *requests, hold=10)
    # Each client read until the proxy closed its connection: at once after the answer, not after 10 s.
    assert time.monotonic() - started < 5
    for n, answer in enumerate(answers):
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["path"] == f"/keep-open/{n}"
    wait_until(lambda: proxy.metric("infracalc_egress_open_connections") == 0, timeout=2)
    wait_until(lambda: not upstream_sockets(proxy), timeout=2)
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed")
    assert {event["reason"] for event in closed} == {"closed"}


def test_plain_http_ends_when_the_bubble_closes_before_the_answer(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    proxy = egress_proxy.proxy
    request = b"GET http://plain.allowed.test/stall HTTP/1.1\r\n" + plain_http_bubble(egress_data) + b"\r\n"
    # The client gives up after half a second and closes; the upstream would answer only after 20 s.
    assert raw(lab.bubbles[0], proxy, request, hold=0.5) == [b""]
    assert wait_until(lambda: not upstream_sockets(proxy), timeout=2) < 2
    assert proxy.metric("infracalc_egress_open_connections") == 0
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed")
    assert closed[0]["reason"] == "closed"


def test_every_refusal_is_audited_as_the_bubble_or_counted_by_source(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    proxy = egress_proxy.another({"INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS": "0.3"})
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble()
    stranger = bubble_tokens.mint()  # well formed, never registered
    auth = basic(login.bubble_id, login.token)
    bubble = lab.bubbles[0]
    answers = raw(
        bubble,
        proxy,
        # Valid credentials: refused before the policy, as the bubble.
        b"CONNECT 0xa9fea9fe:443 HTTP/1.1\r\n" + auth + b"\r\n",
        b"POST http://plain.allowed.test/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" + auth + b"\r\n",
        # No valid credentials: counted by source.
        *[b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(stranger.bubble_id, login.token) + b"\r\n"] * 2,
        b"CONNECT api.allowed.test:443 HTTP/1.1\r\n\r\n",
        *[b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(stranger.bubble_id, stranger.token) + b"\r\n"] * 2,
        *[b"GET /\r\n\r\n"] * 2,
        b"CONNECT 0xa9fea9fe:443 HTTP/1.1\r\n" + basic(stranger.bubble_id, stranger.token) + b"\r\n",
    )
    assert [answer[9:12] for answer in answers] == [b"400", b"411", *[b"407"] * 5, b"400", b"400", b"400"]
    sink = egress_proxy.sink
    as_bubble = sink.wait_for(lambda event: event["kind"] == "refusal")
    assert [(event["label"], event["status"]) for event in as_bubble] == [("bad_host", 400), ("chunked_body", 411)]
    assert {(event["bubble"], event["project"], event["source"]) for event in as_bubble} == {
        (login.bubble_id, egress_data.project, bubble.address)
    }

    def counted() -> list[dict[str, Any]]:
        # (The proxies' readiness checks, from the root namespace, are counted too: under their source.)
        return [event for event in sink.events if event["kind"] == "refusals" and event["source"] != "127.0.0.1"]

    wait_until(lambda: sum(event["count"] for event in counted()) >= 8, timeout=3)
    counts: dict[tuple[str, int], int] = {}
    for event in counted():
        assert (event["source"], event.get("bubble"), event["allow"]) == (bubble.address, None, False)
        assert event["at"] <= event["until"]
        counts[event["label"], event["status"]] = counts.get((event["label"], event["status"]), 0) + event["count"]
    assert counts == {
        ("proxy_auth", 407): 3,
        ("unauthenticated", 407): 2,
        ("malformed_request", 400): 2,
        ("bad_host", 400): 1,
    }
    # Nothing counted twice: the refusals reported are exactly the refusals made.
    assert sum(counts.values()) + len(as_bubble) == len(answers)


#: Opens ``hold`` connections that send half a request head and wait, then sends ``final`` on one more;
#: prints the proxy's answer to it (base64), then keeps the held ones until its stdin closes.
_HOLDER = """
import base64, socket, sys
host, port, hold, final = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), base64.b64decode(sys.argv[4])
held = [socket.create_connection((host, port), timeout=5) for _ in range(hold)]
for connection in held:
    connection.sendall(b"CONNECT api.allowed.test:443 HTTP/1.1\\r\\n")
last = socket.create_connection((host, port), timeout=5)
last.sendall(final)
received = b""
try:
    while chunk := last.recv(65536):
        received += chunk
except OSError:
    pass
print(base64.b64encode(received).decode(), flush=True)
sys.stdin.read()
"""


def hold_then_send(bubble: Bubble, proxy: EgressProxyProcess, hold: int, final: bytes) -> tuple[bytes, Any]:
    """From ``bubble``: ``hold`` connections that never finish their head, then ``final``; its answer and the holder."""
    process = bubble.namespace.popen(
        [sys.executable, "-c", _HOLDER, bubble.root_address, str(proxy.port), str(hold), base64.b64encode(final)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return base64.b64decode(process.stdout.readline()), process


def tunnel_bubble(egress_data: EgressData, username: str = "alice") -> tuple[BubbleLogin, bytes]:
    """A bubble allowed to api.allowed.test:443, and its CONNECT request (head)."""
    egress_data.allow("api.allowed.test", [443])
    login = egress_data.add_bubble(username)
    return login, b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(login.bubble_id, login.token) + b"\r\n"


def test_connections_are_capped_overall_and_per_source_before_authentication(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    _, request = tunnel_bubble(egress_data)
    capped = egress_proxy.another(
        {"INFRACALC_EGRESS_MAX_CONNECTIONS": "3", "INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS": "0.2"}
    )
    answer, holder = hold_then_send(lab.bubbles[0], capped, 3, request)
    try:
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"\r\nRetry-After: 1\r\n" in answer
        assert capped.metric("infracalc_egress_accepted_connections") == 3
        assert capped.metric("infracalc_egress_refusals_total", reason="connection_limit") == 1
    finally:
        holder.communicate(timeout=10)
    wait_until(lambda: capped.metric("infracalc_egress_accepted_connections") == 0, timeout=3)
    assert raw(lab.bubbles[0], capped, request, hold=0.5)[0].startswith(b"HTTP/1.1 200 ")

    careful = egress_proxy.another({"INFRACALC_EGRESS_MAX_UNAUTHENTICATED_PER_SOURCE": "2"})
    answer, holder = hold_then_send(lab.bubbles[0], careful, 2, request)
    try:
        assert answer.startswith(b"HTTP/1.1 429 "), answer
        assert b"not authenticated yet" in answer
        assert careful.metric("infracalc_egress_unauthenticated_connections") == 2
        # Another source is not held back by this one's (a bubble's credentials work from its own address only).
        other = lab.bubbles[1]
        there = egress_data.add_bubble("bruno", at=other)
        there_request = b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(there.bubble_id, there.token) + b"\r\n"
        assert raw(other, careful, there_request, hold=0.5)[0].startswith(b"HTTP/1.1 200 ")
    finally:
        holder.communicate(timeout=10)
    assert careful.metric("infracalc_egress_refusals_total", reason="unauthenticated_limit") == 1
    counted = egress_proxy.sink.wait_for(
        lambda event: event["kind"] == "refusals" and event["label"] in ("connection_limit", "unauthenticated_limit")
    )
    assert {(event["label"], event["status"], event["source"]) for event in counted} >= {
        ("connection_limit", 503, lab.bubbles[0].address)
    }


def test_new_connections_are_rate_limited_overall_and_per_bubble(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    login, request = tunnel_bubble(egress_data)
    slow = egress_proxy.another(
        {
            "INFRACALC_EGRESS_BUBBLE_CONNECTION_RATE": "0.2",
            "INFRACALC_EGRESS_BUBBLE_CONNECTION_BURST": "3",
            "INFRACALC_EGRESS_REFUSAL_AUDIT_SECONDS": "0.2",
        }
    )
    answers = raw(lab.bubbles[0], slow, *[request] * 5, hold=0.3)
    assert [answer[9:12] for answer in answers] == [b"200", b"200", b"200", b"429", b"429"]
    assert b"\r\nRetry-After: " in answers[3]
    assert int(answers[3].split(b"\r\nRetry-After: ")[1].split(b"\r\n")[0]) >= 1
    assert slow.metric("infracalc_egress_refusals_total", reason="bubble_rate") == 2
    counted = egress_proxy.sink.wait_for(
        lambda event: event["kind"] == "refusals" and event["label"] == "bubble_rate",
        enough=lambda found: sum(event["count"] for event in found) >= 2,
    )
    assert sum(event["count"] for event in counted) == 2
    assert {(event["bubble"], event["project"], event["status"]) for event in counted} == {
        (login.bubble_id, egress_data.project, 429)
    }
    # Another bubble has a bucket of its own.
    other = egress_data.add_bubble("bruno", at=lab.bubbles[1])
    other_request = b"CONNECT api.allowed.test:443 HTTP/1.1\r\n" + basic(other.bubble_id, other.token) + b"\r\n"
    assert raw(lab.bubbles[1], slow, other_request, hold=0.3)[0].startswith(b"HTTP/1.1 200 ")

    # Overall: whoever connects (the proxy's own readiness check took a token or two).
    busy = egress_proxy.another({"INFRACALC_EGRESS_CONNECTION_RATE": "0.1", "INFRACALC_EGRESS_CONNECTION_BURST": "4"})
    statuses = [answer[9:12] for answer in raw(lab.bubbles[0], busy, *[request] * 6, hold=0.3)]
    assert statuses[-1] == b"429"
    assert statuses == sorted(statuses, key=lambda status: status == b"429")  # served, then refused
    assert busy.metric("infracalc_egress_refusals_total", reason="connection_rate") == statuses.count(b"429")


def test_the_operators_deny_lists_are_checked_after_resolution(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    strict = egress_proxy.another(
        {
            "INFRACALC_EGRESS_DENY_RANGES": "10.231.200.0/30:443",
            "INFRACALC_EGRESS_DENY_ADDRESSES": "10.231.200.3",
        }
    )
    egress_data.allow("allowed.test", [80, 443], wildcard=True)
    egress_data.allow("10.231.200.2", [443])
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    proxy = strict.url(login, bubble)
    tls = bubble.namespace.http_get("https://api.allowed.test/anything", proxy=proxy, cafile=lab.ca_path)
    assert tls.status == 403
    assert "10.231.200.2 is on the operator's deny list (10.231.200.0/30 port 443)" in tls.text
    literal = bubble.namespace.http_get("https://10.231.200.2/anything", proxy=proxy, cafile=lab.ca_path)
    assert literal.status == 403
    assert "deny list" in literal.text
    plain = bubble.namespace.http_get("http://plain.allowed.test/anything", proxy=proxy)
    assert plain.status == 200  # the same address on another port
    other = bubble.namespace.http_get("http://second.allowed.test/anything", proxy=proxy)
    assert other.status == 403
    assert "10.231.200.3 is on the operator's deny list (10.231.200.3/32)" in other.text
    assert strict.metric("infracalc_egress_decisions_total", result="deny", reason="address_denied") == 3


def test_the_proxy_dials_exactly_the_address_its_resolver_answered_and_it_checked(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData, tmp_path: Path
) -> None:
    upstream_a, upstream_b = lab.upstreams["upstream-a"].address, lab.upstreams["upstream-b"].address
    queries = tmp_path / "dns-queries.log"
    with queries.open("w") as log:
        server = lab.external.namespace.popen(
            [
                sys.executable,
                "-m",
                "tests.support.dns_server",
                "--listen",
                f"{upstream_a}:53",
                "--name",
                f"rebind.allowed.test={upstream_a},127.0.0.1,{upstream_b}",
                "--exit-on-stdin-eof",
            ],
            stdin=subprocess.PIPE,
            stdout=log,
        )
    try:
        wait_until(lambda: queries.read_text().startswith("ready"), timeout=10)
        resolving = egress_proxy.another(
            {
                "INFRACALC_EGRESS_RESOLVER": f"{upstream_a}:53",
                "INFRACALC_EGRESS_TEST_HOSTS": "",
                "INFRACALC_EGRESS_DECISION_CACHE_SECONDS": "1",
            }
        )
        egress_data.allow("rebind.allowed.test", [443])
        login = egress_data.add_bubble()
        bubble = lab.bubbles[0]
        proxy = resolving.url(login, bubble)
        url = "https://rebind.allowed.test/anything"
        results = [bubble.namespace.http_get(url, proxy=proxy, cafile=lab.ca_path) for _ in range(3)]
    finally:
        server.communicate(timeout=10)
    assert [result.status for result in results] == [200, 403, 200]
    assert [results[0].json()["server"], results[2].json()["server"]] == ["upstream-a", "upstream-b"]
    assert "127.0.0.1 is loopback" in results[1].text
    answered = [line.split()[2] for line in queries.read_text().splitlines() if line.startswith("A ")]
    assert answered == [upstream_a, "127.0.0.1", upstream_b]  # one query per connection
    decisions = egress_proxy.sink.wait_for(
        lambda event: event["kind"] == "decision" and event["host"] == "rebind.allowed.test" and event["allow"],
        enough=lambda found: len(found) >= 2,
    )
    assert [event["address"] for event in decisions] == [upstream_a, upstream_b]

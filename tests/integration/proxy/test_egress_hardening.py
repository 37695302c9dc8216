"""The egress proxy's hardening (issue 15), from inside bubble namespaces against real OPA.

No credential in anything the proxy writes, plain-HTTP connections that end when their exchange
does, every refusal audited, limits on connections and their rate, operator deny lists and a
resolver of the operator's choosing. The events the proxy reports go to the sink that stands in for
the service (``tests.fixtures.egress``); the service's side of them is tested with the service.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import psutil

from tests.fixtures.egress import EgressData, EgressProxyProcess, ProxyUnderTest
from tests.support.netns import Bubble, Lab

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
    assert b"<redacted>" in answers[list(attempts).index("token in a refused path")]
    time.sleep(1.0)  # the decision lines are written in bursts, the events sent every 0.2 s
    egress_proxy.sink.wait_for(lambda event: event.get("path", "").startswith("/anything/v1/?t="))
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

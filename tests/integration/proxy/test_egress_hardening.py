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

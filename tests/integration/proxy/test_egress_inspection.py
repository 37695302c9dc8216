"""Inspected HTTPS from bubble namespaces: each request inside a CONNECT decided by method, path and size.

The proxy runs as a process with its own egress CA; the bubbles trust that CA (the tests pass its
certificate as the client's CA file, or the bubble bundle through the environment). Upstreams are
the lab's HTTPS servers, whose certificate comes from the lab's CA, which the proxy trusts in test
mode only (``INFRACALC_EGRESS_TEST_UPSTREAM_CA``). Events go to the sink standing in for the service.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infracalc.egress.trust import trust_environment
from tests.fixtures.egress import PUBLIC_CA_DIR, BubbleLogin, EgressData, ProxyUnderTest
from tests.support.netns import Lab
from tests.support.upstream_server import pattern_bytes

pytestmark = pytest.mark.integration

PREFIXES = ["/anything/v1/", "/bytes/"]


def inspected(egress_data: EgressData, host: str = "api.allowed.test", **rule: object) -> str:
    """An inspect rule for ``host``:443, read-only under ``PREFIXES`` unless ``rule`` says otherwise."""
    settings: dict[str, object] = {"methods": ["GET", "HEAD"], "path_prefixes": PREFIXES, **rule}
    return egress_data.allow(host, [443], mode="inspect", **settings)  # type: ignore[arg-type]


def via(egress_proxy: ProxyUnderTest, login: BubbleLogin, lab: Lab, index: int = 0) -> str:
    return egress_proxy.proxy.url(login, lab.bubbles[index])


def test_a_get_under_the_prefix_passes_and_its_answer_arrives_intact(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = inspected(egress_data)
    login = egress_data.add_bubble()
    namespace, proxy, platform = lab.bubbles[0].namespace, via(egress_proxy, login, lab), egress_proxy.proxy.ca
    download = namespace.http_get("https://api.allowed.test/bytes/300000", proxy=proxy, cafile=platform.cert_path)
    assert download.error is None, download
    assert download.status == 200
    assert download.body == pattern_bytes(300000)
    echo = namespace.http_get(
        "https://api.allowed.test/anything/v1/items?key=s3cret", proxy=proxy, cafile=platform.cert_path
    )
    assert echo.status == 200, echo
    seen = echo.json()
    assert (seen["server"], seen["scheme"], seen["host"], seen["path"]) == (
        "upstream-a",
        "https",
        "api.allowed.test",
        "/anything/v1/items?key=s3cret",
    )
    assert not {"Proxy-Authorization", "Expect"} & set(seen["headers"])
    # The bubble met the platform's certificate, not the upstream's: trusting the lab's CA alone fails.
    bypass = namespace.http_get("https://api.allowed.test/anything/v1/x", proxy=proxy, cafile=lab.ca_path)
    assert bypass.status is None
    assert "CERTIFICATE_VERIFY_FAILED" in (bypass.error or "")

    connects = egress_proxy.sink.wait_for(lambda event: event["scheme"] == "connect" and event.get("mode"))
    assert (connects[0]["allow"], connects[0]["mode"], connects[0]["rule_id"]) == (True, "inspect", rule)
    requests = egress_proxy.sink.wait_for(
        lambda event: event.get("scheme") == "https" and event["path"].startswith("/anything/v1/items")
    )
    recorded = requests[0]
    assert recorded["path"] == "/anything/v1/items?sha256=" + hashlib.sha256(b"key=s3cret").hexdigest()
    assert (recorded["method"], recorded["status"], recorded["allow"], recorded["rule_id"]) == ("GET", 200, True, rule)
    assert recorded["bytes_up"] > 0
    assert recorded["bytes_down"] > len(echo.body)
    downloads = egress_proxy.sink.wait_for(lambda event: event.get("path") == "/bytes/300000")
    assert downloads[0]["bytes_down"] > 300000
    time.sleep(0.3)  # the decision lines are written in bursts
    assert "s3cret" not in json.dumps(egress_proxy.sink.events)
    assert "s3cret" not in egress_proxy.proxy.log_path.read_text()


def test_a_post_and_a_path_outside_the_prefixes_are_refused_403_with_the_reason(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    inspected(egress_data)
    login = egress_data.add_bubble()
    namespace, proxy, ca = lab.bubbles[0].namespace, via(egress_proxy, login, lab), egress_proxy.proxy.ca.cert_path
    posted = namespace.http_get(
        "https://api.allowed.test/anything/v1/items", proxy=proxy, cafile=ca, method="POST", body=b"{}"
    )
    assert posted.status == 403, posted
    project = egress_data.project
    assert f"no approved rule of project {project} allows POST /anything/v1/items on api.allowed.test:443" in (
        posted.text
    )
    outside = namespace.http_get("https://api.allowed.test/anything/v2/items?x=1", proxy=proxy, cafile=ca)
    assert outside.status == 403
    assert "allows GET /anything/v2/items on api.allowed.test:443" in outside.text
    egress_proxy.sink.wait_for(lambda event: event.get("scheme") == "https" and event.get("method") == "GET")
    denied = egress_proxy.sink.wait_for(lambda event: event.get("scheme") == "https" and not event["allow"])
    assert {(event["method"], event["status"]) for event in denied} == {("POST", 403), ("GET", 403)}
    assert all("rule_id" not in event for event in denied)


def _upstream_log(lab: Lab) -> str:
    return lab.log_path.read_text(encoding="utf-8", errors="replace")


def test_a_body_over_the_cap_is_refused_before_the_upstream_sees_a_byte(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    inspected(egress_data, methods=["GET", "POST"], max_request_bytes=1000)
    login = egress_data.add_bubble()
    namespace, proxy, ca = lab.bubbles[0].namespace, via(egress_proxy, login, lab), egress_proxy.proxy.ca.cert_path
    small = namespace.http_get(
        "https://api.allowed.test/anything/v1/small-body", proxy=proxy, cafile=ca, method="POST", body=b"a" * 1000
    )
    assert small.status == 200, small
    assert small.json()["body"] == "a" * 1000
    large = namespace.http_get(
        "https://api.allowed.test/anything/v1/large-body",
        proxy=proxy,
        cafile=ca,
        method="POST",
        body=b"b" * 5000,
        headers={"Expect": "100-continue"},
    )
    assert large.status == 413, large
    assert "the request's body of 5000 bytes is over rule" in large.text
    assert "cap of 1000 bytes per request" in large.text
    time.sleep(0.5)
    log = _upstream_log(lab)
    assert "/anything/v1/small-body" in log
    assert "large-body" not in log
    # Both decisions are recorded, with their sizes; the bodies are not.
    egress_proxy.sink.wait_for(lambda event: event.get("path") == "/anything/v1/large-body")
    recorded = [event for event in egress_proxy.sink.events if "-body" in event.get("path", "")]
    assert {(event["path"], event["status"]) for event in recorded} == {
        ("/anything/v1/small-body", 200),
        ("/anything/v1/large-body", 413),
    }
    assert "a" * 100 not in json.dumps(egress_proxy.sink.events)
    assert "b" * 100 not in egress_proxy.proxy.log_path.read_text()


def test_the_daily_budget_runs_out_says_so_and_survives_a_new_bubble(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = inspected(egress_data, daily_upload_bytes=600)
    login = egress_data.add_bubble("alice")
    namespace, ca = lab.bubbles[0].namespace, egress_proxy.proxy.ca.cert_path
    url = "https://api.allowed.test/anything/v1/budget"
    statuses = []
    for _ in range(20):
        result = namespace.http_get(url, proxy=via(egress_proxy, login, lab), cafile=ca)
        statuses.append(result.status)
        if result.status != 200:
            break
    assert statuses[0] == 200
    assert statuses[-1] == 429, statuses
    assert 2 <= len(statuses) <= 15, statuses  # each request sends its head, about 80 bytes
    assert f"rule {rule}'s budget of 600 bytes a day to api.allowed.test for this bubble is spent" in result.text
    # Her bubble stopped and started again (a new id) keeps the day's count; another user has their own.
    again = namespace.http_get(url, proxy=via(egress_proxy, egress_data.add_bubble("alice"), lab), cafile=ca)
    assert again.status == 429
    other = namespace.http_get(url, proxy=via(egress_proxy, egress_data.add_bubble("bob"), lab), cafile=ca)
    assert other.status == 200
    spent = egress_proxy.sink.wait_for(lambda event: event.get("status") == 429)
    assert spent[0]["scheme"] == "https"


def test_an_upstream_whose_certificate_names_another_host_gives_502(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    inspected(egress_data, host="api.wrongname.test")
    login = egress_data.add_bubble()
    result = lab.bubbles[0].namespace.http_get(
        "https://api.wrongname.test/anything/v1/x",
        proxy=via(egress_proxy, login, lab),
        cafile=egress_proxy.proxy.ca.cert_path,
    )
    assert result.status == 502, result
    assert "the certificate of api.wrongname.test:443 is not valid" in result.text
    assert "Hostname mismatch" in result.text
    assert "api.wrongname.test" not in _upstream_log(lab).split("handshake failed")[-1].split("\n", 1)[-1]


def _expired_server(lab: Lab, directory: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    """An HTTPS server on 10.231.200.3:8443 whose certificate (from a CA of its own) expired yesterday.

    Returns the CA's certificate and the server.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("expired.example.test"), x509.IPAddress(ipaddress.ip_address("10.231.200.3"))]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "expired-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "expired.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "expired-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    argv = [sys.executable, "-m", "tests.support.upstream_server", "--server", "expired=10.231.200.3"]
    argv += ["--http-port", "8080", "--https-port", "8443", "--exit-on-stdin-eof"]
    argv += ["--cert", str(directory / "expired.pem"), "--key", str(directory / "expired-key.pem")]
    server = lab.external.namespace.popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert server.stdout is not None
    assert server.stdout.readline() == b"ready\n"
    return directory / "expired-ca.pem", server


@pytest.fixture
def expired(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    """The expired server's CA and the lab's, in one file (what the second proxy trusts for upstreams)."""
    ca, server = _expired_server(lab, tmp_path)
    both = tmp_path / "upstream-cas.pem"
    both.write_bytes(lab.ca_path.read_bytes() + ca.read_bytes())
    try:
        yield both
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=5)


def test_an_upstream_with_an_expired_certificate_gives_502(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData, expired: Path
) -> None:
    trusting = egress_proxy.another(upstream_ca=expired)
    egress_data.allow("expired.example.test", [8443], mode="inspect")
    login = egress_data.add_bubble()
    result = lab.bubbles[0].namespace.http_get(
        "https://expired.example.test:8443/anything",
        proxy=trusting.url(login, lab.bubbles[0]),
        cafile=trusting.ca.cert_path,
    )
    assert result.status == 502, result
    assert "the certificate of expired.example.test:8443 is not valid: certificate has expired" in result.text


def test_a_tunnel_rule_still_works_as_today_and_a_platform_may_forbid_it(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = egress_data.allow("api.allowed.test", [443], mode="tunnel")
    login = egress_data.add_bubble()
    namespace, bubble = lab.bubbles[0].namespace, lab.bubbles[0]
    # End to end: the bubble verifies the upstream's own certificate (the lab's CA), through the tunnel.
    tunnel = namespace.http_get(
        "https://api.allowed.test/anything/any/path", proxy=via(egress_proxy, login, lab), cafile=lab.ca_path
    )
    assert tunnel.status == 200, tunnel
    assert tunnel.json()["path"] == "/anything/any/path"
    connects = egress_proxy.sink.wait_for(lambda event: event.get("mode") == "tunnel")
    assert connects[0]["rule_id"] == rule
    forbidding = egress_proxy.another({"INFRACALC_EGRESS_TUNNEL_RULES": "forbid"})
    refused = namespace.http_get(
        "https://api.allowed.test/anything", proxy=forbidding.url(login, bubble), cafile=lab.ca_path
    )
    assert refused.status == 403, refused
    assert "tunnel (opaque) rule, which this platform forbids" in refused.text


def test_revoking_an_inspect_rule_cuts_an_open_inspected_connection_within_a_second(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    rule = inspected(egress_data)
    login = egress_data.add_bubble(at=lab.bubbles[1])
    bubble = lab.bubbles[1]
    with bubble.namespace.open_tunnel(
        via(egress_proxy, login, lab, 1),
        "api.allowed.test:443",
        tls=True,
        cafile=egress_proxy.proxy.ca.cert_path,
        path="/anything/v1/busy",
        interval=0.05,
    ) as tunnel:
        tunnel.wait_for("ok", timeout=10)
        tunnel.wait_for("ok", timeout=5)  # the same connection carries request after request
        egress_data.revoke(rule)
        revoked_at = time.monotonic()
        tunnel.wait_for("closed", timeout=5)
        assert time.monotonic() - revoked_at < 1.0
    closed = egress_proxy.sink.wait_for(lambda event: event["kind"] == "tunnel_closed" and event["rule_id"] == rule)
    assert "no approved rule" in closed[0]["reason"]


H2_CLIENT = r"""
import base64, json, socket, ssl, struct, sys
spec = json.loads(sys.argv[1])
sock = socket.create_connection((spec["proxy_host"], spec["proxy_port"]), timeout=5)
auth = base64.b64encode(spec["credentials"].encode()).decode()
sock.sendall(f"CONNECT api.allowed.test:443 HTTP/1.1\r\nHost: api.allowed.test:443\r\n"
             f"Proxy-Authorization: Basic {auth}\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    head += sock.recv(1)
context = ssl.create_default_context(cafile=spec["ca"])
context.set_alpn_protocols(["h2"])
tls = context.wrap_socket(sock, server_hostname="api.allowed.test")
tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
frames, data = [], b""
while True:
    chunk = tls.recv(65536)
    if not chunk:
        break
    data += chunk
while len(data) >= 9:
    length = int.from_bytes(data[:3], "big")
    kind, payload = data[3], data[9:9 + length]
    frames.append({"type": kind, "payload": payload.hex()})
    data = data[9 + length:]
print(json.dumps({"alpn": tls.selected_alpn_protocol(), "frames": frames}))
"""


def test_an_http2_only_client_is_told_to_use_http_1_1(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    inspected(egress_data)
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    spec = {
        "proxy_host": bubble.root_address,
        "proxy_port": egress_proxy.proxy.port,
        "credentials": f"{login.bubble_id}:{login.token}",
        "ca": str(egress_proxy.proxy.ca.cert_path),
    }
    completed = bubble.namespace.run_python(H2_CLIENT, json.dumps(spec), timeout=20)
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert seen["alpn"] is None  # the proxy agrees HTTP/1.1 only
    goaway = next(frame for frame in seen["frames"] if frame["type"] == 7)
    payload = bytes.fromhex(goaway["payload"])
    assert int.from_bytes(payload[4:8], "big") == 0xD  # HTTP_1_1_REQUIRED
    assert b"reads HTTP/1.1 only" in payload[8:]


CLIENTS = r"""
import json, os, ssl, subprocess, sys, urllib.request
import requests
url = sys.argv[1]
results = {}
results["urllib"] = urllib.request.urlopen(url, timeout=10).status
results["requests"] = requests.get(url, timeout=10).status_code
results["curl"] = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                                 capture_output=True, text=True, timeout=20).stdout
print(json.dumps(results))
"""


def test_the_bubble_trust_store_holds_the_platform_ca_and_no_key_and_its_clients_use_it(
    lab: Lab, egress_proxy: ProxyUnderTest, egress_data: EgressData
) -> None:
    inspected(egress_data)
    login = egress_data.add_bubble()
    bubble = lab.bubbles[0]
    ca = egress_proxy.proxy.ca
    # What the proxy published at start for bubbles: the certificate and the bundle, never the key.
    public = egress_proxy.workdir / PUBLIC_CA_DIR
    assert sorted(path.name for path in public.iterdir()) == ["bubble-bundle.pem", "ca-cert.pem"]
    assert (public / "ca-cert.pem").read_bytes() == ca.cert_path.read_bytes()
    bundle = public / "bubble-bundle.pem"
    text = bundle.read_text()
    assert ca.cert_path.read_text().strip() in text
    assert "PRIVATE KEY" not in text
    assert text.count("BEGIN CERTIFICATE") > 1  # the system's CAs too
    assert oct(bundle.stat().st_mode & 0o777) == "0o644"
    assert oct(ca.key_path.stat().st_mode & 0o777) == "0o600"
    proxy = via(egress_proxy, login, lab)
    env = {
        "PATH": "/usr/bin:/bin",
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        **trust_environment(str(bundle), str(ca.cert_path)),
    }
    completed = subprocess.run(
        bubble.namespace.command([sys.executable, "-c", CLIENTS, "https://api.allowed.test/anything/v1/clients"]),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"urllib": 200, "requests": 200, "curl": "200"}

"""Requests inside an inspected CONNECT: what is refused before the policy, and the HTTP/2 refusal."""

from __future__ import annotations

import struct

import pytest

from infracalc.proxy.inner import HTTP_1_1_REQUIRED, h2_refusal, interpret_inner
from infracalc.proxy.wire import Destination, ProxyError, RequestKind, host_header, origin_request, parse_head

API = Destination("api.example.org", 443)


def head(text: str) -> object:
    return parse_head(text.replace("\n", "\r\n").encode() + b"\r\n")


def test_an_origin_form_request_of_the_connects_host_is_read() -> None:
    request = interpret_inner(head("POST /v1/items?x=1 HTTP/1.1\nHost: API.example.org\nContent-Length: 12\n"), API)  # type: ignore[arg-type]
    assert (request.kind, request.method, request.path, request.content_length) == (
        RequestKind.HTTPS,
        "POST",
        "/v1/items?x=1",
        12,
    )
    assert host_header(request) == "api.example.org"
    forwarded = origin_request(request, close=False, drop=frozenset({"expect"}))
    assert forwarded.startswith(b"POST /v1/items?x=1 HTTP/1.1\r\nHost: api.example.org\r\n")
    assert b"Connection: close" not in forwarded
    same = interpret_inner(head("GET https://api.example.org:443/a HTTP/1.1\nHost: api.example.org:443\n"), API)  # type: ignore[arg-type]
    assert same.path == "/a"


@pytest.mark.parametrize(
    ("text", "status", "label"),
    [
        ("GET /x HTTP/1.1\nHost: other.example.org\n", 400, "host_mismatch"),
        ("GET /x HTTP/1.1\nHost: api.example.org:8443\n", 400, "host_mismatch"),
        ("GET https://other.example.org/x HTTP/1.1\nHost: api.example.org\n", 400, "host_mismatch"),
        ("GET /x HTTP/1.1\n", 400, "malformed_request"),
        ("GET x HTTP/1.1\nHost: api.example.org\n", 400, "malformed_request"),
        ("CONNECT other.example.org:443 HTTP/1.1\nHost: api.example.org\n", 400, "malformed_request"),
        ("GET /ws HTTP/1.1\nHost: api.example.org\nUpgrade: websocket\nConnection: Upgrade\n", 400, "upgrade_refused"),
        ("POST /x HTTP/1.1\nHost: api.example.org\nTransfer-Encoding: chunked\n", 411, "chunked_body"),
    ],
)
def test_what_the_policy_could_not_judge_is_refused(text: str, status: int, label: str) -> None:
    with pytest.raises(ProxyError) as refused:
        interpret_inner(head(text), API)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.label) == (status, label)


def test_an_http2_client_gets_settings_then_goaway_http_1_1_required_with_the_reason() -> None:
    frames = h2_refusal("use HTTP/1.1")
    assert frames[:9] == b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # empty SETTINGS on stream 0
    length = int.from_bytes(frames[9:12], "big")
    assert frames[12] == 0x7
    payload = frames[18 : 18 + length]
    assert struct.unpack("!II", payload[:8]) == (0, HTTP_1_1_REQUIRED)
    assert payload[8:] == b"use HTTP/1.1"

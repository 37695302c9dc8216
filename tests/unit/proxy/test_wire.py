"""The request head as the proxy reads it: what is understood, and what is refused with which status."""

from __future__ import annotations

import asyncio
import socket

import pytest

from infracalc.proxy.wire import (
    Destination,
    ProxyError,
    RequestKind,
    interpret,
    origin_request,
    parse_authority,
    parse_head,
    read_head,
    response,
)


def head(text: str, rest: bytes = b"") -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1") + rest


def refusal(data: bytes) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        interpret(parse_head(data))
    return caught.value


def test_connect_names_host_and_port() -> None:
    request = interpret(parse_head(head("CONNECT API.Example.org.:443 HTTP/1.1\nProxy-Authorization: Basic x\n\n")))
    assert request.kind is RequestKind.CONNECT
    assert request.destination == Destination("api.example.org", 443)
    assert request.path == ""


def test_connect_to_ip_literals_is_understood_and_marked() -> None:
    assert parse_authority("192.0.2.10:443") == Destination("192.0.2.10", 443, ip_literal=True)
    assert parse_authority("[2001:DB8::1]:8443") == Destination("2001:db8::1", 8443, ip_literal=True)


@pytest.mark.parametrize(
    ("authority", "label"),
    [
        ("api.example.org", "bad_port"),
        ("api.example.org:0", "bad_port"),
        ("api.example.org:65536", "bad_port"),
        ("api.example.org:+443", "bad_port"),
        ("api.example.org:４４３", "bad_port"),  # noqa: RUF001 - full-width digits, on purpose
        ("2001:db8::1:443", "bad_host"),
        ("[2001:db8::1", "bad_host"),
        ("[not-v6]:443", "bad_host"),
        ("user@api.example.org:443", "userinfo"),
        ("127.1:443", "bad_host"),
        ("0x7f000001:443", "bad_host"),
        ("exa mple.org:443", "bad_host"),
        (":443", "bad_host"),
    ],
)
def test_malformed_authorities_are_refused(authority: str, label: str) -> None:
    with pytest.raises(ProxyError) as caught:
        parse_authority(authority)
    assert (caught.value.status, caught.value.label) == (400, label)


def test_plain_http_absolute_uri_gives_method_path_and_default_port() -> None:
    request = interpret(parse_head(head("GET http://data.example.net/v1/x?y=1 HTTP/1.1\nHost: data.example.net\n\n")))
    assert request.kind is RequestKind.HTTP
    assert request.destination == Destination("data.example.net", 80)
    assert (request.method, request.path) == ("GET", "/v1/x?y=1")


def test_plain_http_without_path_asks_for_the_root() -> None:
    request = interpret(parse_head(head("GET http://data.example.net:8080 HTTP/1.1\n\n")))
    assert request.destination.port == 8080
    assert request.path == "/"


@pytest.mark.parametrize(
    ("text", "status", "label"),
    [
        ("GET /v1/x HTTP/1.1\nHost: a.example\n\n", 400, "not_absolute_uri"),
        ("GET https://a.example/ HTTP/1.1\n\n", 400, "https_absolute_uri"),
        ("GET ftp://a.example/ HTTP/1.1\n\n", 400, "not_absolute_uri"),
        ("GET http://a.example/ HTTP/1.1\nHost: b.example\n\n", 400, "host_mismatch"),
        ("GET http://a.example/ HTTP/1.1\nHost: a.example:8080\n\n", 400, "host_mismatch"),
        ("GET http://a.example/ HTTP/1.1\nHost: a.example\nHost: a.example\n\n", 400, "malformed_request"),
        ("POST http://a.example/ HTTP/1.1\nTransfer-Encoding: chunked\n\n", 411, "chunked_body"),
        ("POST http://a.example/ HTTP/1.1\nContent-Length: -1\n\n", 400, "malformed_request"),
        ("POST http://a.example/ HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n", 400, "malformed_request"),
    ],
)
def test_requests_a_proxy_must_not_forward_are_refused(text: str, status: int, label: str) -> None:
    error = refusal(head(text))
    assert (error.status, error.label) == (status, label)


@pytest.mark.parametrize(
    "raw",
    [
        b"CONNECT api.example.org:443\r\n\r\n",
        b"CONNECT  api.example.org:443 HTTP/1.1\r\n\r\n",
        b"CONNECT api.example.org:443 HTTP/2.0\r\n\r\n",
        b"CONN\x00ECT api.example.org:443 HTTP/1.1\r\n\r\n",
        b"CONNECT api.example.org:443 HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"CONNECT api.example.org:443 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"CONNECT api.example.org:443 HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET http://a.example/\x7f HTTP/1.1\r\n\r\n",
        b"CONNECT api.example.org:443 HTTP/1.1\r\n",
    ],
)
def test_malformed_heads_are_400(raw: bytes) -> None:
    with pytest.raises(ProxyError) as caught:
        parse_head(raw)
    assert caught.value.status == 400


def test_origin_request_drops_proxy_and_hop_by_hop_headers_and_closes() -> None:
    request = interpret(
        parse_head(
            head(
                "POST http://a.example:8080/v1/x HTTP/1.1\nHost: a.example:8080\n"
                "Proxy-Authorization: Basic c2VjcmV0\nConnection: keep-alive, X-Secret\nX-Secret: 1\n"
                "Proxy-Connection: keep-alive\nAccept: */*\nContent-Length: 3\n\n"
            )
        )
    )
    forwarded = origin_request(request).decode()
    assert forwarded.startswith("POST /v1/x HTTP/1.1\r\nHost: a.example:8080\r\n")
    assert "Accept: */*" in forwarded
    assert "Content-Length: 3" in forwarded
    assert forwarded.endswith("Connection: close\r\n\r\n")
    for gone in ("Proxy-Authorization", "c2VjcmV0", "X-Secret", "keep-alive", "Proxy-Connection"):
        assert gone not in forwarded


def test_response_carries_status_reason_and_closes() -> None:
    answer = response(403, "no rule allows a.example:443").decode()
    assert answer.startswith("HTTP/1.1 403 Forbidden\r\n")
    assert "Connection: close" in answer
    assert answer.endswith("\r\n\r\nno rule allows a.example:443\n")


async def _read_from(chunks: list[bytes], *, limit: int = 16384, timeout: float = 1.0, close: bool = False) -> object:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        for chunk in chunks:
            theirs.sendall(chunk)
        if close:
            theirs.shutdown(socket.SHUT_WR)
        return await read_head(ours, limit=limit, timeout=timeout)
    finally:
        ours.close()
        theirs.close()


async def test_read_head_keeps_the_bytes_after_the_head() -> None:
    result = await _read_from([b"CONNECT a.example:443 HTTP/1.1\r\n", b"X: y\r\n\r\n\x16\x03\x01hello"])
    assert result.rest == b"\x16\x03\x01hello"  # type: ignore[attr-defined]


async def test_read_head_refuses_an_oversized_head_with_431() -> None:
    with pytest.raises(ProxyError) as caught:
        await _read_from([b"CONNECT a.example:443 HTTP/1.1\r\n", b"X: " + b"y" * 5000 + b"\r\n"], limit=4096)
    assert (caught.value.status, caught.value.label) == (431, "header_too_large")


async def test_read_head_gives_a_slow_client_408() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(ProxyError) as caught:
        await _read_from([b"CONNECT a.example:443 HTTP/1.1\r\n"], timeout=0.2)
    assert (caught.value.status, caught.value.label) == (408, "header_timeout")
    assert asyncio.get_running_loop().time() - started < 2


async def test_read_head_refuses_a_connection_closed_early() -> None:
    with pytest.raises(ProxyError) as caught:
        await _read_from([b"CONNECT a.example:443 HTTP/1.1\r\n"], close=True)
    assert (caught.value.status, caught.value.label) == (400, "incomplete_request")

"""HTTP/1.1 as a forward proxy sees it: one request head, read with limits, and the answers it sends.

A bubble's client sends either ``CONNECT host:port HTTP/1.1`` (a TLS tunnel follows) or a
plain-HTTP request with an absolute URI (``GET http://host/path HTTP/1.1``). Both carry
``Proxy-Authorization``. Everything else is refused here, before any policy is asked, with the
status a client understands:

- 400 for a malformed request line, header or target (an origin-form target, an ``https://``
  absolute URI that should have been a CONNECT, a missing port, a ``Host`` header that disagrees
  with the absolute URI, a host that is neither a name nor a plain IP literal);
- 408 when the head does not arrive within the header timeout (a slow client);
- 411 for a plain-HTTP body without ``Content-Length`` (chunked uploads are not relayed, so that no
  second request can ride inside a first one past its decision);
- 431 when the head is larger than allowed.

Nothing here touches a socket except :func:`read_head`; the rest works on bytes and is tested
directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from infracalc.egress import InvalidHost, normalise_host
from infracalc.errors import InfracalcError
from infracalc.proxy import sockets
from infracalc.proxy.redaction import redact

#: RFC 9110 token characters, for methods and header names.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A header value: visible characters, spaces and tabs (no control characters, no obs-fold).
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_VERSION = re.compile(rb"HTTP/1\.[01]")
#: A request target: visible ASCII characters only.
_TARGET = re.compile(rb"[\x21-\x7e]+")

#: Headers that concern one connection only (RFC 9110 section 7.6.1), never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class ProxyError(InfracalcError):
    """A request the proxy refuses: ``status`` and ``reason`` go back to the client.

    ``label`` is a short, stable name for logs and metrics (``malformed_request``,
    ``header_timeout``...); ``reason`` is the sentence a person reads.
    """

    def __init__(self, status: int, label: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.label = label
        self.reason = reason


class RequestKind(Enum):
    """How the bubble asks: a tunnel (CONNECT), a plain-HTTP request, or a request inside an inspected CONNECT."""

    CONNECT = "connect"
    HTTP = "http"
    HTTPS = "https"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """One parsed request head.

    Attributes:
        method: As sent (a token; methods are case-sensitive).
        target: The request target, as sent.
        version: ``HTTP/1.1`` or ``HTTP/1.0``.
        headers: ``(name, value)`` pairs in order, names as sent, values stripped.
        rest: Bytes that arrived after the head (a TLS hello, or the start of a body).
    """

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    rest: bytes = b""

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def single(self, name: str) -> str | None:
        """The one value of header ``name``, ``None`` when absent.

        Raises:
            ProxyError: 400, the header is repeated.
        """
        found = self.values(name)
        if len(found) > 1:
            raise ProxyError(400, "malformed_request", f"the {name} header appears {len(found)} times")
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the bubble wants to go.

    Attributes:
        host: A normalised host name (lowercase punycode) or the canonical text of an IP literal.
        port: 1 to 65535.
        ip_literal: The client named an address rather than a host name.
    """

    host: str
    port: int
    ip_literal: bool = False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A request the proxy understood; the policy decides the rest.

    Attributes:
        kind: Tunnel or plain HTTP.
        destination: Host and port.
        method: The request method (``CONNECT`` for a tunnel).
        path: Plain HTTP only: the path and query, starting with ``/``; empty for a tunnel.
        head: The head as received.
        content_length: Plain HTTP only: the body's length (0 without a body).
    """

    kind: RequestKind
    destination: Destination
    method: str
    path: str
    head: RequestHead = field(repr=False)
    content_length: int = 0


async def read_head(sock: socket.socket, *, limit: int, timeout: float) -> RequestHead:
    """Read one request head from a non-blocking ``sock``, within ``limit`` bytes and ``timeout`` seconds.

    Raises:
        ProxyError: 408 (too slow), 431 (too large), 400 (closed early or malformed).
    """
    received = bytearray()
    # Most heads have arrived whole by the time a connection is served: no timer for those.
    with contextlib.suppress(BlockingIOError, InterruptedError):
        head = _take_head(received, sock.recv(65536), limit)
        if head is not None:
            return head
    try:
        async with asyncio.timeout(timeout):
            while True:
                head = _take_head(received, await sockets.receive(sock, 65536), limit)
                if head is not None:
                    return head
    except TimeoutError:
        raise ProxyError(408, "header_timeout", f"the request head did not arrive within {timeout:g} s") from None


def _take_head(received: bytearray, chunk: bytes, limit: int) -> RequestHead | None:
    """Add ``chunk`` to ``received``; the parsed head once its end arrived, else ``None``.

    Raises:
        ProxyError: 431 (too large), 400 (closed early or malformed).
    """
    if not chunk:
        raise ProxyError(400, "incomplete_request", "the connection closed before the request head ended")
    searched_from = max(0, len(received) - 3)
    received += chunk
    end = received.find(b"\r\n\r\n", searched_from)
    if end == -1:
        if len(received) > limit:
            raise ProxyError(431, "header_too_large", f"the request head is larger than {limit} bytes")
        return None
    if end + 4 > limit:
        raise ProxyError(431, "header_too_large", f"the request head is larger than {limit} bytes")
    return parse_head(bytes(received[: end + 4]), rest=bytes(received[end + 4 :]))


def parse_head(data: bytes, *, rest: bytes = b"") -> RequestHead:
    """Parse a request head ending in an empty line.

    Raises:
        ProxyError: 400, with what is wrong.
    """
    lines = data.split(b"\r\n")
    if len(lines) < 3 or lines[-2:] != [b"", b""]:  # noqa: PLR2004 - request line, empty line, end
        raise ProxyError(400, "malformed_request", "the request head must end with an empty line (CRLF CRLF)")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1] or not _VERSION.fullmatch(parts[2]):  # noqa: PLR2004
        raise ProxyError(400, "malformed_request", "malformed request line: expected METHOD SP TARGET SP HTTP/1.1")
    if not _TARGET.fullmatch(parts[1]):
        raise ProxyError(400, "malformed_request", "the request target holds characters that are not allowed")
    method, target, version = (part.decode("latin-1") for part in parts)
    headers: list[tuple[str, str]] = []
    for line in lines[1:-2]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise ProxyError(400, "malformed_request", "malformed header line (folded lines are not accepted)")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise ProxyError(400, "malformed_request", f"the {name.decode()} header holds control characters")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return RequestHead(method, target, version, tuple(headers), rest)


def _port(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5:  # noqa: PLR2004
        raise ProxyError(400, "bad_port", f"{what}: the port must be a number from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:  # noqa: PLR2004
        raise ProxyError(400, "bad_port", f"{what}: the port must be a number from 1 to 65535")
    return port


@functools.lru_cache(maxsize=4096)
def _host(text: str) -> tuple[str, bool]:
    """Normal form of a host as a client wrote it, and whether it is an IP literal.

    Remembered: bubbles name the same few hosts again and again, and IDNA mapping is not cheap.
    """
    if text.startswith("[") and text.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(text[1:-1])), True
        except ValueError:
            raise ProxyError(400, "bad_host", f"{text!r} is not an IPv6 address") from None
    try:
        return str(ipaddress.IPv4Address(text)), True
    except ValueError:
        pass
    try:
        return normalise_host(text), False
    except InvalidHost as error:
        raise ProxyError(400, "bad_host", str(error)) from None


def parse_authority(authority: str, *, default_port: int | None = None) -> Destination:
    """``host:port`` (``[v6]:port`` for IPv6) as a :class:`Destination`.

    Raises:
        ProxyError: 400, malformed authority, host or port.
    """
    if "@" in authority:
        # user:password@host: credentials where they do not belong, never quoted back or logged.
        raise ProxyError(
            400,
            "userinfo",
            "the request target holds credentials (user:password@host): the proxy takes them only in "
            "Proxy-Authorization (set the proxy URL, not the target's)",
        )
    if not authority:
        raise ProxyError(400, "bad_host", "the request names no host")
    if authority.startswith("["):
        close = authority.find("]")
        host_text, after = authority[: close + 1], authority[close + 1 :]
        if close == -1 or (after and not after.startswith(":")):
            raise ProxyError(400, "bad_host", f"malformed host and port {authority!r}")
        port_text = after[1:] if after else ""
    else:
        host_text, colon, port_text = authority.rpartition(":")
        if not colon:
            host_text, port_text = authority, ""
        elif ":" in host_text:
            raise ProxyError(400, "bad_host", f"an IPv6 address must be written in brackets: {authority!r}")
    if not port_text:
        if default_port is None:
            raise ProxyError(400, "bad_port", f"{authority!r} names no port: CONNECT needs host:port")
        port = default_port
    else:
        port = _port(port_text, authority)
    host, literal = _host(host_text)
    return Destination(host, port, literal)


def interpret(head: RequestHead) -> ProxyRequest:
    """What the bubble asks for, checked for everything the policy cannot see.

    Raises:
        ProxyError: 400 or 411, with the reason.
    """
    if head.method == "CONNECT":
        destination = parse_authority(head.target)
        return ProxyRequest(RequestKind.CONNECT, destination, "CONNECT", "", head)
    try:
        parts = urlsplit(head.target)
    except ValueError:  # an unclosed IPv6 bracket, for instance
        raise ProxyError(400, "bad_host", "the request target is not a well-formed URL") from None
    if parts.scheme.lower() == "https":
        raise ProxyError(400, "https_absolute_uri", "an https:// URL must go through a CONNECT tunnel")
    if parts.scheme.lower() != "http" or not head.target.lower().startswith("http://"):
        raise ProxyError(
            400,
            "not_absolute_uri",
            "this is a forward proxy: send CONNECT host:port, or a request whose target is an http:// URL",
        )
    destination = parse_authority(parts.netloc, default_port=80)
    path = head.target[len("http://") + len(parts.netloc) :] or "/"
    if not path.startswith("/"):
        raise ProxyError(400, "malformed_request", "the URL's path must start with /")
    host_header = head.single("Host")
    if host_header is not None and parse_authority(host_header, default_port=80) != destination:
        raise ProxyError(
            400, "host_mismatch", f"the Host header {host_header!r} disagrees with the URL's host {destination}"
        )
    return ProxyRequest(RequestKind.HTTP, destination, head.method, path, head, body_length(head))


def body_length(head: RequestHead) -> int:
    """The request body's length (0 without one).

    Raises:
        ProxyError: 411 for a chunked body (refused, so that no second request can ride inside a first
            one past its decision), 400 for a malformed ``Content-Length``.
    """
    if head.values("Transfer-Encoding"):
        raise ProxyError(411, "chunked_body", "a request body must have a Content-Length (chunked bodies are refused)")
    length_text = head.single("Content-Length")
    if length_text is None:
        return 0
    if not length_text.isascii() or not length_text.isdigit() or len(length_text) > 15:  # noqa: PLR2004
        raise ProxyError(400, "malformed_request", f"malformed Content-Length {length_text!r}")
    return int(length_text)


def origin_request(request: ProxyRequest, *, close: bool = True, drop: frozenset[str] = frozenset()) -> bytes:
    """The head to send upstream for a plain-HTTP request, or one inside an inspected connection.

    Origin-form target, no hop-by-hop or proxy headers (nor those named in ``drop``, lowercase),
    ``Host`` set from the destination, and ``Connection: close`` when ``close`` (plain HTTP: one
    request per connection, each one decided).
    """
    head = request.head
    listed = {token.strip().lower() for value in head.values("Connection") for token in value.split(",")}
    lines = [f"{request.method} {request.path} {head.version}", f"Host: {host_header(request)}"]
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in listed or lowered == "host" or lowered in drop:
            continue
        lines.append(f"{name}: {value}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def host_header(request: ProxyRequest) -> str:
    """The ``Host`` header for ``request``'s destination: the port only when not the scheme's default."""
    destination = request.destination
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    default = 443 if request.kind is RequestKind.HTTPS else 80
    return host if destination.port == default else f"{host}:{destination.port}"


def response(status: int, reason: str, *, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete answer from the proxy itself: the status, ``reason`` (redacted) as a text body, then close."""
    body = (redact(reason) + "\n").encode("utf-8", "replace")
    lines = [
        f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Proxy-Agent: infracalc-egress",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: Answer to a CONNECT the policy allowed and the proxy could dial.
CONNECTION_ESTABLISHED = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: infracalc-egress\r\n\r\n"

_STATUS_TEXT = {
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

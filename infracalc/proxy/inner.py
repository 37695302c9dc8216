"""Requests inside a CONNECT the proxy inspects: read from the bubble's TLS session, checked before any policy.

Inside an inspected connection the bubble speaks HTTP/1.1 to the host it named in its CONNECT.
Each request is read here (one head at a time, within the proxy's limits) and refused, with the
status a client understands, when the policy could not judge it safely:

- 400 for a malformed head, a target that is not a path (or an ``https://`` URL of the same host),
  a ``Host`` header naming another host than the CONNECT (a request must not reach a host no
  decision covered), a CONNECT inside the tunnel, or a protocol upgrade (WebSocket: its frames
  would escape the request-by-request decisions);
- 411 for a chunked body (as for plain HTTP: a body must announce its length, so that its cap is
  checked before the upstream sees a byte);
- 431 for a head larger than the limit, 408 for one that does not arrive in time.

A client that speaks HTTP/2 (the connection preface) although the proxy agreed HTTP/1.1 only is
answered in HTTP/2 itself: a GOAWAY frame with the error ``HTTP_1_1_REQUIRED`` and the reason as
its debug data, which clients report.
"""

from __future__ import annotations

import struct
from urllib.parse import urlsplit

from infracalc.proxy.tls import TlsConnection
from infracalc.proxy.wire import (
    Destination,
    ProxyError,
    ProxyRequest,
    RequestHead,
    RequestKind,
    body_length,
    parse_authority,
    parse_head,
)

#: The start of HTTP/2's connection preface (RFC 9113, section 3.4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: HTTP/2's error code asking the client to use HTTP/1.1 (RFC 9113, section 7).
HTTP_1_1_REQUIRED = 0xD
#: What the proxy tells an HTTP/2 client.
H2_REASON = (
    "this host is reached through an inspected egress rule, which reads HTTP/1.1 only: "
    "use HTTP/1.1 (most clients do when HTTP/2 is not offered)"
)


class RequestReader:
    """Request heads and bodies from the bubble's side of an inspected connection, never reading past them."""

    def __init__(self, tls: TlsConnection, *, max_head: int) -> None:
        self.tls = tls
        self.max_head = max_head
        self._pending = bytearray()  # read from the session, not yet used (a body's start, a next head)
        self._buffer = bytearray(64 * 1024)
        self._view = memoryview(self._buffer)

    async def head(self) -> RequestHead | bytes | None:
        """The next request head; the raw bytes when they are HTTP/2's preface; ``None`` at a clean end.

        Raises:
            ProxyError: 400 (malformed, or the connection ended inside a head), 431 (too large).
        """
        searched_from = 0
        while True:
            if self._pending.startswith(H2_PREFACE[:16]):  # "PRI * HTTP/2.0\r\n": HTTP/2, not a request
                return bytes(self._pending)
            end = self._pending.find(b"\r\n\r\n", searched_from)
            if end != -1:
                if end + 4 > self.max_head:
                    raise ProxyError(431, "header_too_large", f"the request head is larger than {self.max_head} bytes")
                data = bytes(self._pending[: end + 4])
                del self._pending[: end + 4]
                return parse_head(data)
            if len(self._pending) > self.max_head:
                raise ProxyError(431, "header_too_large", f"the request head is larger than {self.max_head} bytes")
            searched_from = max(0, len(self._pending) - 3)
            count = await self.tls.read_into(self._view)
            if count == 0:
                if self._pending:
                    raise ProxyError(400, "incomplete_request", "the connection ended inside a request head")
                return None
            self._pending += self._view[:count]

    async def body_part(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the current request's body (what is pending first); ``b""`` at the end."""
        if self._pending:
            part = bytes(self._pending[:limit])
            del self._pending[:limit]
            return part
        count = await self.tls.read_into(self._view[: min(limit, len(self._view))])
        return bytes(self._view[:count])


def interpret_inner(head: RequestHead, destination: Destination) -> ProxyRequest:
    """A request inside a CONNECT to ``destination``, checked for what the policy cannot see.

    Raises:
        ProxyError: 400 or 411, with the reason.
    """
    if head.method == "CONNECT":
        raise ProxyError(400, "malformed_request", "a CONNECT inside an inspected connection is refused")
    target = head.target
    if target.startswith("/"):
        path = target
    elif target.lower().startswith("https://"):
        try:
            parts = urlsplit(target)
        except ValueError:
            raise ProxyError(400, "bad_host", "the request target is not a well-formed URL") from None
        if parse_authority(parts.netloc, default_port=443) != destination:
            raise ProxyError(400, "host_mismatch", f"the request names another host than the CONNECT ({destination})")
        path = target[len("https://") + len(parts.netloc) :] or "/"
        if not path.startswith("/"):
            raise ProxyError(400, "malformed_request", "the URL's path must start with /")
    else:
        raise ProxyError(
            400, "malformed_request", "inside an inspected connection the request target must be a path starting with /"
        )
    host = head.single("Host")
    if host is None:
        if head.version == "HTTP/1.1":
            raise ProxyError(400, "malformed_request", "an HTTP/1.1 request must carry a Host header")
    elif parse_authority(host, default_port=443) != destination:
        raise ProxyError(
            400, "host_mismatch", f"the Host header {host!r} names another host than the CONNECT ({destination})"
        )
    if head.values("Upgrade"):
        raise ProxyError(
            400,
            "upgrade_refused",
            "protocol upgrades (WebSocket...) are not relayed through an inspected rule: each request is decided",
        )
    return ProxyRequest(RequestKind.HTTPS, destination, head.method, path, head, body_length(head))


def h2_refusal(reason: str = H2_REASON) -> bytes:
    """What the proxy sends an HTTP/2 client: empty SETTINGS, then GOAWAY ``HTTP_1_1_REQUIRED`` with ``reason``."""
    settings = struct.pack("!I", 0)[1:] + bytes([0x4, 0]) + struct.pack("!I", 0)
    debug = reason.encode()
    payload = struct.pack("!II", 0, HTTP_1_1_REQUIRED) + debug
    goaway = struct.pack("!I", len(payload))[1:] + bytes([0x7, 0]) + struct.pack("!I", 0) + payload
    return settings + goaway

"""Asking the egress proxy, from inside a bubble, whether it lets a URL through, and why not.

When the proxy refuses an HTTPS call, it answers the ``CONNECT`` with 403 and the policy's reason
as the body; but Python's clients (urllib, requests, httpx) keep only the status of a refused
``CONNECT`` and drop that body, so a researcher sees "403 Forbidden" and no reason.
:func:`ask_proxy` opens the same ``CONNECT`` with the bubble's proxy credentials (``HTTPS_PROXY``,
set by the hub), reads the proxy's answer whole, and closes at once: no byte reaches the host.
Standard library only, like the rest of :mod:`infracalc.bubble`.

The answer is the proxy's decision for the host and port. Rules that name methods or paths bind
plain HTTP only (HTTPS travels in a tunnel the proxy cannot read), so they are not reflected here.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from infracalc.bubble.client import BubbleClientError, NotInABubble

#: The proxy variables, in the order they are read (both spellings: the hub sets both).
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy")
#: The most bytes of the proxy's answer read (its head and its one-line reason).
_MAX_ANSWER = 16 * 1024
_DEFAULT_PORTS = {"https": 443, "http": 80}
_CONNECTION_ESTABLISHED = 200


class ProxyUnreachable(BubbleClientError):
    """The egress proxy could not be reached, or its answer could not be read."""


@dataclass(frozen=True, slots=True)
class ProxyAnswer:
    """What the egress proxy answered for a host and port: its status and, on a refusal, the reason."""

    host: str
    port: int
    status: int
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the proxy would open the connection."""
        return self.status == _CONNECTION_ESTABLISHED

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else f"refused ({self.status})"
        return f"{self.host}:{self.port} {verdict}: {self.reason}"


def ask_proxy(url: str, *, environ: Mapping[str, str] | None = None, timeout: float = 10.0) -> ProxyAnswer:
    """The egress proxy's answer to a connection to ``url``'s host and port, without calling the host.

    Raises:
        NotInABubble: no proxy is set (``HTTPS_PROXY``).
        ValueError: ``url`` names no host.
        ProxyUnreachable: the proxy did not answer.
    """
    env = os.environ if environ is None else environ
    proxy = next((env[name] for name in PROXY_VARIABLES if env.get(name)), "")
    if not proxy:
        raise NotInABubble("HTTPS_PROXY not set: not in an INFRACALC bubble")
    target = urlsplit(url)
    if not target.hostname:
        raise ValueError(f"no host in {url!r}")
    port = target.port or _DEFAULT_PORTS.get(target.scheme, 443)
    authority = f"[{target.hostname}]:{port}" if ":" in target.hostname else f"{target.hostname}:{port}"
    via = urlsplit(proxy)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if via.username is not None:
        credentials = f"{unquote(via.username)}:{unquote(via.password or '')}"
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials.encode()).decode()}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    try:
        with socket.create_connection((via.hostname or "", via.port or 3128), timeout=timeout) as connection:
            connection.sendall(request)
            answer = _read_answer(connection)
    except OSError as error:
        raise ProxyUnreachable(f"the egress proxy cannot be reached: {error}") from None
    status, body = _parse(answer)
    reason = body.strip() or ("connection established" if status == _CONNECTION_ESTABLISHED else "no reason given")
    return ProxyAnswer(host=target.hostname, port=port, status=status, reason=reason)


def _read_answer(connection: socket.socket) -> bytes:
    """The proxy's answer: up to the end of its head on a 200 (the tunnel is then closed), else until it closes."""
    received = b""
    while len(received) < _MAX_ANSWER:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
        if received.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in received:
            break
    return received


def _parse(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    words = status_line.split(" ", 2)
    if len(words) < 2 or not words[1].isdigit():  # noqa: PLR2004 - "HTTP/1.1 <status>"
        raise ProxyUnreachable(f"the egress proxy's answer could not be read: {status_line[:100]!r}")
    return int(words[1]), body.decode("utf-8", "replace")

"""Upstream test servers for the network-namespace lab: the "internet" an egress proxy dials.

Run from the repository root (so that ``tests`` is importable)::

    python -m tests.support.upstream_server --server upstream-a=10.231.200.2 \\
        --cert cert.pem --key key.pem --exit-on-stdin-eof

Each ``--server NAME=ADDRESS`` gets plain HTTP on ``--http-port`` (80) and, when ``--cert`` and
``--key`` are given, HTTPS on ``--https-port`` (443), both bound to ``ADDRESS``. Every listener
speaks HTTP/1.1 with keep-alive, so one connection can carry many requests (the tunnel probe of
``tests.support.netns`` relies on it). Routes, for any of GET, HEAD, POST, PUT, PATCH, DELETE:

- ``/anything[...]``: 200 JSON ``{"server", "scheme", "host", "method", "path", "headers", "body"}``
  where ``server`` is the NAME given, ``host`` the Host header (``null`` when absent), ``path``
  the request target as received and ``body`` the request body decoded as UTF-8.
- ``/bytes/<n>``: 200 with exactly ``n`` bytes (at most 64 MiB) of the repeating pattern
  ``bytes(range(256))``, so that a client can check the content as well as the length.
- ``/keep-open[...]``: as ``/anything``, then the connection is kept open whatever the request's
  ``Connection`` header said (an upstream that never closes: the next request or the idle
  timeout ends it).
- ``/stall[...]``: no answer; the connection is closed after 20 seconds.
- anything else: 404 JSON ``{"error": ...}``.

Once every listener is bound, the program prints one line, ``ready``, to stdout and writes nothing
more there; request logs go to stderr. With ``--exit-on-stdin-eof`` it exits when its stdin
closes, so that servers started by a process that dies do not outlive it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BYTES = 64 * 1024 * 1024
"""The largest body ``/bytes/<n>`` serves."""

BYTES_PATTERN = bytes(range(256))
"""The pattern ``/bytes/<n>`` repeats; ``pattern_bytes(n)`` gives the expected body."""

_CHUNK = 64 * 1024
_IDLE_TIMEOUT = 30.0
_STALL_SECONDS = 20.0


def pattern_bytes(length: int) -> bytes:
    """The body ``/bytes/<length>`` returns."""
    repeats, rest = divmod(length, len(BYTES_PATTERN))
    return BYTES_PATTERN * repeats + BYTES_PATTERN[:rest]


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Who answers on a listener: the server's NAME and the scheme it speaks."""

    name: str
    scheme: str


class UpstreamHandler(BaseHTTPRequestHandler):
    """Answers ``/anything`` and ``/bytes/<n>``; the listener's identity comes from its server."""

    protocol_version = "HTTP/1.1"
    server_version = "infracalc-upstream/1"
    timeout = _IDLE_TIMEOUT
    server: UpstreamHTTPServer

    def do_GET(self) -> None:
        """Serve a GET."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Serve a HEAD (as GET, without the body)."""
        self._dispatch()

    def do_POST(self) -> None:
        """Serve a POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Serve a PATCH."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Log one line per request to stderr, prefixed by the server's name and scheme."""
        identity = self.server.identity
        sys.stderr.write(f"{identity.name} {identity.scheme} {self.address_string()} {format % args}\n")

    def _dispatch(self) -> None:
        body = self._read_body()
        route = self.path.split("?", 1)[0]
        if route == "/anything" or route.startswith("/anything/"):
            self._send_json(200, self._echo(body))
        elif route == "/keep-open" or route.startswith("/keep-open/"):
            self._send_json(200, self._echo(body))
            self.close_connection = False
        elif route == "/stall" or route.startswith("/stall/"):
            time.sleep(_STALL_SECONDS)
            self.close_connection = True
        elif route.startswith("/bytes/") and route.removeprefix("/bytes/").isdigit():
            length = int(route.removeprefix("/bytes/"))
            if length > MAX_BYTES:
                self._send_json(400, {"error": f"at most {MAX_BYTES} bytes"})
            else:
                self._send_bytes(length)
        else:
            self._send_json(404, {"error": f"no route for {route}"})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _echo(self, body: bytes) -> dict[str, Any]:
        identity = self.server.identity
        return {
            "server": identity.name,
            "scheme": identity.scheme,
            "host": self.headers.get("Host"),
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", errors="replace"),
        }

    def _send_json(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_bytes(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        body = pattern_bytes(length)
        for start in range(0, length, _CHUNK):
            self.wfile.write(body[start : start + _CHUNK])


class UpstreamHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its identity and, given a TLS context, speaks HTTPS.

    The TLS handshake happens in the connection's own thread, so a client that connects and says
    nothing does not stop the listener from accepting others.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], identity: ServerIdentity, tls: ssl.SSLContext | None) -> None:
        self.identity = identity
        self.tls = tls
        super().__init__(address, UpstreamHandler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse lookup of the address (no resolver in a lab namespace)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap the connection in TLS (when this is an HTTPS listener), then serve it."""
        if self.tls is not None:
            request.settimeout(_IDLE_TIMEOUT)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as error:
                sys.stderr.write(f"{self.identity.name} https {client_address[0]} handshake failed: {error}\n")
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed connection in one line instead of a traceback."""
        error = sys.exc_info()[1]
        sys.stderr.write(f"{self.identity.name} {self.identity.scheme} {client_address[0]} error: {error!r}\n")


def _server_argument(value: str) -> tuple[str, str]:
    name, sep, address = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDRESS, got {value!r}")
    try:
        ipaddress.ip_address(address)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return name, address


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.upstream_server", description=__doc__.split("\n")[0])
    parser.add_argument("--server", action="append", type=_server_argument, required=True, metavar="NAME=ADDRESS")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--cert", help="PEM certificate chain for HTTPS (HTTPS is off without it)")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes")
    arguments = parser.parse_args(argv)
    if (arguments.cert is None) != (arguments.key is None):
        parser.error("--cert and --key go together")
    return arguments


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _bind_all(arguments: argparse.Namespace) -> list[UpstreamHTTPServer]:
    tls = _tls_context(arguments.cert, arguments.key) if arguments.cert else None
    servers: list[UpstreamHTTPServer] = []
    for name, address in arguments.server:
        servers.append(UpstreamHTTPServer((address, arguments.http_port), ServerIdentity(name, "http"), None))
        if tls is not None:
            servers.append(UpstreamHTTPServer((address, arguments.https_port), ServerIdentity(name, "https"), tls))
    return servers


def _wait_for_stdin_eof() -> None:
    while os.read(0, 4096):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Bind every listener, print ``ready``, serve until stdin closes (if asked) or a signal."""
    arguments = _parse_arguments(argv)
    try:
        servers = _bind_all(arguments)
    except OSError as error:
        sys.stderr.write(f"cannot listen: {error}\n")
        return 1
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        if arguments.exit_on_stdin_eof:
            _wait_for_stdin_eof()
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    for server in servers:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

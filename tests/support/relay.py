"""Sockets in other network namespaces, and TCP relays between the loopbacks of two namespaces.

The namespace lab (``tests.support.netns``) keeps every address of its own inside namespaces it
creates; what a program inside must reach on the host's loopback (OPA, the service, a test's sink),
and what the test process reads from a program inside (its metrics, a raw connection), crosses
through a ``Relay``: a listener on ``127.0.0.1:<port>`` in one namespace whose connections are
relayed, byte for byte and with half-closes, to ``127.0.0.1:<port>`` in the other.

A socket belongs to the network namespace of the thread that created it, for its whole life. So
``in_namespace`` runs a function on a short-lived thread that first joins the namespace with
``setns(2)`` (through libc: ``os.setns`` exists from Python 3.12 on only); the sockets it creates
stay in that namespace while any thread uses them. The calling thread never changes namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

CLONE_NEWNET = 0x40000000
"""``setns(2)``'s flag for a network namespace."""

HOST = None
"""The namespace of this process (``in_namespace`` and ``Relay`` take a namespace name or this)."""

_T = TypeVar("_T")
_CHUNK = 65536
_HOST_NAMESPACE = Path(f"/proc/{os.getpid()}/ns/net")


def namespace_path(name: str | None) -> Path:
    """The file that names a namespace: ``/run/netns/<name>`` (``ip netns``), or this process's for None."""
    return _HOST_NAMESPACE if name is None else Path("/run/netns") / name


def in_namespace(name: str | None, function: Callable[[], _T]) -> _T:
    """Call ``function`` on a thread inside the network namespace ``name`` and return what it returns.

    Raises:
        OSError: The namespace cannot be opened or joined; whatever ``function`` raised.
    """
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            descriptor = os.open(namespace_path(name), os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(descriptor, CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns into {name or 'the host namespace'}: {os.strerror(error)}")
            finally:
                os.close(descriptor)
            outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, which raises it
            failure.append(error)

    worker = threading.Thread(target=run, name=f"in-namespace-{name}", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


def create_connection(name: str | None, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """A TCP connection to ``address`` made from inside the namespace ``name``."""
    return in_namespace(name, lambda: socket.create_connection(address, timeout=timeout))


def create_server(name: str | None, address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket bound to ``address`` inside the namespace ``name``."""
    return in_namespace(name, lambda: socket.create_server(address))


class Relay:
    """Listens on ``127.0.0.1:port`` in ``source``; relays each connection to ``127.0.0.1:port`` in ``target``.

    A connection the target refuses is reset at once, so the client sees a failure, not a hang.
    ``close`` stops listening and cuts the connections in flight.
    """

    def __init__(self, source: str | None, target: str | None, port: int) -> None:
        self.source, self.target, self.port = source, target, port
        self._listener = create_server(source, ("127.0.0.1", port))
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name=f"relay-{port}", daemon=True).start()

    def __repr__(self) -> str:
        return f"Relay({self.source or 'host'}:{self.port} -> {self.target or 'host'}:{self.port})"

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def close(self) -> None:
        """Stop listening and close every relayed connection (idempotent)."""
        with self._lock:
            self._closed = True
            sockets, self._open = list(self._open), set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in sockets:  # the relaying thread sees the end and closes them
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name=f"relay-{self.port}-conn", daemon=True).start()

    def _track(self, *sockets: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._open.update(sockets)
            return True

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = create_connection(self.target, ("127.0.0.1", self.port))
        except OSError:
            # Reset rather than close: the client learns at once that nothing answers there.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        upstream.settimeout(None)
        if not self._track(client, upstream):
            client.close()
            upstream.close()
            return
        try:
            _pump(client, upstream)
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            client.close()
            upstream.close()


def _pump(first: socket.socket, second: socket.socket) -> None:
    """Copy both ways until both directions have ended; an end of stream is passed on as a half-close."""
    peers = {first: second, second: first}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        reading = 2
        while reading:
            for key, _ in selector.select():
                readable = cast(socket.socket, key.fileobj)
                try:
                    data = readable.recv(_CHUNK)
                    if data:
                        peers[readable].sendall(data)
                        continue
                    peers[readable].shutdown(socket.SHUT_WR)
                except OSError:
                    return
                selector.unregister(readable)
                reading -= 1

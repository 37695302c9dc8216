"""``ask_proxy``: the CONNECT a bubble's clients send, and the proxy's answer read whole.

The answers are the proxy's own bytes (``infracalc.proxy.wire``); the real proxy's refusal is read
end to end in tests/integration/hub/test_jupyterlab.py.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator

import pytest

from infracalc.bubble.client import NotInABubble
from infracalc.bubble.egress import ProxyUnreachable, ask_proxy
from infracalc.proxy.wire import CONNECTION_ESTABLISHED, response


class OneAnswer:
    """A TCP server that reads one request head, answers ``answer`` and keeps what it read."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.received:
                self.received += connection.recv(4096)
            connection.sendall(self.answer)
            if self.answer.startswith(CONNECTION_ESTABLISHED):
                connection.recv(1)  # a tunnel stays open until the client closes it

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def refusing() -> Iterator[OneAnswer]:
    server = OneAnswer(response(403, "no approved rule of project demo allows api.other.test:443"))
    yield server
    server.close()


def test_a_refusal_comes_back_with_the_proxys_reason_and_the_bubbles_credentials_are_sent(
    refusing: OneAnswer,
) -> None:
    proxy = f"http://b1:ibt_b1_s%40cret@127.0.0.1:{refusing.port}"
    answer = ask_proxy("https://api.other.test/v1/data?x=1", environ={"HTTPS_PROXY": proxy})
    assert (answer.allowed, answer.status, answer.host, answer.port) == (False, 403, "api.other.test", 443)
    assert answer.reason == "no approved rule of project demo allows api.other.test:443"
    assert str(answer) == f"api.other.test:443 refused (403): {answer.reason}"
    head = refusing.received.decode()
    assert head.startswith("CONNECT api.other.test:443 HTTP/1.1\r\n")
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'b1:ibt_b1_s@cret').decode()}" in head
    assert "/v1/data" not in head  # the path never reaches the proxy, nor the host


def test_an_allowed_connection_is_closed_at_once() -> None:
    server = OneAnswer(CONNECTION_ESTABLISHED)
    try:
        answer = ask_proxy(
            "http://plain.allowed.test:8080/", environ={"https_proxy": f"http://127.0.0.1:{server.port}"}
        )
    finally:
        server.close()
    assert (answer.allowed, answer.status, answer.port, answer.reason) == (True, 200, 8080, "connection established")
    assert "Proxy-Authorization" not in server.received.decode()


def test_outside_a_bubble_there_is_no_proxy_to_ask() -> None:
    with pytest.raises(NotInABubble, match="HTTPS_PROXY"):
        ask_proxy("https://api.example.org/", environ={})


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="no host"):
        ask_proxy("https:///path", environ={"HTTPS_PROXY": "http://127.0.0.1:9"})


def test_an_unreachable_or_garbled_proxy_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(ProxyUnreachable, match="cannot be reached"):
        ask_proxy("https://api.example.org/", environ={"HTTPS_PROXY": f"http://127.0.0.1:{port}"})
    garbled = OneAnswer(b"SSH-2.0-OpenSSH\r\n\r\n")
    try:
        with pytest.raises(ProxyUnreachable, match="could not be read"):
            ask_proxy("https://api.example.org/", environ={"HTTPS_PROXY": f"http://127.0.0.1:{garbled.port}"})
    finally:
        garbled.close()

"""A connection that fails inside the proxy is answered 502, counted and audited by source like any refusal."""

from __future__ import annotations

import socket

import pytest

from infracalc.policy import PolicyClient
from infracalc.proxy.events import EgressEvent, EventReporter
from infracalc.proxy.server import EgressProxy, _Connection
from infracalc.proxy.settings import ProxySettings


async def test_an_unexpected_failure_is_answered_and_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = EventReporter("http://127.0.0.1:9", "iep_" + "0" * 64, queue_size=10, grace_seconds=1)
    submitted: list[EgressEvent] = []
    monkeypatch.setattr(reporter, "submit", submitted.append)
    proxy = EgressProxy(ProxySettings(), policy=PolicyClient.__new__(PolicyClient), reporter=reporter)

    async def fail(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(proxy, "_handle", fail)
    inside, outside = socket.socketpair()
    inside.setblocking(False)
    proxy._open = 1
    await proxy._serve(inside, _Connection("10.0.0.2"))
    assert outside.recv(4096).startswith(b"HTTP/1.1 502 ")
    proxy.refusals.flush()
    assert [(event.kind, event.source, event.label, event.status) for event in submitted] == [
        ("refusals", "10.0.0.2", "internal_error", 502)
    ]
    assert proxy._open == 0
    outside.close()

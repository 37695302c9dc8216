"""The proxy's events encode into the service's schema, field for field; the schema refuses what it must."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from infracalc.proxy.events import EgressEvent as ProxyEvent
from infracalc.proxy.events import EventBatch, now_text
from infracalc.service.egress_events.schemas import MAX_EVENTS, EgressEvent, EgressEventBatch

PROXY_EVENTS = [
    # An allowed tunnel, once dialled.
    ProxyEvent(
        kind="decision",
        at=now_text(),
        bubble="0123456789abcdef",
        project="cohort",
        scheme="connect",
        host="api.example.org",
        port=443,
        allow=True,
        reason="rule r1 of project cohort allows api.example.org:443",
        rule_id="r1",
        address="93.184.216.34",
    ),
    # A plain-HTTP refusal.
    ProxyEvent(
        kind="decision",
        at=now_text(),
        bubble="0123456789abcdef",
        project="cohort",
        scheme="http",
        host="api.example.org",
        port=80,
        method="DELETE",
        path="/v1/items?id=1",
        allow=False,
        reason="no approved rule of project cohort allows DELETE /v1/items?id=1 on api.example.org:80",
    ),
    # A made-up bubble id: 407, no project.
    ProxyEvent(
        kind="decision",
        at=now_text(),
        bubble="madeupmadeupmade",
        scheme="connect",
        host="2001:db8::1",
        port=8443,
        allow=False,
        reason="unknown bubble",
    ),
    # Refused before the policy, the bubble's credentials being valid.
    ProxyEvent(
        kind="refusal",
        at=now_text(),
        bubble="0123456789abcdef",
        source="10.0.0.2",
        project="cohort",
        allow=False,
        label="bad_host",
        status=400,
        reason="'0xa9fea9fe' is not a host name",
    ),
    # Refusals of a client without valid credentials, counted over an interval.
    ProxyEvent(
        kind="refusals",
        at=now_text(),
        until=now_text(),
        source="2001:db8::7",
        allow=False,
        label="proxy_auth",
        status=407,
        count=12,
        reason="Proxy-Authorization must use the Basic scheme",
    ),
    # A tunnel's end.
    ProxyEvent(
        kind="tunnel_closed",
        at=now_text(),
        bubble="0123456789abcdef",
        project="cohort",
        scheme="connect",
        host="api.example.org",
        port=443,
        allow=True,
        reason="closed",
        rule_id="r1",
        bytes_up=1234,
        bytes_down=56789,
        seconds=1.5,
    ),
    # A CONNECT opened through an inspect rule, then one request inside it, recorded once over.
    ProxyEvent(
        kind="decision",
        at=now_text(),
        bubble="0123456789abcdef",
        project="cohort",
        scheme="connect",
        host="api.example.org",
        port=443,
        allow=True,
        reason="rule r2 of project cohort inspects api.example.org:443",
        rule_id="r2",
        address="93.184.216.34",
        mode="inspect",
    ),
    ProxyEvent(
        kind="decision",
        at=now_text(),
        bubble="0123456789abcdef",
        project="cohort",
        scheme="https",
        host="api.example.org",
        port=443,
        method="GET",
        path="/v1/items?sha256=" + "0" * 64,
        allow=True,
        reason="rule r2 of project cohort allows api.example.org:443",
        rule_id="r2",
        status=200,
        bytes_up=120,
        bytes_down=5000,
    ),
]


def test_the_two_structs_have_the_same_fields() -> None:
    proxy = {field.name for field in msgspec.structs.fields(ProxyEvent)}
    service = {field.name for field in msgspec.structs.fields(EgressEvent)}
    assert proxy == service


@pytest.mark.parametrize(
    "event",
    PROXY_EVENTS,
    ids=[
        "allowed",
        "refused-http",
        "unknown-bubble",
        "refusal",
        "refusals",
        "tunnel-closed",
        "inspected-connect",
        "inspected-request",
    ],
)
def test_a_proxy_event_decodes_into_the_service_schema(event: ProxyEvent) -> None:
    body = msgspec.json.encode(EventBatch(events=[event]))
    (decoded,) = msgspec.json.decode(body, type=EgressEventBatch).events
    for field in msgspec.structs.fields(ProxyEvent):
        sent, received = getattr(event, field.name), getattr(decoded, field.name)
        if field.name in ("at", "until") and sent is not None:
            assert received.isoformat() == sent
        else:
            assert received == sent, field.name


def test_a_full_proxy_batch_decodes() -> None:
    batch = EventBatch(events=PROXY_EVENTS * 100)  # more than the proxy's batch: 800 events
    assert len(msgspec.json.decode(msgspec.json.encode(batch), type=EgressEventBatch).events) == 800


def good() -> dict[str, Any]:
    return msgspec.to_builtins(PROXY_EVENTS[0])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"surprise": 1}, "$.events[0]"),
        ({"kind": "opened"}, "$.events[0].kind"),
        ({"scheme": "ftp"}, "$.events[0].scheme"),
        ({"mode": "opaque"}, "$.events[0].mode"),
        ({"port": 0}, "$.events[0].port"),
        ({"port": "443"}, "$.events[0].port"),
        ({"at": "2026-01-05T09:00:00"}, "$.events[0].at"),  # no time zone
        ({"at": "yesterday"}, "$.events[0].at"),
        ({"bubble": ""}, "$.events[0].bubble"),
        ({"bubble": "b" * 33}, "$.events[0].bubble"),
        ({"bytes_up": -1}, "$.events[0].bytes_up"),
        ({"reason": None}, "$.events[0].reason"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(change: dict[str, Any], path: str) -> None:
    body = msgspec.json.encode({"events": [{**good(), **change}]})
    with pytest.raises(msgspec.ValidationError, match=re.escape(f"at `{path}`")):
        msgspec.json.decode(body, type=EgressEventBatch)


def counted() -> dict[str, Any]:
    return msgspec.to_builtins(PROXY_EVENTS[4])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({**good(), "bubble": None}, "a decision event names the bubble, the scheme, the host and the port"),
        ({**good(), "host": None}, "a decision event names the bubble, the scheme, the host and the port"),
        ({**msgspec.to_builtins(PROXY_EVENTS[3]), "label": None}, "a refusal event names the bubble, the label"),
        ({**counted(), "bubble": "0123456789abcdef"}, "either the bubble or the source, not both"),
        ({**counted(), "source": None}, "either the bubble or the source, not both"),
        ({**counted(), "count": None}, "a refusals event gives the count"),
        ({**counted(), "until": None}, "a refusals event gives the count"),
        ({**counted(), "count": 0}, "Expected `int` >= 1"),
        ({**counted(), "status": 99}, "Expected `int` >= 100"),
    ],
)
def test_each_kind_names_what_it_needs(event: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        msgspec.json.decode(msgspec.json.encode({"events": [event]}), type=EgressEventBatch)


def test_a_batch_holds_one_to_max_events() -> None:
    with pytest.raises(msgspec.ValidationError, match="length >= 1"):
        msgspec.json.decode(b'{"events": []}', type=EgressEventBatch)
    too_many = msgspec.json.encode({"events": [good()] * (MAX_EVENTS + 1)})
    with pytest.raises(msgspec.ValidationError, match=f"length <= {MAX_EVENTS}"):
        msgspec.json.decode(too_many, type=EgressEventBatch)
    full = msgspec.json.encode({"events": [good()] * MAX_EVENTS})
    assert len(msgspec.json.decode(full, type=EgressEventBatch).events) == MAX_EVENTS

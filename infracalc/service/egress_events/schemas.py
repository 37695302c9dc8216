"""What the egress proxy sends to ``POST /api/v1/egress/events`` (msgspec structs; unknown fields are refused).

The service owns this schema; the proxy's :class:`infracalc.proxy.events.EgressEvent` must encode
into it (``tests/unit/service/test_egress_event_schema.py`` proves it does). The proxy reports
what a bubble sent, so the limits on free text are the proxy's own (a request head of 16 KiB by
default) with room to spare: a batch the service refuses is retried by the proxy until it is
accepted, and egress stays closed meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

#: The most events one request may carry (the proxy sends up to 500).
MAX_EVENTS = 1000
#: The largest body of one request: a full batch whose events carry paths as long as a request head.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: The longest free text accepted in one field (a path, a method, a reason).
MAX_TEXT = 32 * 1024

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class EgressEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One event of a bubble's egress.

    ``kind`` is ``decision`` (the policy was asked: ``allow``, ``reason``, ``rule_id``; ``address``
    once dialled) or ``tunnel_closed`` (``bytes_up``, ``bytes_down``, ``seconds``; ``reason`` says why).
    """

    kind: Literal["decision", "tunnel_closed"]
    at: Annotated[datetime, msgspec.Meta(tz=True, description="when, ISO 8601 with a time zone (UTC)")]
    bubble: Annotated[
        str, msgspec.Meta(min_length=1, max_length=32, description="the bubble's id, as its credentials claimed")
    ]
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    scheme: Literal["connect", "http"]
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    method: Text | None = None
    path: Text | None = None
    allow: bool = False
    reason: Text
    rule_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    address: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    bytes_up: Count | None = None
    bytes_down: Count | None = None
    seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None


class EgressEventBatch(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/egress/events``: events in the order they happened."""

    events: Annotated[list[EgressEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]

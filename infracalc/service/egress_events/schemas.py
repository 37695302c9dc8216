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


#: What the proxy reports: a policy decision, a tunnel's end, a refusal made before the policy
#: as the bubble whose credentials were valid, or refusals counted over an interval.
Kind = Literal["decision", "tunnel_closed", "refusal", "refusals"]


class EgressEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One event of a bubble's egress, or of a client that the proxy could not take for a bubble.

    ``kind`` is one of:

    - ``decision``: the policy was asked (``allow``, ``reason``, ``rule_id``; ``address`` once dialled;
      ``mode`` when a CONNECT is allowed). A request inside a CONNECT the proxy inspects (scheme
      ``https``) is one decision with its ``status`` and ``bytes_up``/``bytes_down``; its ``path``
      carries the query's SHA-256, never the query;
    - ``tunnel_closed``: ``bytes_up``, ``bytes_down``, ``seconds``; ``reason`` says why it ended;
    - ``refusal``: refused before the policy (a malformed request, say) although the bubble's
      credentials were valid: the bubble, ``label`` and ``status``, and what the request named;
    - ``refusals``: ``count`` refusals with one ``label`` of one actor between ``at`` and
      ``until``: a client without valid credentials (``source``, its address, and no ``bubble``),
      or a bubble refused by a limit; ``reason`` is the first one's.

    ``decision``, ``tunnel_closed`` and ``refusal`` name a bubble; the first two name the host,
    port and scheme too.
    """

    kind: Kind
    at: Annotated[datetime, msgspec.Meta(tz=True, description="when, ISO 8601 with a time zone (UTC)")]
    bubble: (
        Annotated[
            str, msgspec.Meta(min_length=1, max_length=32, description="the bubble's id, as its credentials claimed")
        ]
        | None
    ) = None
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="the client's address")] | None = None
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    scheme: Literal["connect", "http", "https"] | None = None
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    method: Text | None = None
    path: Text | None = None
    allow: bool = False
    reason: Text
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    rule_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    address: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    mode: Literal["tunnel", "inspect"] | None = None
    bytes_up: Count | None = None
    bytes_down: Count | None = None
    seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None

    def __post_init__(self) -> None:
        """The fields each kind needs (msgspec turns a ``ValueError`` here into a validation error)."""
        if self.kind in ("decision", "tunnel_closed"):
            if self.bubble is None or self.scheme is None or self.host is None or self.port is None:
                raise ValueError(f"a {self.kind} event names the bubble, the scheme, the host and the port")
        elif self.kind == "refusal":
            if self.bubble is None or self.label is None or self.status is None:
                raise ValueError("a refusal event names the bubble, the label and the status")
        elif (self.bubble is None) == (self.source is None):
            raise ValueError("a refusals event names either the bubble or the source, not both")
        elif self.count is None or self.until is None or self.label is None:
            raise ValueError("a refusals event gives the count, the label and the end of its interval (until)")


class EgressEventBatch(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/egress/events``: events in the order they happened."""

    events: Annotated[list[EgressEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]

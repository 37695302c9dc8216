"""What the egress rules API accepts and returns (msgspec structs; unknown fields are refused).

The host is checked by :func:`infracalc.egress.hosts.parse_host_pattern` in the service (IP
literals, a bare ``*``, wildcards over a public suffix and malformed names are refused there, with
the validator's own message); everything else is checked here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db import EgressMode, EgressRuleStatus

#: An HTTP method token in upper case (RFC 9110 section 5.6.2, letters only in practice).
METHOD_PATTERN = r"^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$"
#: A path prefix: starts with ``/``, visible ASCII only (no spaces, no control characters).
PATH_PREFIX_PATTERN = r"^/[\x21-\x7e]{0,1023}$"

Port = Annotated[int, msgspec.Meta(ge=1, le=65535, description="a TCP port, 1 to 65535")]
Method = Annotated[str, msgspec.Meta(pattern=METHOD_PATTERN, description="an HTTP method in upper case")]
PathPrefix = Annotated[str, msgspec.Meta(pattern=PATH_PREFIX_PATTERN, description="a path prefix starting with /")]

_VISIBLE_ONLY = (
    "Enforced on every request the proxy sees: plain HTTP, and HTTPS through an inspect rule. A tunnel "
    "rule carries TLS unopened, so it may not restrict them (refused)."
)
#: The caps' defaults and bounds (bytes).
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_DAILY_UPLOAD_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
MAX_CAP = 1024 * 1024 * 1024 * 1024


class EgressRequestCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A lead's request for an external host that the project's bubbles may call."""

    host: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=255,
            description=(
                "an exact host ('api.example.org') or one leading wildcard label ('*.example.org', "
                "which matches names below example.org but not example.org itself); no IP literal, no "
                "bare '*', no wildcard over a public suffix such as '*.com' or '*.co.uk'; internationalised "
                "names are given or stored as punycode"
            ),
        ),
    ]
    justification: Annotated[
        str,
        msgspec.Meta(min_length=20, max_length=4000, description="why the project needs it (20 characters or more)"),
    ]
    ports: Annotated[list[Port], msgspec.Meta(min_length=1, max_length=32, description="allowed ports")] = (
        msgspec.field(default_factory=lambda: [443])
    )
    mode: Annotated[
        EgressMode,
        msgspec.Meta(
            description=(
                "how HTTPS through the rule is carried: 'inspect' (the default: the proxy opens the TLS with a "
                "certificate of the platform's egress CA, which bubbles trust, and decides every request by "
                "method, path and size) or 'tunnel' (an opaque CONNECT, host and port only, for clients that pin "
                "certificates; refused where the platform forbids tunnels)"
            )
        ),
    ] = EgressMode.INSPECT
    methods: Annotated[
        list[Method],
        msgspec.Meta(
            max_length=16,
            description=f"HTTP methods allowed (empty: GET and HEAD for an inspect rule, any for a tunnel rule). "
            f"{_VISIBLE_ONLY}",
        ),
    ] = msgspec.field(default_factory=list)
    path_prefixes: Annotated[
        list[PathPrefix],
        msgspec.Meta(max_length=32, description=f"path prefixes allowed (empty: any path). {_VISIBLE_ONLY}"),
    ] = msgspec.field(default_factory=list)
    max_request_bytes: Annotated[
        int,
        msgspec.Meta(ge=0, le=MAX_CAP, description="the largest body of one request (0: no body); 413 above"),
    ] = DEFAULT_MAX_REQUEST_BYTES
    daily_upload_bytes: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=MAX_CAP,
            description="bytes (request heads and bodies) a bubble's user may send under the rule per day (UTC); "
            "429 once spent",
        ),
    ] = DEFAULT_DAILY_UPLOAD_BYTES
    max_response_bytes: Annotated[
        int,
        msgspec.Meta(ge=0, le=MAX_CAP, description="the largest answer body relayed; a larger one is refused (502)"),
    ] = DEFAULT_MAX_RESPONSE_BYTES
    expires_in_days: Annotated[
        int, msgspec.Meta(ge=1, le=365, description="how long the rule lasts, in days from the request (1 to 365)")
    ] = 90


class EgressDecision(msgspec.Struct, forbid_unknown_fields=True):
    """CASD staff's answer to a request, with a comment the lead will read."""

    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class EgressRuleOut(msgspec.Struct):
    """A request or rule, whatever its status."""

    id: str
    project: str
    host: str
    wildcard: bool
    pattern: str
    ports: list[int]
    mode: EgressMode
    #: A tunnel rule: the proxy sees host and port only, never a method, a path or a size.
    opaque: bool
    methods: list[str]
    path_prefixes: list[str]
    max_request_bytes: int
    daily_upload_bytes: int
    max_response_bytes: int
    justification: str
    expires_at: datetime
    status: EgressRuleStatus
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str | None
    revoked_by: str | None
    revoked_at: datetime | None


class EgressCheckOut(msgspec.Struct):
    """What the egress proxy would decide for a URL, and why (``infracalc.egress``'s decision)."""

    allow: bool
    reason: str
    rule_id: str | None
    #: How the rule carries HTTPS (``inspect`` or ``tunnel``), when a rule was found.
    mode: str | None = None

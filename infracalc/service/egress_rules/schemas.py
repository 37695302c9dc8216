"""What the egress rules API accepts and returns (msgspec structs; unknown fields are refused).

The host is checked by :func:`infracalc.egress.hosts.parse_host_pattern` in the service (IP
literals, a bare ``*``, wildcards over a public suffix and malformed names are refused there, with
the validator's own message); everything else is checked here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db import EgressRuleStatus

#: An HTTP method token in upper case (RFC 9110 section 5.6.2, letters only in practice).
METHOD_PATTERN = r"^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$"
#: A path prefix: starts with ``/``, visible ASCII only (no spaces, no control characters).
PATH_PREFIX_PATTERN = r"^/[\x21-\x7e]{0,1023}$"

Port = Annotated[int, msgspec.Meta(ge=1, le=65535, description="a TCP port, 1 to 65535")]
Method = Annotated[str, msgspec.Meta(pattern=METHOD_PATTERN, description="an HTTP method in upper case")]
PathPrefix = Annotated[str, msgspec.Meta(pattern=PATH_PREFIX_PATTERN, description="a path prefix starting with /")]

#: The one rule about methods and path prefixes, as the API documents it (the service enforces it).
PLAIN_HTTP_RULE = (
    "Methods and path prefixes bind plain-HTTP calls only: an HTTPS call goes through a CONNECT tunnel, "
    "where the proxy sees the host and port but neither method nor path. A rule that restricts them "
    "therefore allows plain HTTP only and refuses every HTTPS call to the host, so a request that gives "
    "them must say so with plain_http_only: true; leave them empty for an HTTPS host."
)


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
    methods: Annotated[
        list[Method],
        msgspec.Meta(max_length=16, description=f"HTTP methods allowed (empty: any). {PLAIN_HTTP_RULE}"),
    ] = msgspec.field(default_factory=list)
    path_prefixes: Annotated[
        list[PathPrefix],
        msgspec.Meta(max_length=32, description=f"path prefixes allowed (empty: any path). {PLAIN_HTTP_RULE}"),
    ] = msgspec.field(default_factory=list)
    plain_http_only: Annotated[
        bool,
        msgspec.Meta(
            description="true when methods or path prefixes are given: the rule is for plain-HTTP calls only, and "
            "every HTTPS call to the host is refused (required with them, refused without them)"
        ),
    ] = False
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
    methods: list[str]
    path_prefixes: list[str]
    #: The rule restricts methods or paths, so it allows plain-HTTP calls only (HTTPS calls are refused).
    plain_http_only: bool
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

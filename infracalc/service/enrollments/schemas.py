"""What the enrollments API accepts and returns (msgspec structs; unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db import EnrollmentState, MemberRole

#: Default and longest life of an invitation, in hours.
DEFAULT_EXPIRY_HOURS = 72
MAX_EXPIRY_HOURS = 14 * 24

#: A plausible e-mail address: a local part of RFC 5322's ASCII characters (Keycloak refuses any other, and a
#: control character in a directory query), one ``@``, a domain with a dot.
EMAIL_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$"
#: A Keycloak username the hub and the bubbles can carry: lowercase letters, digits, ``.``, ``_``, ``-``.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}$"

#: A first or last name: any letters, but no control character (C0, DEL or C1) and no angle bracket.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f<>]+$")]


class EnrollmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An invitation: who, to which project, in which role, for how long."""

    email: Annotated[str, msgspec.Meta(max_length=254, pattern=EMAIL_PATTERN, examples=["ada@example.org"])]
    first_name: Name
    last_name: Name
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=128, description="the project's id (slug)")]
    role: MemberRole = MemberRole.MEMBER
    expires_in_hours: Annotated[
        int,
        msgspec.Meta(
            ge=1, le=MAX_EXPIRY_HOURS, description="how long the link is valid: 72 h by default, 14 days at most"
        ),
    ] = DEFAULT_EXPIRY_HOURS
    username: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=USERNAME_PATTERN,
                description="the Keycloak username to create (default: made from the e-mail's local part)",
            ),
        ]
        | None
    ) = None


class EnrollmentOut(msgspec.Struct):
    """An invitation as staff see it (never its token)."""

    id: str
    email: str
    first_name: str
    last_name: str
    username: str
    project: str
    role: MemberRole
    state: EnrollmentState
    #: Whether an unfinished invitation's link has expired (then resend it, or revoke it).
    expired: bool
    invited_by: str
    invited_at: datetime
    expires_at: datetime
    networks: list[str]
    confirmed_at: datetime | None
    completed_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None


class EnrollmentLink(msgspec.Struct):
    """The answer to an invitation or a resend: the enrollment, its link (shown once), and whether it was mailed."""

    enrollment: EnrollmentOut
    link: str
    emailed: bool

"""What the users API accepts and returns (msgspec structs; unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from infracalc.db import Governance, MemberRole
from infracalc.db.models import CIDR_LENGTH
from infracalc.service.users.networks import MAX_NETWORKS

Cidr = Annotated[str, msgspec.Meta(min_length=1, max_length=CIDR_LENGTH, examples=["203.0.113.0/24"])]


class UserProject(msgspec.Struct):
    """A project the user is a member of, with their role there (the hub's spawn page shows these)."""

    id: str
    title: str
    governance: Governance
    role: MemberRole


class NetworksPut(msgspec.Struct, forbid_unknown_fields=True):
    """The whole list of networks a person may sign in from; it replaces the former one (empty: none)."""

    networks: Annotated[list[Cidr], msgspec.Meta(max_length=MAX_NETWORKS)]


class NetworksOut(msgspec.Struct):
    """A person's registered networks, in normal form: IPv4 first, then by address."""

    username: str
    networks: list[str]


class OffboardIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why a person is offboarded (at least 10 characters once trimmed): it goes into the audit log."""

    reason: Annotated[str, msgspec.Meta(max_length=1000, examples=["left CASD on 2026-12-31"])]


class MembershipRemoved(msgspec.Struct):
    """A membership offboarding removed."""

    project: str
    role: MemberRole


class OffboardOut(msgspec.Struct):
    """What offboarding did; ``already_offboarded``: nothing was left to change (no event recorded)."""

    username: str
    #: The account is disabled and its Keycloak sessions ended (whether or not it was disabled before).
    account_disabled: bool
    already_offboarded: bool
    memberships_removed: list[MembershipRemoved]
    bubbles_revoked: list[str]
    invitations_withdrawn: list[str]
    console_sessions_ended: int

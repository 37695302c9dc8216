"""What the projects API accepts and returns (msgspec structs; unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db import Governance, MemberRole

#: A project id: lowercase letters, digits and single hyphens, 3 to 64 characters, starting with a letter.
SLUG_PATTERN = r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,63}$"
#: A Keycloak username as INFRACALC creates them.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,127}$"

Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, description="lowercase letters, digits and hyphens")]
Username = Annotated[str, msgspec.Meta(pattern=USERNAME_PATTERN)]
Owner = Governance
Role = MemberRole


class ProjectCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new project. Its governance owner defaults to CASD, the stricter one."""

    id: Slug
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    governance: Owner = Governance.CASD


class MemberPut(msgspec.Struct, forbid_unknown_fields=True):
    """A membership to create or change."""

    role: Role


class GovernanceSwitch(msgspec.Struct, forbid_unknown_fields=True):
    """A governance switch, by CASD staff, with a written reason."""

    owner: Owner
    reason: Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]


class MemberOut(msgspec.Struct):
    """One member of a project."""

    username: str
    role: Role
    added_at: datetime


class ProjectOut(msgspec.Struct):
    """A project as its readers see it."""

    id: str
    title: str
    governance: Owner
    created_at: datetime
    members: list[MemberOut]


class ProjectSummary(msgspec.Struct):
    """A project in a list."""

    id: str
    title: str
    governance: Owner


class GovernanceChangeOut(msgspec.Struct):
    """One past governance switch."""

    from_owner: Owner
    to_owner: Owner
    actor: str
    reason: str
    at: datetime


class Me(msgspec.Struct):
    """Who the caller is, as the service sees them."""

    username: str
    roles: list[str]
    projects: list[ProjectSummary]


class RetagOut(msgspec.Struct):
    """The project's stored objects re-tagged with its governance owner."""

    project: str
    governance: Governance
    #: Objects whose tag changed now.
    changed: int
    #: Objects whose tag was right already.
    unchanged: int

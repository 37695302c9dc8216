"""The service's tables: projects, their members, the history of governance switches, bubbles and egress rules.

Every project has exactly one governance owner, CASD or INFRACALC; a switch is recorded in
``governance_changes`` (and, by the caller, in the audit log in the same transaction).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infracalc.db.base import Base, UtcDateTime, utc_now

#: Longest project slug, username or actor name stored.
NAME_LENGTH = 128


class Governance(enum.StrEnum):
    """Who owns a project's data governance."""

    CASD = "CASD"
    INFRACALC = "INFRACALC"


class EgressRuleStatus(enum.StrEnum):
    """Where an egress allowlist rule stands: asked for, then approved or denied; an approved one may be revoked."""

    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    REVOKED = "revoked"


class MemberRole(enum.StrEnum):
    """A member's role in a project."""

    LEAD = "lead"
    MEMBER = "member"


def governance_type(constraint: str = "governance") -> Enum:
    """A ``Governance`` column type: a short string with a CHECK constraint named ``ck_<table>_<constraint>``.

    A CHECK rather than a native PostgreSQL enum, so that adding an owner later is a plain migration.
    """
    return Enum(
        Governance,
        name=constraint,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


#: An integer primary key that is SQLite's rowid (fast) and a 64-bit integer on PostgreSQL.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")


class Project(Base):
    """A research project, identified by its slug."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    governance: Mapped[Governance] = mapped_column(governance_type())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)

    members: Mapped[list[Member]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )


class Member(Base):
    """A user's membership of a project, with their role there."""

    __tablename__ = "members"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    role: Mapped[MemberRole] = mapped_column(
        Enum(
            MemberRole,
            name="role",
            native_enum=False,
            create_constraint=True,
            length=16,
            validate_strings=True,
            values_callable=lambda members: [member.value for member in members],
        )
    )
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)

    project: Mapped[Project] = relationship(back_populates="members", lazy="raise")


class GovernanceChange(Base):
    """One governance switch of a project: from whom, to whom, by whom, why and when."""

    __tablename__ = "governance_changes"

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    from_owner: Mapped[Governance] = mapped_column(governance_type("from_owner"))
    to_owner: Mapped[Governance] = mapped_column(governance_type("to_owner"))
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)

    # Many-to-one, so that the unit of work inserts the project before its history.
    project: Mapped[Project] = relationship(lazy="raise")


class Bubble(Base):
    """A researcher's workspace for one project, as a principal: its token is stored as a SHA-256 digest only.

    The token is 256 random bits, so a plain digest cannot be reversed by guessing; a slow password
    hash would only slow every request down.
    """

    __tablename__ = "bubbles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    #: Set when the bubble stops or is revoked; its token is refused from then on.
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    project: Mapped[Project] = relationship(lazy="raise")


class EgressRule(Base):
    """An egress allowlist rule of a project: requested by a lead, decided by CASD staff, revocable.

    Only an ``approved`` rule reaches OPA (``data.infracalc.rules``), and only until ``expires_at``,
    which the policy compares with the current time itself. ``host`` is in normal form (lowercase
    punycode); with ``wildcard`` the rule stands for every name below it (``*.<host>``).
    """

    __tablename__ = "egress_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(253))
    wildcard: Mapped[bool] = mapped_column(Boolean())
    ports: Mapped[list[Any]] = mapped_column(JSON())
    methods: Mapped[list[Any]] = mapped_column(JSON())
    path_prefixes: Mapped[list[Any]] = mapped_column(JSON())
    justification: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[EgressRuleStatus] = mapped_column(
        Enum(
            EgressRuleStatus,
            name="status",
            native_enum=False,
            create_constraint=True,
            length=16,
            validate_strings=True,
            values_callable=lambda members: [member.value for member in members],
        )
    )
    requested_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    decided_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    decision_comment: Mapped[str | None] = mapped_column(Text, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    project: Mapped[Project] = relationship(lazy="raise")

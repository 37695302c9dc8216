"""The service's tables: projects, members, governance switches, bubbles, egress rules, sessions, networks, imports.

Every project has exactly one governance owner, CASD or INFRACALC; a switch is recorded in
``governance_changes`` (and, by the caller, in the audit log in the same transaction).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infracalc.db.base import Base, UtcDateTime, utc_now

#: Longest project slug, username or actor name stored.
NAME_LENGTH = 128
#: Longest network stored: an IPv6 address in full (39 characters) and ``/128``, with room to spare.
CIDR_LENGTH = 64
#: The longest IP address in text form (an IPv6 address with an embedded IPv4 one).
ADDRESS_LENGTH = 45


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


class EgressMode(enum.StrEnum):
    """How the egress proxy carries an approved rule's HTTPS: inspected request by request, or as an opaque tunnel."""

    #: The proxy terminates TLS with a certificate of the platform's egress CA and decides each request.
    INSPECT = "inspect"
    #: Today's CONNECT: host and port only, for clients that pin certificates ("opaque").
    TUNNEL = "tunnel"


class MemberRole(enum.StrEnum):
    """A member's role in a project."""

    LEAD = "lead"
    MEMBER = "member"


def string_enum(kind: type[enum.StrEnum], constraint: str, *, length: int = 16) -> Enum:
    """A column of ``kind``'s values: a string of ``length`` with a CHECK constraint named ``ck_<table>_<constraint>``.

    A CHECK rather than a native PostgreSQL enum, so that adding a value later is a plain migration.
    """
    return Enum(
        kind,
        name=constraint,
        native_enum=False,
        create_constraint=True,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def governance_type(constraint: str = "governance") -> Enum:
    """A ``Governance`` column type (see :func:`string_enum`)."""
    return string_enum(Governance, constraint)


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
    #: Indexed on its own too: the hub lists a user's projects (``GET /users/{username}/projects``).
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True, index=True)
    role: Mapped[MemberRole] = mapped_column(string_enum(MemberRole, "role"))
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
    #: The network address the bubble runs at (its namespace's, container's or pod's), as the egress proxy
    #: sees its connections; its credentials open nothing from anywhere else. ``None`` until the hub knows it
    #: (a container's address is known once it started): the proxy then refuses the bubble altogether.
    address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH), default=None)

    project: Mapped[Project] = relationship(lazy="raise")


class EgressRule(Base):
    """An egress allowlist rule of a project: requested by a lead, decided by CASD staff, revocable.

    Only an ``approved`` rule reaches OPA (``data.store.infracalc.rules``), and only until ``expires_at``,
    which the policy compares with the current time itself. ``host`` is in normal form (lowercase
    punycode); with ``wildcard`` the rule stands for every name below it (``*.<host>``).

    ``mode`` says how HTTPS through the rule is carried (:class:`EgressMode`). The caps bind every
    request the proxy can see (plain HTTP, and HTTPS through an ``inspect`` rule): the body of one
    request, the bytes sent under the rule per day by one bubble's user, and the size of one answer.
    """

    __tablename__ = "egress_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(253))
    wildcard: Mapped[bool] = mapped_column(Boolean())
    ports: Mapped[list[Any]] = mapped_column(JSON())
    methods: Mapped[list[Any]] = mapped_column(JSON())
    path_prefixes: Mapped[list[Any]] = mapped_column(JSON())
    mode: Mapped[EgressMode] = mapped_column(string_enum(EgressMode, "mode"))
    max_request_bytes: Mapped[int] = mapped_column(BigInteger())
    daily_upload_bytes: Mapped[int] = mapped_column(BigInteger())
    max_response_bytes: Mapped[int] = mapped_column(BigInteger())
    justification: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[EgressRuleStatus] = mapped_column(string_enum(EgressRuleStatus, "status"))
    requested_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    decided_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    decision_comment: Mapped[str | None] = mapped_column(Text, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    project: Mapped[Project] = relationship(lazy="raise")


class SessionRecord(Base):
    """The record of one bubble run: who worked on which project, under which governance, from when to when.

    Its id is the bubble's id. ``governance`` is the project's owner when the session opened; a
    later switch does not rewrite it. No foreign key to ``bubbles``: the record is kept for review,
    whatever becomes of the bubble.
    """

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    governance: Mapped[Governance] = mapped_column(governance_type())
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    #: Set when the bubble stops or is revoked; events may still arrive after it (a tunnel's end).
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    project: Mapped[Project] = relationship(lazy="raise")


class SessionEvent(Base):
    """One line of a session's timeline: when, from where (``proxy``, ``hub``, ``service``), what, in one line."""

    __tablename__ = "session_events"
    __table_args__ = (Index("ix_session_events_session_id_at", "session_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Who reported it: ``proxy``, ``hub``, ``service``.
    source: Mapped[str] = mapped_column(String(32))
    #: What happened, dotted: ``session.open``, ``egress.connection.allow``, ``egress.connection.close``...
    kind: Mapped[str] = mapped_column(String(64))
    #: One human line, for the timeline.
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON())
    #: What full-text search indexes: the words of the summary and of the details' values, lowercased, one space
    #: apart (``infracalc.casd.sessions.indexed_text``). Both databases' tokenizers then see the same plain words.
    search_text: Mapped[str] = mapped_column(Text, server_default="")


class UserNetwork(Base):
    """A network a person registered to sign in from (home, office), in normal CIDR form: one row per network.

    ``infracalc.login`` reads a person's networks from ``data.store.infracalc.users``: a person who has
    any may open a hub session from those networks only. No row means no network registered.
    """

    __tablename__ = "user_networks"

    username: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    #: ``203.0.113.0/24``, ``2001:db8::/48``: no host bits, lowercase, compressed (``ipaddress``'s text).
    cidr: Mapped[str] = mapped_column(String(CIDR_LENGTH), primary_key=True)
    #: Who registered it: the person themself, or a CASD staff member.
    added_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


# Imports (issue 6): files brought into a project, held in quarantine until released.


class ImportState(enum.StrEnum):
    """Where an imported file stands: held for CASD staff's review, then released or rejected."""

    IN_REVIEW = "in_review"
    RELEASED = "released"
    REJECTED = "rejected"


class Sensitivity(enum.StrEnum):
    """How sensitive released data is; ``sensitive`` data keeps its project under CASD governance."""

    STANDARD = "standard"
    SENSITIVE = "sensitive"


class Import(Base):
    """A file imported into a project: where it is stored, what it is, and the review that released it.

    The object (``object_key``) is written before the row, in quarantine; nothing reads it until
    ``state`` is ``released``. A rejected import keeps its row, for the record, but not its object.
    """

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    #: The file's name, NFC-normalised (:mod:`infracalc.casd.filenames`).
    name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    #: Hex SHA-256 of the whole file.
    sha256: Mapped[str] = mapped_column(String(64))
    #: Hex SHA-256 of each multipart part, in order.
    part_sha256: Mapped[list[Any]] = mapped_column(JSON())
    #: The type its content shows (:mod:`infracalc.casd.filetypes`): ``text``, ``pdf``, ``binary``...
    detected_type: Mapped[str] = mapped_column(String(32))
    #: The media type it is served with.
    content_type: Mapped[str] = mapped_column(String(128))
    governance: Mapped[Governance] = mapped_column(governance_type())
    state: Mapped[ImportState] = mapped_column(string_enum(ImportState, "state"), index=True)
    #: Set when released: ``standard`` for code released at once, the reviewer's choice otherwise.
    sensitivity: Mapped[Sensitivity | None] = mapped_column(string_enum(Sensitivity, "sensitivity"), default=None)
    #: Why the import was released at once or held for review, in one line.
    routing: Mapped[str] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    reviewed_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    review_comment: Mapped[str | None] = mapped_column(Text, default=None)
    object_key: Mapped[str] = mapped_column(Text)

    project: Mapped[Project] = relationship(lazy="raise")


# Session search (migration 0008): full-text structures the models do not describe.

#: Made by migration 0008 beside ``session_events``: on SQLite the FTS5 table over ``search_text`` (kept in step by
#: triggers) and the shadow tables FTS5 keeps its index in; on PostgreSQL a GIN index on
#: ``to_tsvector('simple', search_text)``. Schema comparisons (Alembic's autogenerate) leave them out.
SEARCH_STRUCTURES = frozenset(
    {
        "session_events_fts",
        "session_events_fts_config",
        "session_events_fts_data",
        "session_events_fts_docsize",
        "session_events_fts_idx",
        "ix_session_events_search",
    }
)


def is_modelled(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: False for the full-text structures of :data:`SEARCH_STRUCTURES`."""
    return name not in SEARCH_STRUCTURES


# -- Remote enrollment (issue 8) ------------------------------------------------------------------


class EnrollmentState(enum.StrEnum):
    """Where an invitation stands: sent, confirmed by the invitee (networks chosen), completed, or revoked."""

    INVITED = "invited"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    REVOKED = "revoked"


class Enrollment(Base):
    """An invitation of a person to a project, and its progress until they can sign in with two factors.

    The link's token is 256 random bits, stored as a SHA-256 digest only; so is the secret of the
    cookie that binds the link to the browser that confirmed it. ``networks`` are the ones the
    invitee chose at confirmation: they become ``user_networks`` rows only when enrollment completes.
    """

    __tablename__ = "enrollments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    first_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    last_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    username: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: The Keycloak user created for the invitee (enabled, without any credential until enrollment completes).
    keycloak_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(string_enum(MemberRole, "role"))
    state: Mapped[EnrollmentState] = mapped_column(string_enum(EnrollmentState, "state"))
    invited_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    invited_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    networks: Mapped[list[Any]] = mapped_column(JSON(), default=list)
    browser_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    project: Mapped[Project] = relationship(lazy="raise")


# Exports (issue 6): a file leaving a bubble, its versions, and the reviews of each version.


class ExportState(enum.StrEnum):
    """Where an export stands; :data:`infracalc.casd.exports.TRANSITIONS` says which moves are allowed."""

    SUBMITTED = "submitted"
    CHECKED = "checked"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"


class ReviewVerdict(enum.StrEnum):
    """A reviewer's vote on one version of an export."""

    APPROVE = "approve"
    REJECT = "reject"
    CHANGES = "changes"


class Export(Base):
    """A file a bubble asked to take out of the platform: checked, routed to review, released or not.

    ``governance`` is the project's owner when the export was submitted: it decided the routing.
    ``required_reviews`` is how many distinct approvals release it (0: released at once).
    """

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    #: The bubble (and so the session) it was submitted from.
    session_id: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(255))
    governance: Mapped[Governance] = mapped_column(governance_type())
    state: Mapped[ExportState] = mapped_column(string_enum(ExportState, "state", length=32), index=True)
    risk_level: Mapped[str] = mapped_column(String(16))
    risk_score: Mapped[float] = mapped_column(Float())
    required_reviews: Mapped[int] = mapped_column(Integer())
    #: Released at once and drawn for a review afterwards (INFRACALC governance, low risk).
    sampled: Mapped[bool] = mapped_column(Boolean(), default=False)
    current_version: Mapped[int] = mapped_column(Integer(), default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ExportVersion(Base):
    """One submitted file of an export: the stored object, its digest, the checks' report, the justification."""

    __tablename__ = "export_versions"

    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer(), primary_key=True)
    object_key: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger())
    sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON())
    justification: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ExportReview(Base):
    """A reviewer's vote on one version of an export; one per reviewer and version."""

    __tablename__ = "export_reviews"
    __table_args__ = (
        UniqueConstraint("export_id", "version", "reviewer", name="uq_export_reviews_export_id_version_reviewer"),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer())
    reviewer: Mapped[str] = mapped_column(String(NAME_LENGTH))
    verdict: Mapped[ReviewVerdict] = mapped_column(string_enum(ReviewVerdict, "verdict", length=32))
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


# Colysée (issue 21): the export risk models, their decisions beside the rules', and staff's recall bar.


class RiskModelStatus(enum.StrEnum):
    """Where a trained risk model stands: shadowing the one in force, in force, or retired."""

    SHADOW = "shadow"
    IN_FORCE = "in_force"
    RETIRED = "retired"


class RiskModelRecord(Base):
    """A trained export risk model: its parameters are the JSON object at ``object_key``, whose SHA-256 is ``sha256``.

    At most one model is in force and at most one is in shadow (:mod:`infracalc.casd.risk_model.registry`).
    """

    __tablename__ = "risk_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: 1, 2, 3...: the order in which models were trained.
    version: Mapped[int] = mapped_column(Integer(), unique=True)
    status: Mapped[RiskModelStatus] = mapped_column(string_enum(RiskModelStatus, "status"), index=True)
    #: The feature set the model reads (``colysee-features/1``).
    feature_set: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    #: What the time-ordered test measured (ROC AUC, Brier score, recalls and review loads).
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON())
    trained_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    trained_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    promoted_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    promoted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class RiskDecision(Base):
    """What one model said of one export version: its probability, its level, and the level routing got with it.

    The model in force decided the routing (``in_force``); a shadow model's decision is only logged, for staff
    to compare both on the same exports before promoting it.
    """

    __tablename__ = "risk_decisions"
    __table_args__ = (UniqueConstraint("export_id", "version", "model_id", name="uq_risk_decisions_export_model"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer())
    model_id: Mapped[str] = mapped_column(ForeignKey("risk_models.id", ondelete="CASCADE"), index=True)
    in_force: Mapped[bool] = mapped_column(Boolean())
    #: The calibrated probability that reviewers reject the version or ask for changes.
    probability: Mapped[float] = mapped_column(Float())
    model_level: Mapped[str] = mapped_column(String(16))
    rules_level: Mapped[str] = mapped_column(String(16))
    #: The level routing gives with this model in force (the rules' level, raised or lowered by the model).
    final_level: Mapped[str] = mapped_column(String(16))
    #: The chance of a review after release it gives a low-risk INFRACALC export; ``None`` when not released at once.
    sample_probability: Mapped[float | None] = mapped_column(Float(), default=None)
    #: The features that raised the risk, as codes and parameters (:mod:`infracalc.casd.risk_model.explanations`).
    explanation: Mapped[list[Any]] = mapped_column(JSON(), default=list)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RiskRouting(Base):
    """Staff's settings of the routing by risk: one row (id 1)."""

    __tablename__ = "risk_routing"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True)
    #: The recall (of rejected or changed outputs, measured on the future) a model in force must reach before it
    #: may lower a level; ``None``: it never lowers one.
    recall_bar: Mapped[float | None] = mapped_column(Float(), default=None)
    updated_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class WebSession(Base):
    """A person signed in to the web console: who, how, since when, and until when.

    The browser holds a random 256-bit id in a cookie; the table holds only its SHA-256, so a copy
    of the table lets no one take a session over. No token is kept: the session says who signed in
    and at what level (``acr``), which is all the pages need to act as that person.
    """

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    #: Keycloak's user id (``sub``).
    subject: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[Any]] = mapped_column(JSON(), default=list)
    acr: Mapped[str] = mapped_column(String(32))
    #: When the person typed their password and code (the token's ``auth_time``).
    auth_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    #: Keycloak's session id (``sid``), ended with this session at logout.
    keycloak_sid: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    #: The absolute end (8 hours after login); the idle end is ``last_seen_at`` plus 30 minutes.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The last form a page sent back (what was typed, the messages to show), until the next one
    #: (:mod:`infracalc.web.form_state`); never a secret.
    form_state: Mapped[dict[str, Any] | None] = mapped_column(JSON(), default=None)


# -- Recovery after faults (issue 16) -------------------------------------------------------------


class ImportUpload(Base):
    """An import whose bytes are on their way to the object store: written before the first byte, gone at the end.

    The request that streams the file keeps ``heartbeat_at`` fresh. A row whose heartbeat stopped is an
    import whose request never finished (the service was killed): the recovery sweep
    (:mod:`infracalc.service.imports.recovery`) removes whatever it left in the store and records its refusal.
    ``refused`` marks an import already refused and audited whose store could not be cleaned then (the
    object store was down): only the cleaning is left to do.
    """

    __tablename__ = "import_uploads"

    #: The import's id: its objects live under ``projects/<project>/imports/<id>/``.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: The file's name as sent (cut to 300 characters), for the audit event of a refusal.
    name: Mapped[str] = mapped_column(Text)
    governance: Mapped[Governance] = mapped_column(governance_type())
    started_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    refused: Mapped[bool] = mapped_column(Boolean(), default=False)


class EndedSession(Base):
    """A Keycloak session that ended (back-channel logout): its access tokens are refused until they expire.

    Kept in the database, not in one process's memory, so that every replica refuses them; a row is
    useless, and removed, once ``expires_at`` passed (no token of the session can still be valid).
    """

    __tablename__ = "ended_sessions"

    #: Keycloak's session id (the tokens' ``sid``).
    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)

"""The audit tables: the hash-chained events, the signed checkpoints, and the one-row head.

``audit_head`` holds the last sequence number and hash. Every append locks that row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock does the same), so appends from
concurrent transactions take turns: sequence numbers stay gapless and the chain linear, and a
transaction that rolls back gives its number back with everything else it did.

``project_id`` is deliberately not a foreign key: the log outlives what it describes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Dialect, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from infracalc.audit.canonical import canonical_json
from infracalc.db.base import Base, UtcDateTime
from infracalc.db.models import NAME_LENGTH, BigIntegerKey, Governance, governance_type

#: Length of a SHA-256 hex digest.
HASH_LENGTH = 64


class CanonicalJson(TypeDecorator[dict[str, Any]]):
    """A JSON object stored as its canonical text, so the stored bytes are exactly the hashed bytes."""

    impl = Text()
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        """Encode ``value`` canonically (see :mod:`infracalc.audit.canonical`)."""
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        """Decode the stored text."""
        return None if value is None else dict(json.loads(value))


class AuditEvent(Base):
    """One state change: who did what, to which project, under which governance, and its place in the chain."""

    __tablename__ = "audit_events"
    __table_args__ = (CheckConstraint("seq >= 1", name="seq_positive"),)

    #: Position in the log: 1, 2, 3... without gaps.
    seq: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    #: What happened, dotted: ``project.create``, ``member.add``, ``governance.switch``...
    action: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH), index=True)
    #: The project's governance owner at that moment, when the event concerns a project.
    governance: Mapped[Governance | None] = mapped_column(governance_type())
    details: Mapped[dict[str, Any]] = mapped_column(CanonicalJson())
    prev_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class AuditCheckpoint(Base):
    """A signature over the head of the log at ``seq``: proof that events 1..seq were not changed since."""

    __tablename__ = "audit_checkpoints"

    #: The sequence number of the event this checkpoint seals.
    seq: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=False)
    #: That event's hash.
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Ed25519 signature of the checkpoint message, hex.
    signature: Mapped[str] = mapped_column(String(128))
    #: First 16 hex characters of the SHA-256 of the signing key's raw public key.
    key_id: Mapped[str] = mapped_column(String(16))


class AuditHead(Base):
    """The single row holding the last sequence number and hash; appends lock it to take turns."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigIntegerKey)
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))

"""Initial schema: projects, members, governance changes, and the sealed audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Column types are spelled out here rather than imported from the models, so this revision keeps
creating the same schema whatever the models become later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Integer keys: SQLite's rowid (fast ordered scans), 64-bit on PostgreSQL.
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(length=128)
HASH = sa.String(length=64)
OWNER = sa.String(length=16)
TIME = sa.DateTime(timezone=True)
OWNERS = "('CASD', 'INFRACALC')"

#: ``prev_hash`` of the first event; the head starts there.
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    """Create every table and the audit head at the genesis position."""
    op.create_table(
        "projects",
        sa.Column("id", NAME, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("governance", OWNER, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint(f"governance IN {OWNERS}", name=op.f("ck_projects_governance")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_table(
        "members",
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("username", NAME, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.CheckConstraint("role IN ('lead', 'member')", name=op.f("ck_members_role")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_members_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "username", name=op.f("pk_members")),
    )
    op.create_table(
        "governance_changes",
        sa.Column("id", KEY, autoincrement=True, nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("from_owner", OWNER, nullable=False),
        sa.Column("to_owner", OWNER, nullable=False),
        sa.Column("actor", NAME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.CheckConstraint(f"from_owner IN {OWNERS}", name=op.f("ck_governance_changes_from_owner")),
        sa.CheckConstraint(f"to_owner IN {OWNERS}", name=op.f("ck_governance_changes_to_owner")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_governance_changes_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_changes")),
    )
    op.create_index(op.f("ix_governance_changes_project_id"), "governance_changes", ["project_id"])

    op.create_table(
        "audit_events",
        sa.Column("seq", KEY, autoincrement=False, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", NAME, nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("project_id", NAME, nullable=True),
        sa.Column("governance", OWNER, nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", HASH, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_events_seq_positive")),
        sa.CheckConstraint(f"governance IN {OWNERS}", name=op.f("ck_audit_events_governance")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    for column in ("action", "actor", "at", "project_id"):
        op.create_index(op.f(f"ix_audit_events_{column}"), "audit_events", [column])

    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", KEY, autoincrement=False, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_checkpoints")),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", KEY, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    """Drop every table (the audit log with them)."""
    for table in ("audit_head", "audit_checkpoints", "audit_events", "governance_changes", "members", "projects"):
        op.drop_table(table)

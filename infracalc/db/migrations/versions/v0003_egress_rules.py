"""Egress rules: each project's allowlist requests, their decisions and revocations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)
STATUSES = "('requested', 'approved', 'denied', 'revoked')"


def upgrade() -> None:
    """Create the egress_rules table."""
    op.create_table(
        "egress_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("wildcard", sa.Boolean(), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("methods", sa.JSON(), nullable=False),
        sa.Column("path_prefixes", sa.JSON(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", NAME, nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("decided_by", NAME, nullable=True),
        sa.Column("decided_at", TIME, nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.Column("revoked_by", NAME, nullable=True),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_egress_rules_status")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_egress_rules_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_egress_rules")),
    )
    op.create_index(op.f("ix_egress_rules_project_id"), "egress_rules", ["project_id"])


def downgrade() -> None:
    """Drop the egress_rules table."""
    op.drop_index(op.f("ix_egress_rules_project_id"), table_name="egress_rules")
    op.drop_table("egress_rules")

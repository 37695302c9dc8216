"""Enrollments: invitations of people to projects, until they sign in with two factors.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)
ROLES = "('lead', 'member')"
STATES = "('invited', 'confirmed', 'completed', 'revoked')"


def upgrade() -> None:
    """Create the enrollments table."""
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", NAME, nullable=False),
        sa.Column("last_name", NAME, nullable=False),
        sa.Column("username", NAME, nullable=False),
        sa.Column("keycloak_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("invited_by", NAME, nullable=False),
        sa.Column("invited_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("browser_sha256", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", TIME, nullable=True),
        sa.Column("completed_at", TIME, nullable=True),
        sa.Column("revoked_by", NAME, nullable=True),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_enrollments_role")),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_enrollments_state")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_enrollments_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_enrollments_token_sha256")),
    )
    op.create_index(op.f("ix_enrollments_email"), "enrollments", ["email"])
    op.create_index(op.f("ix_enrollments_project_id"), "enrollments", ["project_id"])


def downgrade() -> None:
    """Drop the enrollments table."""
    op.drop_index(op.f("ix_enrollments_project_id"), table_name="enrollments")
    op.drop_index(op.f("ix_enrollments_email"), table_name="enrollments")
    op.drop_table("enrollments")

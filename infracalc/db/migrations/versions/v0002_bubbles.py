"""Bubbles: each researcher's workspace for a project, with its token stored as a digest.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the bubbles table."""
    op.create_table(
        "bubbles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("username", NAME, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_bubbles_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bubbles")),
    )
    op.create_index(op.f("ix_bubbles_project_id"), "bubbles", ["project_id"])
    op.create_index(op.f("ix_bubbles_username"), "bubbles", ["username"])


def downgrade() -> None:
    """Drop the bubbles table."""
    op.drop_index(op.f("ix_bubbles_username"), table_name="bubbles")
    op.drop_index(op.f("ix_bubbles_project_id"), table_name="bubbles")
    op.drop_table("bubbles")

"""Imports: files brought into a project, their checks, their governance and their review.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=128)
SHORT = sa.String(length=16)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the imports table."""
    op.create_table(
        "imports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("part_sha256", sa.JSON(), nullable=False),
        sa.Column("detected_type", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("governance", SHORT, nullable=False),
        sa.Column("state", SHORT, nullable=False),
        sa.Column("sensitivity", SHORT, nullable=True),
        sa.Column("routing", sa.Text(), nullable=False),
        sa.Column("uploaded_by", NAME, nullable=False),
        sa.Column("uploaded_at", TIME, nullable=False),
        sa.Column("reviewed_by", NAME, nullable=True),
        sa.Column("reviewed_at", TIME, nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.CheckConstraint("governance IN ('CASD', 'INFRACALC')", name=op.f("ck_imports_governance")),
        sa.CheckConstraint("state IN ('in_review', 'released', 'rejected')", name=op.f("ck_imports_state")),
        sa.CheckConstraint("sensitivity IN ('standard', 'sensitive')", name=op.f("ck_imports_sensitivity")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_imports_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    op.create_index(op.f("ix_imports_project_id"), "imports", ["project_id"])
    op.create_index(op.f("ix_imports_state"), "imports", ["state"])


def downgrade() -> None:
    """Drop the imports table."""
    op.drop_index(op.f("ix_imports_state"), table_name="imports")
    op.drop_index(op.f("ix_imports_project_id"), table_name="imports")
    op.drop_table("imports")

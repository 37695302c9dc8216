"""Exports: the export, each submitted version of its file, and the reviewers' votes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)
OWNERS = "('CASD', 'INFRACALC')"
STATES = "('submitted', 'checked', 'in_review', 'changes_requested', 'approved', 'rejected', 'released')"
VERDICTS = "('approve', 'reject', 'changes')"


def upgrade() -> None:
    """Create the exports, export_versions and export_reviews tables."""
    op.create_table(
        "exports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("requested_by", NAME, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("governance", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("risk_level", sa.String(length=16), nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=False),
        sa.Column("required_reviews", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint(f"governance IN {OWNERS}", name=op.f("ck_exports_governance")),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_exports_state")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_exports_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_index(op.f("ix_exports_project_id"), "exports", ["project_id"])
    op.create_index(op.f("ix_exports_state"), "exports", ["state"])
    op.create_table(
        "export_versions",
        sa.Column("export_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_export_versions_export_id_exports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("export_id", "version", name=op.f("pk_export_versions")),
    )
    op.create_table(
        "export_reviews",
        sa.Column("id", KEY, autoincrement=True, nullable=False),
        sa.Column("export_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reviewer", NAME, nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.CheckConstraint(f"verdict IN {VERDICTS}", name=op.f("ck_export_reviews_verdict")),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_export_reviews_export_id_exports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_reviews")),
        sa.UniqueConstraint("export_id", "version", "reviewer", name="uq_export_reviews_export_id_version_reviewer"),
    )
    op.create_index(op.f("ix_export_reviews_export_id"), "export_reviews", ["export_id"])


def downgrade() -> None:
    """Drop the export_reviews, export_versions and exports tables."""
    op.drop_index(op.f("ix_export_reviews_export_id"), table_name="export_reviews")
    op.drop_table("export_reviews")
    op.drop_table("export_versions")
    op.drop_index(op.f("ix_exports_state"), table_name="exports")
    op.drop_index(op.f("ix_exports_project_id"), table_name="exports")
    op.drop_table("exports")

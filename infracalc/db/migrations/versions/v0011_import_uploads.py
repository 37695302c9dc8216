"""Import uploads in progress: what the recovery sweep cleans after a crash.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the import_uploads table."""
    op.create_table(
        "import_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("governance", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.CheckConstraint("governance IN ('CASD', 'INFRACALC')", name=op.f("ck_import_uploads_governance")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_uploads")),
    )
    op.create_index(op.f("ix_import_uploads_heartbeat_at"), "import_uploads", ["heartbeat_at"])


def downgrade() -> None:
    """Drop the import_uploads table."""
    op.drop_index(op.f("ix_import_uploads_heartbeat_at"), table_name="import_uploads")
    op.drop_table("import_uploads")

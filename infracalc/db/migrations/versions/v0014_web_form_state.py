"""Web form state: what a console form sent back after a refusal, kept with the session for the page to show.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add web_sessions.form_state."""
    with op.batch_alter_table("web_sessions") as table:
        table.add_column(sa.Column("form_state", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop web_sessions.form_state."""
    with op.batch_alter_table("web_sessions") as table:
        table.drop_column("form_state")

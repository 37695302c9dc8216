"""Bubble addresses: the network address each bubble's credentials are bound to.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add bubbles.address (null until the hub knows it: the egress proxy then lets the bubble nowhere)."""
    with op.batch_alter_table("bubbles") as batch:
        batch.add_column(sa.Column("address", sa.String(length=45), nullable=True))


def downgrade() -> None:
    """Drop bubbles.address."""
    with op.batch_alter_table("bubbles") as batch:
        batch.drop_column("address")

"""Users' registered networks (one row per network), and members indexed by username.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the user_networks table; index members by username."""
    op.create_table(
        "user_networks",
        sa.Column("username", NAME, nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("added_by", NAME, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("username", "cidr", name=op.f("pk_user_networks")),
    )
    op.create_index(op.f("ix_members_username"), "members", ["username"])


def downgrade() -> None:
    """Drop the index on members' usernames and the user_networks table."""
    op.drop_index(op.f("ix_members_username"), table_name="members")
    op.drop_table("user_networks")

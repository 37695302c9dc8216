"""Sessions: one record per bubble run, and the timeline of its events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(length=128)
OWNER = sa.String(length=16)
TIME = sa.DateTime(timezone=True)
OWNERS = "('CASD', 'INFRACALC')"


def upgrade() -> None:
    """Create the sessions and session_events tables."""
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", NAME, nullable=False),
        sa.Column("username", NAME, nullable=False),
        sa.Column("governance", OWNER, nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.CheckConstraint(f"governance IN {OWNERS}", name=op.f("ck_sessions_governance")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_sessions_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_project_id"), "sessions", ["project_id"])
    op.create_index(op.f("ix_sessions_username"), "sessions", ["username"])
    op.create_table(
        "session_events",
        sa.Column("id", KEY, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_events_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_events")),
    )
    op.create_index("ix_session_events_session_id_at", "session_events", ["session_id", "at"])


def downgrade() -> None:
    """Drop the session_events and sessions tables."""
    op.drop_index("ix_session_events_session_id_at", table_name="session_events")
    op.drop_table("session_events")
    op.drop_index(op.f("ix_sessions_username"), table_name="sessions")
    op.drop_index(op.f("ix_sessions_project_id"), table_name="sessions")
    op.drop_table("sessions")

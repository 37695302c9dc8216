"""Colysée: the export risk models' registry, each model's decision on each export version, staff's recall bar.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(length=128)
TIME = sa.DateTime(timezone=True)
STATUSES = "('shadow', 'in_force', 'retired')"


def upgrade() -> None:
    """Create the risk_models, risk_decisions and risk_routing tables."""
    op.create_table(
        "risk_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("feature_set", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("trained_by", NAME, nullable=False),
        sa.Column("trained_at", TIME, nullable=False),
        sa.Column("promoted_by", NAME, nullable=True),
        sa.Column("promoted_at", TIME, nullable=True),
        sa.Column("retired_at", TIME, nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_risk_models_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_models")),
        sa.UniqueConstraint("version", name=op.f("uq_risk_models_version")),
    )
    op.create_index(op.f("ix_risk_models_status"), "risk_models", ["status"])
    op.create_table(
        "risk_decisions",
        sa.Column("id", KEY, autoincrement=True, nullable=False),
        sa.Column("export_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("in_force", sa.Boolean(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("model_level", sa.String(length=16), nullable=False),
        sa.Column("rules_level", sa.String(length=16), nullable=False),
        sa.Column("final_level", sa.String(length=16), nullable=False),
        sa.Column("sample_probability", sa.Float(), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_risk_decisions_export_id_exports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["risk_models.id"], name=op.f("fk_risk_decisions_model_id_risk_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
        sa.UniqueConstraint("export_id", "version", "model_id", name="uq_risk_decisions_export_model"),
    )
    op.create_index(op.f("ix_risk_decisions_export_id"), "risk_decisions", ["export_id"])
    op.create_index(op.f("ix_risk_decisions_model_id"), "risk_decisions", ["model_id"])
    op.create_table(
        "risk_routing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_bar", sa.Float(), nullable=True),
        sa.Column("updated_by", NAME, nullable=True),
        sa.Column("updated_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_routing")),
    )


def downgrade() -> None:
    """Drop the risk_routing, risk_decisions and risk_models tables."""
    op.drop_table("risk_routing")
    op.drop_index(op.f("ix_risk_decisions_model_id"), table_name="risk_decisions")
    op.drop_index(op.f("ix_risk_decisions_export_id"), table_name="risk_decisions")
    op.drop_table("risk_decisions")
    op.drop_index(op.f("ix_risk_models_status"), table_name="risk_models")
    op.drop_table("risk_models")

"""Egress inspection: each rule's mode (inspect or tunnel) and its caps (request body, bytes a day, answer).

Rules approved before this revision keep working as they did: a rule without method or path
restrictions becomes a ``tunnel`` rule (CONNECT, host and port only), and a rule with restrictions
becomes an ``inspect`` rule (its restrictions, which used to bind plain HTTP only, now bind HTTPS
too, which is what its lead asked for). Every rule gets the default caps.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The caps' defaults, as ``infracalc.service.egress_rules.schemas`` gives them to new requests.
MAX_REQUEST_BYTES = 1024 * 1024
DAILY_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


def _listed(value: object) -> bool:
    """Whether a JSON column's value (a list, or its text, depending on the driver) holds anything."""
    if isinstance(value, str):
        value = json.loads(value)
    return bool(value)


def upgrade() -> None:
    """Add mode and caps to ``egress_rules``; existing rules become ``tunnel`` rules, or ``inspect`` when restricted."""
    with op.batch_alter_table("egress_rules") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=16), server_default="tunnel", nullable=False))
        batch.add_column(
            sa.Column("max_request_bytes", sa.BigInteger(), server_default=str(MAX_REQUEST_BYTES), nullable=False)
        )
        batch.add_column(
            sa.Column("daily_upload_bytes", sa.BigInteger(), server_default=str(DAILY_UPLOAD_BYTES), nullable=False)
        )
        batch.add_column(
            sa.Column("max_response_bytes", sa.BigInteger(), server_default=str(MAX_RESPONSE_BYTES), nullable=False)
        )
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, methods, path_prefixes FROM egress_rules")).all()
    restricted = [{"rule": row.id} for row in rows if _listed(row.methods) or _listed(row.path_prefixes)]
    if restricted:
        connection.execute(sa.text("UPDATE egress_rules SET mode = 'inspect' WHERE id = :rule"), restricted)
    # The defaults served the rows already there; new rows always say what they are.
    with op.batch_alter_table("egress_rules") as batch:
        for column in ("mode", "max_request_bytes", "daily_upload_bytes", "max_response_bytes"):
            batch.alter_column(column, server_default=None)
        batch.create_check_constraint("mode", "mode IN ('inspect', 'tunnel')")


def downgrade() -> None:
    """Drop the mode and the caps."""
    with op.batch_alter_table("egress_rules") as batch:
        batch.drop_constraint(op.f("ck_egress_rules_mode"), type_="check")
        for column in ("max_response_bytes", "daily_upload_bytes", "max_request_bytes", "mode"):
            batch.drop_column(column)

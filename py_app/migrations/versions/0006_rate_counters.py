"""Rate-limit and lockout counters, for deployments without Redis (shared by every worker and replica).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_ends", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_counters"),
        **MYSQL,
    )
    op.create_index("ix_rate_counters_window_ends", "rate_counters", ["window_ends"])


def downgrade() -> None:
    op.drop_table("rate_counters")

"""Compare emails byte for byte on MySQL/MariaDB, as SQLite does.

Emails are stored lower-cased by the service, so case needs no collation; utf8mb4_unicode_ci also
folds accents and ß=ss, which made 'strasse@x' and 'straße@x' collide on MariaDB only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.alter_column(
            "users",
            "email",
            existing_type=sa.String(254),
            type_=mysql.VARCHAR(254, charset="utf8mb4", collation="utf8mb4_bin"),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.alter_column(
            "users",
            "email",
            existing_type=mysql.VARCHAR(254, charset="utf8mb4", collation="utf8mb4_bin"),
            type_=mysql.VARCHAR(254, charset="utf8mb4", collation="utf8mb4_unicode_ci"),
            existing_nullable=False,
        )

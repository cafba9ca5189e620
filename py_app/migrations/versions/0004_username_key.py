"""Compare usernames by an ASCII-case-folded key, byte for byte, on every backend.

MariaDB's utf8mb4_unicode_ci folded far more than case: a login as `ålice` or fullwidth `ALICE`
(U+FF21 ...) found the account `alice`. Usernames are ASCII (the service refuses anything else), so the key is the
lower-cased username, compared with utf8mb4_bin; the old case-insensitive unique constraint on
`username` gives way to a unique one on the key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEY = sa.String(32).with_variant(mysql.VARCHAR(32, charset="utf8mb4", collation="utf8mb4_bin"), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("username_key", KEY, nullable=True))
    op.execute("UPDATE users SET username_key = LOWER(username)")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username_key", existing_type=KEY, nullable=False)
        batch.drop_constraint("uq_users_username", type_="unique")
        batch.create_unique_constraint("uq_users_username_key", ["username_key"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_username_key", type_="unique")
        batch.create_unique_constraint("uq_users_username", ["username"])
        batch.drop_column("username_key")

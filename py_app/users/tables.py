"""SQLAlchemy table for users. Alembic migrations own the schema; this mirrors the latest revision."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from py_app.infra.db import MYSQL_TABLE_ARGS, CaseInsensitiveString, UTCDateTime, metadata
from py_app.users.models import Role, Status, User, username_key

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("username", CaseInsensitiveString(32), nullable=False),
    # What usernames are compared by (models.username_key: ASCII case folded), byte for byte on every
    # backend (migration 0004): no collation may make a confusable name equal to a stored one.
    sa.Column(
        "username_key",
        sa.String(32).with_variant(mysql.VARCHAR(32, collation="utf8mb4_bin"), "mysql"),
        nullable=False,
        unique=True,
    ),
    # Stored lower-cased; compared byte for byte on every backend (migration 0003).
    sa.Column(
        "email",
        sa.String(254).with_variant(mysql.VARCHAR(254, collation="utf8mb4_bin"), "mysql"),
        nullable=False,
        unique=True,
    ),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("first_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("phone", sa.String(32), nullable=False, server_default=""),
    sa.Column("avatar_url", sa.String(500), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("is_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
    sa.Index("ix_users_created_at_id", "created_at", "id"),
    **MYSQL_TABLE_ARGS,
)


def user_row(user: User) -> dict[str, Any]:
    key = username_key(user.username)
    assert key is not None, "stored usernames are checked first"
    return {**{name: getattr(user, name) for name in User.__slots__}, "username_key": key}


def user_from_row(row: Any, prefix: str = "") -> User | None:
    """A ``users`` row (any mapping with its columns, each named ``prefix`` + column) as a User; None for no row."""
    if row is None:
        return None
    values = {name: row[prefix + name] for name in User.__slots__}
    values["role"] = Role(values["role"])
    values["status"] = Status(values["status"])
    values["is_verified"] = bool(values["is_verified"])
    return User(**values)

"""Tables for sessions and refresh tokens (every token ever issued, as a digest, for reuse detection)."""

from __future__ import annotations

import sqlalchemy as sa

from py_app.infra.db import MYSQL_TABLE_ARGS, UTCDateTime, metadata

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("user_agent", sa.String(255), nullable=False, server_default=""),
    sa.Column("ip", sa.String(45), nullable=False, server_default=""),
    **MYSQL_TABLE_ARGS,
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column(
        "session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    **MYSQL_TABLE_ARGS,
)

# One-time tokens sent by mail (password reset, email verification), stored only as SHA-256 digests.
# The token itself is derived from the row's id under a server key, so neither this table nor the
# outbox ever holds one in clear.
account_tokens = sa.Table(
    "account_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
    **MYSQL_TABLE_ARGS,
)

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

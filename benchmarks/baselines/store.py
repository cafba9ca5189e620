"""The baselines' data access: a synchronous SQLAlchemy Core point query on the service's own database.

BENCH_DB_URL is a synchronous URL (``sqlite:///…`` or ``mysql+pymysql://…``); the users table is
reflected, so the baselines read exactly the rows the service reads.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

_engine = sa.create_engine(os.environ["BENCH_DB_URL"])
_users = sa.Table("users", sa.MetaData(), autoload_with=_engine)
# What the service shows of a user: not the hash, nor username_key (what logins compare, migration 0004).
HIDDEN = frozenset({"password_hash", "username_key"})
_by_id = sa.select(*(column for column in _users.columns if column.name not in HIDDEN)).where(
    _users.c.id == sa.bindparam("user_id")
)


def get_user(user_id: str) -> dict[str, Any] | None:
    with _engine.connect() as connection:
        row = connection.execute(_by_id, {"user_id": user_id}).mappings().first()
    return None if row is None else dict(row)

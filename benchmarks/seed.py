"""Seed a migrated database quickly: rows inserted directly, every password the same precomputed hash.

The tables are reflected from the database the migrations made (not imported from the application),
so the seeder follows the schema wherever the code that owns it moves. Refresh tokens are minted the
same way, one fresh session per token, just before the point that spends them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.wire import PASSWORD

# The service's parameters (OWASP floor): a seeded hash never triggers a rehash at login.
_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
SEED_USERS = 1000
SESSION_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class SeededData:
    user_id: str  # bench_user: reads its own record (point query), me, validate
    admin_id: str  # bench_admin: list and create
    login_name: str  # bench_login: logged in by the login op
    user_ids: tuple[str, ...]  # every plain user, owners of the minted refresh sessions
    record: dict[str, Any]  # bench_user's public record, as REST serves it (what the ceilings serve)


def password_hash() -> str:
    return _HASHER.hash(PASSWORD)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the service stores it


def _user_row(username: str, role: str, encoded: str, when: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "username": username,
        "username_key": username.lower(),  # what logins compare (migration 0004)
        "email": f"{username}@bench.example",
        "password_hash": encoded,
        "first_name": "Bench",
        "last_name": username.title(),
        "phone": "",
        "avatar_url": "",
        "role": role,
        "status": "active",
        "is_verified": True,
        "created_at": when,
        "updated_at": when,
        "last_login_at": None,
    }


def public_record(row: dict[str, Any]) -> dict[str, Any]:
    """The record as REST shows it (no hash; ISO times with an offset)."""
    out = {key: value for key, value in row.items() if key not in ("password_hash", "username_key")}
    for key in ("created_at", "updated_at", "last_login_at"):
        if out[key] is not None:
            out[key] = out[key].replace(tzinfo=UTC).isoformat()
    return out


async def _tables(connection: Any) -> sa.MetaData:
    metadata = sa.MetaData()
    await connection.run_sync(lambda sync: metadata.reflect(sync, only=["users", "sessions", "refresh_tokens"]))
    return metadata


def _fit(table: sa.Table, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the columns the table has; fail loudly if it needs one the seeder does not know."""
    names = set(table.columns.keys())
    required = {c.name for c in table.columns if not c.nullable and c.server_default is None and c.default is None}
    missing = required - set(rows[0])
    if missing:
        raise RuntimeError(f"the seeder does not know the required columns {sorted(missing)} of {table.name}")
    return [{key: value for key, value in row.items() if key in names} for row in rows]


async def seed(url: str, users: int = SEED_USERS) -> SeededData:
    """Insert ``users`` plain users plus bench_user, bench_admin and bench_login; return who is who."""
    encoded = await asyncio.to_thread(password_hash)
    base = _now() - timedelta(hours=1)
    special = {
        "bench_user": _user_row("bench_user", "user", encoded, base),
        "bench_admin": _user_row("bench_admin", "admin", encoded, base),
        "bench_login": _user_row("bench_login", "user", encoded, base),
    }
    plain = [
        _user_row(f"seed{index:05d}", "user", encoded, base + timedelta(milliseconds=index)) for index in range(users)
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            table = (await _tables(connection)).tables["users"]
            await connection.execute(table.insert(), _fit(table, [*special.values(), *plain]))
    finally:
        await engine.dispose()
    return SeededData(
        user_id=special["bench_user"]["id"],
        admin_id=special["bench_admin"]["id"],
        login_name="bench_login",
        user_ids=tuple(row["id"] for row in plain),
        record=public_record(special["bench_user"]),
    )


async def mint_refresh_tokens(url: str, user_ids: Sequence[str], count: int) -> list[str]:
    """``count`` live refresh tokens, each the only token of a session of its own (as after a login)."""
    now = _now()
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    session_rows, token_rows = [], []
    for index, token in enumerate(tokens):
        session_id = str(uuid.uuid4())
        session_rows.append(
            {
                "id": session_id,
                "user_id": user_ids[index % len(user_ids)],
                "created_at": now,
                "last_used_at": now,
                "expires_at": now + SESSION_LIFETIME,
                "revoked_at": None,
                "user_agent": "bench",
                "ip": "127.0.0.1",
            }
        )
        token_rows.append(
            {"digest": hashlib.sha256(token.encode()).hexdigest(), "session_id": session_id, "created_at": now}
        )
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            tables = (await _tables(connection)).tables
            await connection.execute(tables["sessions"].insert(), _fit(tables["sessions"], session_rows))
            await connection.execute(tables["refresh_tokens"].insert(), _fit(tables["refresh_tokens"], token_rows))
    finally:
        await engine.dispose()
    return tokens

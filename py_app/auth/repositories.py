"""SQLAlchemy Core implementation of the session store.

Each method is one atomic operation with its own transaction. The refresh-token spend is a
conditional UPDATE and the transaction's first write: the database lets exactly one of two
concurrent rotations flip ``used_at``, so a family never forks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from py_app.auth.models import (
    AccountToken,
    Rotation,
    RotationOutcome,
    Session,
    SessionRules,
    SessionState,
    TokenPurpose,
    reuse_event,
)
from py_app.auth.tables import account_tokens, refresh_tokens, sessions
from py_app.core.effects import NO_EFFECTS, Effects, audited
from py_app.infra import request_reads
from py_app.infra.db import Writer, first, read_first, reading, run, transaction
from py_app.infra.outbox import write_effects
from py_app.users.models import LoginWrite, Status, User
from py_app.users.tables import user_from_row, users

# A refresh token's family in one row: when it was spent, its session and its account, told apart by prefix.
_FAMILY = [
    refresh_tokens.c.used_at,
    *(column.label(f"s_{column.name}") for column in sessions.c),
    *(column.label(f"u_{column.name}") for column in users.c),
]

# Every authenticated request's read (when the session cache misses), built once: constructing a statement
# and its cache key costs several times what executing it does.
# The session with its whole account (each column as ``account_<name>``): the request's own read of that
# account is then answered from this row (infra.request_reads), one query where there were two.
_ACCOUNT = "account_"
_STATE = (
    sa.select(sessions, *(users.c[name].label(_ACCOUNT + name) for name in User.__slots__))
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == sa.bindparam("session_id"), sessions.c.user_id == sa.bindparam("user_id"))
)
_FAMILY_OF = sa.select(refresh_tokens.c.session_id).where(refresh_tokens.c.digest == sa.bindparam("digest"))

# A rotation's statements and a session's opening, built once for the same reason (a refresh is all writes:
# building its statements per call cost more than running them).
_SPEND = (
    refresh_tokens.update()
    .where(refresh_tokens.c.digest == sa.bindparam("token"), refresh_tokens.c.used_at.is_(None))
    .values(used_at=sa.bindparam("spent_at"))
)
_FAMILY_ROW = (
    sa.select(*_FAMILY)
    .select_from(refresh_tokens.join(sessions).join(users, users.c.id == sessions.c.user_id))
    .where(refresh_tokens.c.digest == sa.bindparam("token"))
)
_SPENT_AT = sa.select(refresh_tokens.c.used_at).where(refresh_tokens.c.digest == sa.bindparam("token"))
_TOUCH = sessions.update().where(sessions.c.id == sa.bindparam("session")).values(last_used_at=sa.bindparam("at"))
_END_SESSION = (
    sessions.update()
    .where(sessions.c.id == sa.bindparam("session"), sessions.c.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("at"))
)
_NEW_SESSION = sessions.insert()
_NEW_TOKEN = refresh_tokens.insert()
_LOGIN_GUARD = sa.and_(
    users.c.id == sa.bindparam("user"),
    users.c.password_hash == sa.bindparam("verified_hash"),
    users.c.status == Status.ACTIVE.value,
)
_LOGIN = users.update().where(_LOGIN_GUARD).values(last_login_at=sa.bindparam("at"))
_LOGIN_REHASHED = (
    users.update().where(_LOGIN_GUARD).values(last_login_at=sa.bindparam("at"), password_hash=sa.bindparam("new_hash"))
)


@dataclass(frozen=True, slots=True)
class _Family:
    used_at: datetime | None
    state: SessionState
    user: User


class SqlSessionStore:
    """Sessions in ``sessions`` and ``refresh_tokens``.

    ``records_logins=False`` (the microservices mode's auth service, over its replica of the accounts): a
    login's guard is checked, and the account row locked, in the session's transaction, but the login is
    not written here; the accounts' owner records it (``infra.replication.ReplicaSessionStore``).
    """

    def __init__(self, engine: AsyncEngine, *, records_logins: bool = True) -> None:
        self._engine = engine
        self._login = record_login if records_logins else _login_holds

    async def open(
        self, session: Session, refresh_digest: str, login: LoginWrite | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        async with transaction(self._engine) as connection:
            if login is not None and not await self._login(connection, login):
                return False  # nothing was written
            try:
                await run(connection, _NEW_SESSION, _session_row(session))
            except IntegrityError:  # the account was deleted meanwhile (the foreign key): no session for it
                await connection.rollback()
                return False
            token = {"digest": refresh_digest, "session_id": session.id, "created_at": session.created_at}
            await run(connection, _NEW_TOKEN, token)
            await write_effects(connection, effects, session.created_at)
            return True

    async def rotate(
        self, digest: str, child_digest: str, now: datetime, rules: SessionRules, ip: str = ""
    ) -> Rotation:
        async with transaction(self._engine) as connection:
            if await run(connection, _SPEND, {"token": digest, "spent_at": now}) == 1:
                family = await _family(connection, digest)
                if family is None or not family.state.usable(now, rules):
                    await connection.rollback()  # a dead session keeps its token as it was
                    return Rotation(RotationOutcome.INVALID)
                session = family.state.session
                await run(connection, _NEW_TOKEN, {"digest": child_digest, "session_id": session.id, "created_at": now})
                await run(connection, _TOUCH, {"session": session.id, "at": now})
                return Rotation(RotationOutcome.ROTATED, replace(session, last_used_at=now), family.user)
            rotation = await _spent_again(connection, digest, child_digest, now, rules)
            if rotation.outcome is RotationOutcome.REUSED and rotation.session is not None:
                await write_effects(connection, audited(reuse_event(rotation.session, now, ip)), now)
            return rotation

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        row = await read_first(self._engine, _STATE, {"session_id": session_id, "user_id": user_id})
        account = user_from_row(row, _ACCOUNT)
        if account is None:
            return None
        request_reads.remember(account)
        return SessionState(
            session=_session(row), role=account.role, status=account.status, verified=account.is_verified
        )

    async def family(self, digest: str) -> str | None:
        row = await read_first(self._engine, _FAMILY_OF, {"digest": digest})
        return None if row is None else str(row["session_id"])

    async def list_for_user(self, user_id: str) -> list[Session]:
        query = (
            sa.select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
        )
        async with reading(self._engine) as connection:
            return [_session(row) for row in (await connection.execute(query)).mappings()]

    async def revoke(
        self, session_id: str, now: datetime, user_id: str | None = None, effects: Effects = NO_EFFECTS
    ) -> bool:
        condition = sa.and_(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        if user_id is not None:
            condition = sa.and_(condition, sessions.c.user_id == user_id)
        async with transaction(self._engine) as connection:
            result = await connection.execute(sessions.update().where(condition).values(revoked_at=now))
            if result.rowcount != 1:
                return False
            await write_effects(connection, effects, now)
            return True

    async def revoke_for_user(
        self, user_id: str, now: datetime, keep: str | None = None, effects: Effects = NO_EFFECTS
    ) -> list[str]:
        async with transaction(self._engine) as connection:
            ended = await end_user_sessions(connection, user_id, now, keep=keep)
            if ended:
                await write_effects(connection, effects, now)
            return ended


class SqlAccountTokenStore:
    """Password-reset and verification tokens in ``account_tokens``, and the changes they authorise."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def issue(self, token: AccountToken, effects: Effects = NO_EFFECTS) -> None:
        async with transaction(self._engine) as connection:
            await _end_tokens(connection, token.user_id, token.purpose, token.created_at)
            await connection.execute(account_tokens.insert().values(**_token_row(token)))
            await write_effects(connection, effects, token.created_at)

    async def find(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        async with reading(self._engine) as connection:
            query = sa.select(account_tokens).where(_usable(digest, purpose, now))
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _token(row)

    async def reset_password(self, digest: str, new_hash: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        async with transaction(self._engine) as connection:
            user_id = await _spend(connection, digest, TokenPurpose.PASSWORD_RESET, now)
            if user_id is None:
                return False
            await connection.execute(
                users.update().where(users.c.id == user_id).values(password_hash=new_hash, updated_at=now)
            )
            await end_user_sessions(connection, user_id, now)
            await end_reset_tokens(connection, user_id, now)
            await write_effects(connection, effects, now)
            return True

    async def spend_reset(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> str | None:
        """Spend a password-reset token (and write ``effects``) without touching the account: its user's id.

        What the microservices mode's auth service does; the users service sets the hash."""
        async with transaction(self._engine) as connection:
            user_id = await _spend(connection, digest, TokenPurpose.PASSWORD_RESET, now)
            if user_id is not None:
                await write_effects(connection, effects, now)
            return user_id

    async def spend_verification(
        self, digest: str, now: datetime, effects: Effects = NO_EFFECTS
    ) -> tuple[str, str] | None:
        """Spend a verification token while the account's email is the token's (and write ``effects``),
        without touching the account: its user's id and that address."""
        async with transaction(self._engine) as connection:
            if not await _spend_verification(connection, digest, now):
                return None
            query = sa.select(account_tokens.c.user_id, account_tokens.c.email).where(account_tokens.c.digest == digest)
            row = (await connection.execute(query)).one()
            await write_effects(connection, effects, now)
            return str(row.user_id), str(row.email)

    async def verify_email(self, digest: str, now: datetime, effects: Effects = NO_EFFECTS) -> User | None:
        async with transaction(self._engine) as connection:
            if not await _spend_verification(connection, digest, now):
                return None
            user_id = (
                await connection.execute(sa.select(account_tokens.c.user_id).where(account_tokens.c.digest == digest))
            ).scalar_one()
            await connection.execute(
                users.update().where(users.c.id == user_id).values(is_verified=True, updated_at=now)
            )
            await write_effects(connection, effects, now)
            row = (await connection.execute(sa.select(users).where(users.c.id == user_id))).mappings().first()
            return user_from_row(row)


async def _spend_verification(connection: Writer, digest: str, now: datetime) -> bool:
    """Spend a usable verification token while its account's email is still the token's address."""
    spent = await connection.execute(
        account_tokens.update()
        .where(
            _usable(digest, TokenPurpose.EMAIL_VERIFY, now),
            account_tokens.c.email
            == sa.select(users.c.email).where(users.c.id == account_tokens.c.user_id).scalar_subquery(),
        )
        .values(used_at=now)
    )
    return bool(spent.rowcount == 1)


async def end_reset_tokens(connection: Writer, user_id: str, now: datetime) -> None:
    """Every unused password-reset token of the user dies (a password change or a newer reset)."""
    await _end_tokens(connection, user_id, TokenPurpose.PASSWORD_RESET, now)


async def _end_tokens(connection: Writer, user_id: str, purpose: TokenPurpose, now: datetime) -> None:
    """End the account's unused tokens of ``purpose``, taking no gap lock.

    An UPDATE by (user_id, purpose) locks the index gap where the account's tokens would be, even when it
    has none (InnoDB, repeatable read); two registrations whose accounts fall in one gap then each wait
    for the other's gap lock to insert their token: a deadlock, one of them a 503 (6% of 32 concurrent
    registrations). Instead the account's row is locked, so issuing and ending its tokens take turns,
    and the tokens are found by a plain read and ended by primary key (record locks only).
    """
    await connection.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())
    live = sa.select(account_tokens.c.id).where(
        account_tokens.c.user_id == user_id,
        account_tokens.c.purpose == purpose.value,
        account_tokens.c.used_at.is_(None),
    )
    ids = list((await connection.execute(live)).scalars())
    if ids:
        await connection.execute(account_tokens.update().where(account_tokens.c.id.in_(ids)).values(used_at=now))


def _usable(digest: str, purpose: TokenPurpose, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        account_tokens.c.digest == digest,
        account_tokens.c.purpose == purpose.value,
        account_tokens.c.used_at.is_(None),
        account_tokens.c.expires_at > now,
    )


async def _spend(connection: Writer, digest: str, purpose: TokenPurpose, now: datetime) -> str | None:
    """Spend a usable token (compare-and-set, the transaction's first write); its user's id, or None."""
    spent = await connection.execute(account_tokens.update().where(_usable(digest, purpose, now)).values(used_at=now))
    if spent.rowcount != 1:
        return None
    query = sa.select(account_tokens.c.user_id).where(account_tokens.c.digest == digest)
    return str((await connection.execute(query)).scalar_one())


def _token_row(token: AccountToken) -> dict[str, Any]:
    return {name: getattr(token, name) for name in AccountToken.__slots__} | {"purpose": token.purpose.value}


def _token(row: Any) -> AccountToken:
    return AccountToken(
        **{name: row[name] for name in AccountToken.__slots__} | {"purpose": TokenPurpose(row["purpose"])}
    )


async def end_user_sessions(connection: Writer, user_id: str, now: datetime, keep: str | None = None) -> list[str]:
    """End every live session of a user but ``keep``, inside the caller's transaction; the ended ids."""
    condition = sa.and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        condition = sa.and_(condition, sessions.c.id != keep)
    # Lock the live ones (SQLite already holds its write lock), then end exactly those.
    live = [row.id for row in await connection.execute(sa.select(sessions.c.id).where(condition).with_for_update())]
    if live:
        await connection.execute(sessions.update().where(sessions.c.id.in_(live)).values(revoked_at=now))
    return live


def _login_guard(login: LoginWrite) -> sa.ColumnElement[bool]:
    return sa.and_(
        users.c.id == login.user_id,
        users.c.password_hash == login.verified_hash,
        users.c.status == Status.ACTIVE.value,
    )


async def record_login(connection: Writer, login: LoginWrite) -> bool:
    """Write the login on the account while it is as the login verified it (its hash, active)."""
    values = {"user": login.user_id, "verified_hash": login.verified_hash, "at": login.now}
    if login.new_hash is None:
        return await run(connection, _LOGIN, values) == 1
    return await run(connection, _LOGIN_REHASHED, values | {"new_hash": login.new_hash}) == 1


async def _login_holds(connection: Writer, login: LoginWrite) -> bool:
    """The login's guard, read with the account row locked (a replica's apply waits for this transaction)."""
    query = sa.select(users.c.id).where(_login_guard(login)).with_for_update()
    return (await connection.execute(query)).first() is not None


async def _family(connection: Writer, digest: str) -> _Family | None:
    """The session a refresh token belongs to, with its account, in one query."""
    row = await first(connection, _FAMILY_ROW, {"token": digest})
    if row is None:
        return None
    user = user_from_row({column.name: row[f"u_{column.name}"] for column in users.c})
    assert user is not None
    session = _session({column.name: row[f"s_{column.name}"] for column in sessions.c})
    return _Family(row["used_at"], SessionState(session, user.role, user.status, user.is_verified), user)


async def _spent_again(
    connection: Writer, digest: str, child_digest: str, now: datetime, rules: SessionRules
) -> Rotation:
    """A token that was already spent (or never existed): a race within the grace, or reuse."""
    family = await _family(connection, digest)
    if family is None or family.used_at is None:
        return Rotation(RotationOutcome.INVALID)
    session = family.state.session
    child = await first(connection, _SPENT_AT, {"token": child_digest})
    if rules.within_grace(family.used_at, now) and child is not None and child["used_at"] is None:
        if not family.state.usable(now, rules):
            return Rotation(RotationOutcome.INVALID)
        return Rotation(RotationOutcome.REPLAYED, session, family.user)
    await run(connection, _END_SESSION, {"session": session.id, "at": now})
    return Rotation(RotationOutcome.REUSED, session)


def _session_row(session: Session) -> dict[str, Any]:
    return {name: getattr(session, name) for name in Session.__slots__}


def _session(row: Any) -> Session:
    return Session(**{name: row[name] for name in Session.__slots__})

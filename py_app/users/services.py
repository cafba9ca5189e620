"""User use cases. Depend on models and ports only: no session, request or proto is seen here."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import replace
from datetime import datetime

from py_app.core.effects import AuditEvent, Effects, SecurityEvent, audited
from py_app.core.errors import Conflict, FieldError, NotFound, PermissionDenied
from py_app.core.identity import Principal
from py_app.core.ports import Clock, PasswordHasher
from py_app.users.models import (
    MAX_PAGE,
    MAX_QUERY,
    MAX_SECRET,
    NewUser,
    Page,
    PasswordChange,
    Role,
    Status,
    User,
    UserChanges,
    UserQuery,
    check_email,
    check_length,
    check_profile,
    check_role,
    check_username,
    new_user_id,
    normalize_email,
    raise_if,
)
from py_app.users.passwords import check_password, context_words, normalize_password, verify_password
from py_app.users.ports import PrincipalCache, UserStore

security_log = logging.getLogger("arcana.security")
MAX_PER_PAGE = 100
# The form every id is stored in (str(uuid4())): matched in 0.2 µs, where uuid.UUID takes 0.9. Other forms
# uuid.UUID accepts (upper case, braces, no hyphens) still go to it, so what counts as an id is unchanged.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UserService:
    """Accounts: creation, reading, profile and administrative changes. Authorisation is decided here."""

    def __init__(self, store: UserStore, hasher: PasswordHasher, clock: Clock, cache: PrincipalCache) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._cache = cache

    async def create(self, new: NewUser, *, by: str | None = None, ip: str = "") -> User:
        """Validate, hash the password off the event loop, and store; Conflict when taken."""
        email = normalize_email(new.email)
        raise_if(
            check_username(new.username),
            check_email(email),
            check_password(new.password, context=context_words(new.username, email)),
            check_role(new.role),
            *check_profile(UserChanges(first_name=new.first_name, last_name=new.last_name)),
        )
        now = self._clock.now()
        user = User(
            id=new_user_id(),
            username=new.username,
            email=email,
            password_hash=await self._hasher.hash(normalize_password(new.password)),
            first_name=new.first_name,
            last_name=new.last_name,
            role=Role(new.role),
            status=Status.ACTIVE,
            is_verified=new.is_verified,
            created_at=now,
            updated_at=now,
        )
        created = AuditEvent(
            SecurityEvent.USER_CREATED,
            at=now,
            actor_id=by or user.id,
            target_id=user.id,
            ip=ip,
            details={"role": user.role.value},
        )
        await self._store.add(user, audited(created))
        return user

    async def create_admin(self, username: str, email: str, password: str) -> User:
        """The bootstrap path for the first administrator (there is never a default password)."""
        return await self.create(NewUser(username, email, password, role=Role.ADMIN.value, is_verified=True))

    async def create_by_admin(self, actor: Principal, new: NewUser) -> User:
        _require_admin(actor)
        return await self.create(new, by=actor.user_id, ip=actor.ip)

    async def get(self, actor: Principal, user_id: str) -> User:
        """Self or an admin; anyone else is told no (not whether the id exists)."""
        if actor.user_id != user_id and not actor.is_admin:
            raise PermissionDenied("You may only read your own account.")
        return await self._load(user_id)

    async def search(self, actor: Principal, query: UserQuery) -> Page:
        _require_admin(actor)
        return await self._page(query)

    async def public_page(self, page: int, per_page: int) -> Page:
        """The public, read-only directory (ReqRes-compatible): active accounts, never an administrator.

        Administrators stay out so the directory is no list of targets for password guessing.
        """
        return await self._page(UserQuery(page=page, per_page=per_page, status=Status.ACTIVE, exclude_role=Role.ADMIN))

    async def public_get(self, user_id: str) -> User:
        """One directory entry; an administrator or an account that is not active is simply not found."""
        user = await self._load(user_id)
        if user.status is not Status.ACTIVE or user.role is Role.ADMIN:
            raise NotFound("No such user.")
        return user

    async def update(self, actor: Principal, user_id: str, changes: UserChanges) -> User:
        """Partial update by the user or an admin; only admins change role or status, never their own."""
        if actor.user_id != user_id and not actor.is_admin:
            raise PermissionDenied("You may only change your own account.")
        if changes.role is not None or changes.status is not None:
            if not actor.is_admin:
                raise PermissionDenied("Only administrators may change a role or status.")
            if actor.user_id == user_id:
                # An admin cannot lock themselves out, so some admin always remains.
                raise PermissionDenied("Administrators cannot change their own role or status.")
        raise_if(*check_profile(changes))
        if changes.email is not None:
            email = normalize_email(changes.email)
            user = await self._load(user_id)
            # A new address is unproven until verified again.
            changes = replace(changes, email=email, is_verified=False if email != user.email else None)
        return await self._apply(actor, user_id, changes)

    async def set_status(self, actor: Principal, user_id: str, status: Status) -> User:
        return await self.update(actor, user_id, UserChanges(status=status))

    async def set_role(self, actor: Principal, user_id: str, role: Role) -> User:
        return await self.update(actor, user_id, UserChanges(role=role))

    async def verify(self, actor: Principal, user_id: str) -> User:
        _require_admin(actor)
        return await self._apply(actor, user_id, UserChanges(is_verified=True))

    async def delete(self, actor: Principal, user_id: str) -> None:
        _require_admin(actor)
        if actor.user_id == user_id:
            raise PermissionDenied("Administrators cannot delete their own account.")
        now = self._clock.now()
        deleted = self._event(SecurityEvent.USER_DELETED, actor, user_id, now)
        if not _is_uuid(user_id) or not await self._store.delete(user_id, now, deleted):
            raise NotFound("No such user.")
        await self._cache.forget_user(user_id)
        security_log.info("user_deleted", extra={"user_id": user_id, "by": actor.user_id})

    async def change_password(self, actor: Principal, user_id: str, current: str, new: str) -> None:
        """Needs the current password; every other session of the user ends."""
        if actor.user_id != user_id:
            raise PermissionDenied("You may only change your own password.")
        raise_if(check_length("current_password", current, MAX_SECRET))  # never hashed past it
        user = await self._store.credentials(user_id) if _is_uuid(user_id) else None
        if user is None:
            raise NotFound("No such user.")
        current_ok, _ = await verify_password(self._hasher, user.password_hash, current)
        raise_if(
            None if current_ok else FieldError("current_password", "is wrong"),
            check_password(new, "new_password", context=context_words(user.username, user.email)),
        )
        change = PasswordChange(
            user_id=user_id,
            expected_hash=user.password_hash,  # a concurrent change wins over this one
            new_hash=await self._hasher.hash(normalize_password(new)),
            now=self._clock.now(),
            keep_session=actor.session_id,
        )
        changed = self._event(SecurityEvent.PASSWORD_CHANGE, actor, user_id, change.now)
        if not await self._store.change_password(change, changed):
            raise Conflict("The password was changed meanwhile; try again.")
        await self._cache.forget_user(user_id)
        security_log.info("authn_password_change", extra={"user_id": user_id})

    async def _apply(self, actor: Principal, user_id: str, changes: UserChanges) -> User:
        """Write only the changed fields (a concurrent change to any other field is kept)."""
        now = self._clock.now()
        fields = sorted(changes.values())
        effects = self._event(SecurityEvent.USER_UPDATED, actor, user_id, now, fields=fields)
        if changes.touches_access:
            access = {name: str(value) for name, value in changes.values().items() if name in ("role", "status")}
            effects += self._event(SecurityEvent.PRIVILEGE_CHANGE, actor, user_id, now, **access)
        after = await self._store.update(user_id, changes, now, effects) if _is_uuid(user_id) else None
        if after is None:
            raise NotFound("No such user.")
        if changes.touches_principal:
            await self._cache.forget_user(user_id)
        if changes.touches_access:
            security_log.info(
                "privilege_permissions_changed",
                extra={"user_id": user_id, "by": actor.user_id, "role": after.role, "status": after.status},
            )
        return after

    @staticmethod
    def _event(event: SecurityEvent, actor: Principal, target: str, now: datetime, **details: object) -> Effects:
        """An audit record of ``actor`` doing ``event`` to ``target`` (field names, never values of secrets)."""
        return audited(
            AuditEvent(event, at=now, actor_id=actor.user_id, target_id=target, ip=actor.ip, details=details)
        )

    async def _load(self, user_id: str) -> User:
        if not _is_uuid(user_id):
            raise NotFound("No such user.")
        user = await self._store.get(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def _page(self, query: UserQuery) -> Page:
        raise_if(
            None if 1 <= query.page <= MAX_PAGE else FieldError("page", f"must be 1 to {MAX_PAGE:,}"),
            None if 1 <= query.per_page <= MAX_PER_PAGE else FieldError("per_page", f"must be 1 to {MAX_PER_PAGE}"),
            check_length("q", query.prefix or "", MAX_QUERY),
        )
        items, total = await self._store.search(query)
        return Page(items=items, page=query.page, per_page=query.per_page, total=total)


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Administrators only.")


def _is_uuid(value: str) -> bool:
    if _CANONICAL_UUID.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

"""gRPC-client adapters of the use-case ports: what a layered edge uses in place of the services, each calling
the service tier (``infra.remote``). Same Protocols, same errors; the edge still authenticates every request
(``authenticate`` runs in the service tier against the live session, as in-process). The ``User`` values they
return have an empty ``password_hash``: the service tier verifies passwords and sends no hash on (SRS-198)."""

from __future__ import annotations

from typing import cast

from py_app.audit.models import AuditPage, AuditQuery
from py_app.audit.ports import AuditUseCases
from py_app.auth.models import AuthResult, ClientInfo, Session
from py_app.auth.ports import AuthUseCases, RecoveryUseCases
from py_app.core.identity import Principal
from py_app.infra.remote import RemotePort
from py_app.users.models import NewUser, Page, Role, Status, User, UserChanges, UserQuery
from py_app.users.ports import UserUseCases


class RemoteUserUseCases(RemotePort):
    protocol = UserUseCases
    reads = frozenset({"get", "search", "public_page", "public_get"})

    async def create(self, new: NewUser, *, by: str | None = None, ip: str = "") -> User:
        return cast(User, await self._call("create", new, by=by, ip=ip))

    async def create_admin(self, username: str, email: str, password: str) -> User:
        return cast(User, await self._call("create_admin", username, email, password))

    async def create_by_admin(self, actor: Principal, new: NewUser) -> User:
        return cast(User, await self._call("create_by_admin", actor, new))

    async def get(self, actor: Principal, user_id: str) -> User:
        return cast(User, await self._call("get", actor, user_id))

    async def search(self, actor: Principal, query: UserQuery) -> Page:
        return cast(Page, await self._call("search", actor, query))

    async def public_page(self, page: int, per_page: int) -> Page:
        return cast(Page, await self._call("public_page", page, per_page))

    async def public_get(self, user_id: str) -> User:
        return cast(User, await self._call("public_get", user_id))

    async def update(self, actor: Principal, user_id: str, changes: UserChanges) -> User:
        return cast(User, await self._call("update", actor, user_id, changes))

    async def set_status(self, actor: Principal, user_id: str, status: Status) -> User:
        return cast(User, await self._call("set_status", actor, user_id, status))

    async def set_role(self, actor: Principal, user_id: str, role: Role) -> User:
        return cast(User, await self._call("set_role", actor, user_id, role))

    async def verify(self, actor: Principal, user_id: str) -> User:
        return cast(User, await self._call("verify", actor, user_id))

    async def delete(self, actor: Principal, user_id: str) -> None:
        await self._call("delete", actor, user_id)

    async def change_password(self, actor: Principal, user_id: str, current: str, new: str) -> None:
        await self._call("change_password", actor, user_id, current, new)


class RemoteAuthUseCases(RemotePort):
    protocol = AuthUseCases
    reads = frozenset({"authenticate", "validate", "me", "sessions"})

    async def prepare(self) -> None:
        """Nothing to warm up here: the service tier prepares itself before it reports SERVING."""

    async def register(self, new: NewUser, client: ClientInfo) -> AuthResult:
        return cast(AuthResult, await self._call("register", new, client))

    async def login(self, username_or_email: str, password: str, client: ClientInfo) -> AuthResult:
        return cast(AuthResult, await self._call("login", username_or_email, password, client))

    async def refresh(self, refresh_token: str, client: ClientInfo) -> AuthResult:
        return cast(AuthResult, await self._call("refresh", refresh_token, client))

    async def authenticate(
        self, access_token: str, client: ClientInfo | None = None, *, unverified_ok: bool = False
    ) -> Principal:
        return cast(Principal, await self._call("authenticate", access_token, client, unverified_ok=unverified_ok))

    async def validate(self, access_token: str, client: ClientInfo | None = None) -> Principal:
        return cast(Principal, await self._call("validate", access_token, client))

    async def logout(self, principal: Principal) -> None:
        await self._call("logout", principal)

    async def me(self, principal: Principal) -> User:
        return cast(User, await self._call("me", principal))

    async def sessions(self, principal: Principal) -> list[Session]:
        return cast("list[Session]", await self._call("sessions", principal))

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        await self._call("revoke_session", principal, session_id)

    async def revoke_all(self, principal: Principal, keep_current: bool) -> int:
        return cast(int, await self._call("revoke_all", principal, keep_current))


class RemoteRecoveryUseCases(RemotePort):
    protocol = RecoveryUseCases

    async def forgot_password(self, email: str, client: ClientInfo) -> None:
        await self._call("forgot_password", email, client)

    async def reset_password(self, token: str, new_password: str, client: ClientInfo) -> None:
        await self._call("reset_password", token, new_password, client)

    async def resend_verification(self, email: str, client: ClientInfo) -> None:
        await self._call("resend_verification", email, client)

    async def verify_email(self, token: str, client: ClientInfo) -> User:
        return cast(User, await self._call("verify_email", token, client))

    async def send_verification(self, user: User, ip: str) -> None:
        await self._call("send_verification", user, ip)


class RemoteAuditUseCases(RemotePort):
    protocol = AuditUseCases
    reads = frozenset({"search"})

    async def search(self, actor: Principal, query: AuditQuery) -> AuditPage:
        return cast(AuditPage, await self._call("search", actor, query))

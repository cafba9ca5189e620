"""gRPC servicer for users: proto → one service call → proto. Auth and errors live in the interceptor."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from py_app._proto.arcana.v1 import common_pb2, users_pb2, users_pb2_grpc
from py_app.core.errors import FieldError, InvalidInput
from py_app.entrypoints.rpc_support import principal
from py_app.users.models import NewUser, Page, Role, Status, User, UserChanges, UserQuery
from py_app.users.ports import UserUseCases

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
E = TypeVar("E", bound=StrEnum)


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def user_message(user: User) -> common_pb2.User:
    return common_pb2.User(
        id=user.id,
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone,
        avatar_url=user.avatar_url,
        role=user.role.value,
        status=user.status.value,
        is_verified=user.is_verified,
        created_at=timestamp(user.created_at),
        updated_at=timestamp(user.updated_at),
        last_login_at=timestamp(user.last_login_at),
    )


def choice(kind: type[E], value: str, field: str) -> E:
    """Parse an enum field the way REST's schema validation does: a named field error when unknown."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(
            "The request has invalid fields.", (FieldError(field, f"must be one of {allowed}"),)
        ) from None


def _optional(request: Any, field: str) -> str | None:
    return getattr(request, field) if request.HasField(field) else None


class UserServicer(users_pb2_grpc.UserServiceServicer):
    def __init__(self, users: UserUseCases) -> None:
        self._users = users

    async def GetUser(self, request: users_pb2.GetUserRequest, context: Context) -> common_pb2.User:  # noqa: N802
        return user_message(await self._users.get(principal(), request.id))

    async def ListUsers(  # noqa: N802
        self, request: users_pb2.ListUsersRequest, context: Context
    ) -> users_pb2.ListUsersResponse:
        role, status = _optional(request, "role"), _optional(request, "status")
        query = UserQuery(
            page=request.page or 1,
            per_page=request.per_page or 20,
            role=choice(Role, role, "role") if role is not None else None,
            status=choice(Status, status, "status") if status is not None else None,
            prefix=_optional(request, "q"),
        )
        return page_message(await self._users.search(principal(), query))

    async def CreateUser(self, request: users_pb2.CreateUserRequest, context: Context) -> common_pb2.User:  # noqa: N802
        new = NewUser(
            request.username,
            request.email,
            request.password,
            request.first_name,
            request.last_name,
            role=request.role or Role.USER.value,
        )
        return user_message(await self._users.create_by_admin(principal(), new))

    async def UpdateUser(self, request: users_pb2.UpdateUserRequest, context: Context) -> common_pb2.User:  # noqa: N802
        role, status = _optional(request, "role"), _optional(request, "status")
        changes = UserChanges(
            email=_optional(request, "email"),
            first_name=_optional(request, "first_name"),
            last_name=_optional(request, "last_name"),
            phone=_optional(request, "phone"),
            avatar_url=_optional(request, "avatar_url"),
            role=choice(Role, role, "role") if role is not None else None,
            status=choice(Status, status, "status") if status is not None else None,
        )
        return user_message(await self._users.update(principal(), request.id, changes))

    async def DeleteUser(  # noqa: N802
        self, request: users_pb2.DeleteUserRequest, context: Context
    ) -> users_pb2.DeleteUserResponse:
        await self._users.delete(principal(), request.id)
        return users_pb2.DeleteUserResponse()

    async def ChangePassword(  # noqa: N802
        self, request: users_pb2.ChangePasswordRequest, context: Context
    ) -> users_pb2.ChangePasswordResponse:
        await self._users.change_password(principal(), request.id, request.current_password, request.new_password)
        return users_pb2.ChangePasswordResponse()

    async def SetStatus(self, request: users_pb2.SetStatusRequest, context: Context) -> common_pb2.User:  # noqa: N802
        status = choice(Status, request.status, "status")
        return user_message(await self._users.set_status(principal(), request.id, status))

    async def SetRole(self, request: users_pb2.SetRoleRequest, context: Context) -> common_pb2.User:  # noqa: N802
        return user_message(await self._users.set_role(principal(), request.id, choice(Role, request.role, "role")))

    async def VerifyUser(self, request: users_pb2.VerifyUserRequest, context: Context) -> common_pb2.User:  # noqa: N802
        return user_message(await self._users.verify(principal(), request.id))


def page_message(page: Page) -> users_pb2.ListUsersResponse:
    return users_pb2.ListUsersResponse(
        items=[user_message(user) for user in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        total_pages=page.total_pages,
    )

"""REST controllers for users and the public directory: parse → one service call → map the result."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from py_app.core.identity import Principal
from py_app.entrypoints.problems import problem_responses
from py_app.entrypoints.rest_support import Injected, after_principal
from py_app.users.models import MAX_PAGE, MAX_QUERY, NewUser, Role, Status, UserQuery
from py_app.users.ports import UserUseCases
from py_app.users.schemas import (
    PasswordChangeIn,
    PublicOne,
    PublicPage,
    PublicUser,
    RoleIn,
    StatusIn,
    UserCreateIn,
    UserOut,
    UserPageOut,
    UserPatchIn,
)

PageNumber = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="1-based page")]
PerPage = Annotated[int, QueryParameter(ge=1, le=100, description="items per page, 1 to 100")]


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ("users",)
    security = ({"BearerAuth": []},)
    dependencies = {"users": after_principal("users")}  # noqa: RUF012 - Litestar's own attribute

    @get("/", operation_id="users.list", summary="List users (admin)", responses=problem_responses(400, 401, 403))
    async def search(
        self,
        principal: Injected[Principal],
        users: Injected[UserUseCases],
        page: PageNumber = 1,
        per_page: PerPage = 20,
        role: FromQuery[Role | None] = None,
        status: FromQuery[Status | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=MAX_QUERY, description="username or email prefix")] = None,
    ) -> UserPageOut:
        query = UserQuery(page=page, per_page=per_page, role=role, status=status, prefix=q)
        return UserPageOut.of(await users.search(principal, query))

    @post(
        "/",
        operation_id="users.create",
        summary="Create a user (admin)",
        status_code=201,
        responses=problem_responses(401, 403, 409, body=True),
    )
    async def create(
        self, data: JSONBody[UserCreateIn], principal: Injected[Principal], users: Injected[UserUseCases]
    ) -> UserOut:
        new = NewUser(data.username, data.email, data.password, data.first_name, data.last_name, role=data.role)
        return UserOut.of(await users.create_by_admin(principal, new))

    @get(
        "/{user_id:str}",
        operation_id="users.get",
        summary="Read a user (self or admin)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(
        self, user_id: FromPath[str], principal: Injected[Principal], users: Injected[UserUseCases]
    ) -> UserOut:
        return UserOut.of(await users.get(principal, user_id))

    @patch(
        "/{user_id:str}",
        operation_id="users.update",
        summary="Change a user's profile (self or admin; role and status: admin)",
        responses=problem_responses(401, 403, 404, 409, body=True),
    )
    async def update(
        self,
        user_id: FromPath[str],
        data: JSONBody[UserPatchIn],
        principal: Injected[Principal],
        users: Injected[UserUseCases],
    ) -> UserOut:
        return UserOut.of(await users.update(principal, user_id, data.changes()))

    @delete(
        "/{user_id:str}",
        operation_id="users.delete",
        summary="Delete a user (admin)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove(
        self, user_id: FromPath[str], principal: Injected[Principal], users: Injected[UserUseCases]
    ) -> None:
        await users.delete(principal, user_id)

    @put(
        "/{user_id:str}/password",
        operation_id="users.change_password",
        summary="Change your password; your other sessions end",
        status_code=204,
        responses=problem_responses(401, 403, 404, body=True),
    )
    async def change_password(
        self,
        user_id: FromPath[str],
        data: JSONBody[PasswordChangeIn],
        principal: Injected[Principal],
        users: Injected[UserUseCases],
    ) -> None:
        await users.change_password(principal, user_id, data.current_password, data.new_password)

    @put(
        "/{user_id:str}/status",
        operation_id="users.set_status",
        summary="Set a user's status (admin)",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 403, 404, body=True),
    )
    async def set_status(
        self,
        user_id: FromPath[str],
        data: JSONBody[StatusIn],
        principal: Injected[Principal],
        users: Injected[UserUseCases],
    ) -> UserOut:
        return UserOut.of(await users.set_status(principal, user_id, data.status))

    @put(
        "/{user_id:str}/role",
        operation_id="users.set_role",
        summary="Set a user's role (admin)",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 403, 404, body=True),
    )
    async def set_role(
        self,
        user_id: FromPath[str],
        data: JSONBody[RoleIn],
        principal: Injected[Principal],
        users: Injected[UserUseCases],
    ) -> UserOut:
        return UserOut.of(await users.set_role(principal, user_id, data.role))

    @post(
        "/{user_id:str}/verify",
        operation_id="users.verify",
        summary="Mark a user's email verified (admin)",
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def verify(
        self, user_id: FromPath[str], principal: Injected[Principal], users: Injected[UserUseCases]
    ) -> UserOut:
        return UserOut.of(await users.verify(principal, user_id))


class PublicUsersController(Controller):
    """Read-only and unauthenticated, in the ReqRes shape; writes answer 405."""

    path = "/api/public/users"
    tags = ("public",)

    @get(
        "/",
        operation_id="public.list_users",
        summary="The public user directory (ARCANA_PUBLIC_DIRECTORY=on; administrators are never listed)",
        responses=problem_responses(400),
    )
    async def directory(
        self,
        users: Injected[UserUseCases],
        page: PageNumber = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 6,
    ) -> PublicPage:
        return PublicPage.of(await users.public_page(page, per_page))

    @get(
        "/{user_id:str}",
        operation_id="public.get_user",
        summary="One public user record",
        responses=problem_responses(400, 404),
    )
    async def one(self, user_id: FromPath[str], users: Injected[UserUseCases]) -> PublicOne:
        return PublicOne(PublicUser.of(await users.public_get(user_id)))

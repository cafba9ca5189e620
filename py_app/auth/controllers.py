"""REST controllers for authentication: parse → one service call → map the result."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from py_app.auth.ports import AuthUseCases, PublishedKeys, RecoveryUseCases
from py_app.auth.schemas import (
    ACCEPTED,
    AcceptedOut,
    EmailIn,
    JwksOut,
    LoginIn,
    RefreshIn,
    RegisterIn,
    ResetIn,
    RevokeAllIn,
    RevokedOut,
    SessionOut,
    SessionsOut,
    TokenOut,
    ValidatedOut,
    ValidateIn,
    VerifyIn,
)
from py_app.core.errors import Unauthenticated
from py_app.core.identity import Principal
from py_app.entrypoints.problems import problem_responses
from py_app.entrypoints.rest_support import (
    Injected,
    OptionalBodyOperation,
    after_principal,
    client_info,
    scope_header,
)
from py_app.infra import caller as on_behalf
from py_app.users.models import NewUser
from py_app.users.schemas import UserOut

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]
BAD_CREDENTIALS = (
    "Bad credentials: wrong username, email or password, or the account is not active (one answer for all)"
)
BAD_REFRESH = "The refresh token is unknown, spent or expired, or its session has ended"
BAD_ACCESS = "The access token is invalid or expired, or its session has ended"
AUTHENTICATED = {"auth": after_principal("auth")}  # the handlers that take the caller


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller behind ``Authorization: Bearer <token>`` (never a query parameter)."""
    scheme, _, token = (scope_header(request.scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("A Bearer access token is required.")
    auth: AuthUseCases = request.app.state.container.auth
    unverified_ok = bool(request.route_handler.opt.get("unverified_ok"))  # me and logout
    principal = await auth.authenticate(token.strip(), client_info(request), unverified_ok=unverified_ok)
    on_behalf.identify(principal.user_id, principal.session_id)  # for the log lines and internal calls that follow
    return principal


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("auth",)

    @post(
        "/register",
        operation_id="auth.register",
        summary="Create an account and log in",
        status_code=201,
        responses=problem_responses(409, 429, body=True),
    )
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[RegisterIn], auth: Injected[AuthUseCases]
    ) -> Response[TokenOut]:
        new = NewUser(data.username, data.email, data.password, data.first_name, data.last_name)
        result = await auth.register(new, client_info(request))
        return Response(TokenOut.of(result), status_code=201, headers=NO_STORE)

    @post(
        "/login",
        operation_id="auth.login",
        summary="Log in with a username or email",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 429, body=True, described={401: BAD_CREDENTIALS}),
    )
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginIn], auth: Injected[AuthUseCases]
    ) -> Response[TokenOut]:
        result = await auth.login(data.username_or_email, data.password, client_info(request))
        return Response(TokenOut.of(result), headers=NO_STORE)

    @post(
        "/refresh",
        operation_id="auth.refresh",
        summary="Rotate a refresh token",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 429, body=True, described={401: BAD_REFRESH}),
    )
    async def refresh(
        self, request: Request[Any, Any, Any], data: JSONBody[RefreshIn], auth: Injected[AuthUseCases]
    ) -> Response[TokenOut]:
        result = await auth.refresh(data.refresh_token, client_info(request))
        return Response(TokenOut.of(result), headers=NO_STORE)

    @post(
        "/validate",
        operation_id="auth.validate_token",
        summary="Check an access token: its subject, session and current role (as gRPC ValidateToken)",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, body=True, described={401: BAD_ACCESS}),
    )
    async def validate(self, data: JSONBody[ValidateIn], auth: Injected[AuthUseCases]) -> Response[ValidatedOut]:
        caller = await auth.validate(data.access_token)
        return Response(ValidatedOut(caller.user_id, caller.session_id, caller.role), headers=NO_STORE)

    @post(
        "/logout",
        opt={"unverified_ok": True},
        operation_id="auth.logout",
        summary="End this session",
        status_code=HTTP_204_NO_CONTENT,
        security=BEARER,
        responses=problem_responses(401),
        dependencies=AUTHENTICATED,
    )
    async def logout(self, principal: Injected[Principal], auth: Injected[AuthUseCases]) -> None:
        await auth.logout(principal)

    @get(
        "/me",
        opt={"unverified_ok": True},
        operation_id="auth.me",
        summary="The current user",
        security=BEARER,
        responses=problem_responses(401),
        dependencies=AUTHENTICATED,
    )
    async def me(self, principal: Injected[Principal], auth: Injected[AuthUseCases]) -> UserOut:
        return UserOut.of(await auth.me(principal))

    @get(
        "/sessions",
        operation_id="auth.list_sessions",
        summary="The current user's active sessions",
        security=BEARER,
        responses=problem_responses(401),
        dependencies=AUTHENTICATED,
    )
    async def sessions(self, principal: Injected[Principal], auth: Injected[AuthUseCases]) -> SessionsOut:
        found = await auth.sessions(principal)
        return SessionsOut([SessionOut.of(session, principal.session_id) for session in found])

    @delete(
        "/sessions/{session_id:str}",
        operation_id="auth.revoke_session",
        summary="End one of the current user's sessions",
        security=BEARER,
        responses=problem_responses(400, 401, 404),
        dependencies=AUTHENTICATED,
    )
    async def revoke_session(
        self, session_id: FromPath[str], principal: Injected[Principal], auth: Injected[AuthUseCases]
    ) -> None:
        await auth.revoke_session(principal, session_id)

    @post(
        "/sessions/revoke-all",
        operation_id="auth.revoke_all_sessions",
        summary="End all sessions, optionally keeping this one",
        status_code=HTTP_200_OK,
        security=BEARER,
        responses=problem_responses(401, body=True),
        operation_class=OptionalBodyOperation,  # no body: keep_current is false
        dependencies=AUTHENTICATED,
    )
    async def revoke_all(
        self,
        principal: Injected[Principal],
        auth: Injected[AuthUseCases],
        data: JSONBody[RevokeAllIn | None] = None,
    ) -> RevokedOut:
        keep = data.keep_current if data is not None else False
        return RevokedOut(await auth.revoke_all(principal, keep_current=keep))

    @post(
        "/password/forgot",
        operation_id="auth.forgot_password",
        summary="Mail a password-reset code; the same answer whether or not the address has an account",
        status_code=202,
        responses=problem_responses(429, body=True),
    )
    async def forgot_password(
        self, request: Request[Any, Any, Any], data: JSONBody[EmailIn], recovery: Injected[RecoveryUseCases]
    ) -> Response[AcceptedOut]:
        await recovery.forgot_password(data.email, client_info(request))
        return Response(ACCEPTED, status_code=202, headers=NO_STORE)

    @post(
        "/password/reset",
        operation_id="auth.reset_password",
        summary="Set a new password with the code from the reset mail; every session of the account ends",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(429, body=True),
    )
    async def reset_password(
        self, request: Request[Any, Any, Any], data: JSONBody[ResetIn], recovery: Injected[RecoveryUseCases]
    ) -> None:
        await recovery.reset_password(data.token, data.new_password, client_info(request))

    @post(
        "/email/resend",
        operation_id="auth.resend_verification",
        summary="Mail a new email-verification code; the same answer whether or not the address has an account",
        status_code=202,
        responses=problem_responses(429, body=True),
    )
    async def resend_verification(
        self, request: Request[Any, Any, Any], data: JSONBody[EmailIn], recovery: Injected[RecoveryUseCases]
    ) -> Response[AcceptedOut]:
        await recovery.resend_verification(data.email, client_info(request))
        return Response(ACCEPTED, status_code=202, headers=NO_STORE)

    @post(
        "/email/verify",
        operation_id="auth.verify_email",
        summary="Confirm an email address with the code from the verification mail",
        status_code=HTTP_200_OK,
        responses=problem_responses(body=True),
    )
    async def verify_email(
        self, request: Request[Any, Any, Any], data: JSONBody[VerifyIn], recovery: Injected[RecoveryUseCases]
    ) -> UserOut:
        return UserOut.of(await recovery.verify_email(data.token, client_info(request)))


class KeysController(Controller):
    """The public keys that verify access tokens, for services that check tokens themselves."""

    path = "/.well-known"
    tags = ("auth",)

    @get(
        "/jwks.json",
        operation_id="auth.jwks",
        summary="Public keys that verify access tokens (RFC 7517 JWK Set; empty for HS256: its key is secret)",
        media_type="application/json",
        responses={
            200: ResponseSpec(
                data_container=JwksOut,
                description="Every key that may have signed a valid token; cacheable for Cache-Control max-age",
            )
        },
    )
    async def jwks(self, keys: Injected[PublishedKeys]) -> Response[bytes]:
        published = keys.published()
        return Response(published.jwks, headers={"Cache-Control": f"public, max-age={published.max_age}"})

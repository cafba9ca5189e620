"""gRPC servicer for authentication: proto → one service call → proto. Auth and errors: the interceptor."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from py_app.auth.models import ACCEPTED_DETAIL, ACCEPTED_STATUS, AuthResult
from py_app.auth.ports import AuthUseCases, RecoveryUseCases
from py_app.entrypoints.rpc_support import client, principal
from py_app.users.models import NewUser
from py_app.users.servicers import timestamp, user_message

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
ACCEPTED = auth_pb2.AcceptedResponse(status=ACCEPTED_STATUS, detail=ACCEPTED_DETAIL)


def token_message(result: AuthResult) -> common_pb2.TokenResponse:
    tokens = result.tokens
    return common_pb2.TokenResponse(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
        user=user_message(result.user),
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: AuthUseCases, recovery: RecoveryUseCases) -> None:
        self._auth = auth
        self._recovery = recovery

    async def Register(self, request: auth_pb2.RegisterRequest, context: Context) -> common_pb2.TokenResponse:  # noqa: N802
        new = NewUser(request.username, request.email, request.password, request.first_name, request.last_name)
        return token_message(await self._auth.register(new, client()))

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> common_pb2.TokenResponse:  # noqa: N802
        result = await self._auth.login(request.username_or_email, request.password, client())
        return token_message(result)

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> common_pb2.TokenResponse:  # noqa: N802
        return token_message(await self._auth.refresh(request.refresh_token, client()))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:  # noqa: N802
        await self._auth.logout(principal())
        return auth_pb2.LogoutResponse()

    async def Me(self, request: auth_pb2.MeRequest, context: Context) -> common_pb2.User:  # noqa: N802
        return user_message(await self._auth.me(principal()))

    async def ListSessions(  # noqa: N802
        self, request: auth_pb2.ListSessionsRequest, context: Context
    ) -> auth_pb2.ListSessionsResponse:
        caller = principal()
        items = [
            auth_pb2.Session(
                id=session.id,
                created_at=timestamp(session.created_at),
                last_used_at=timestamp(session.last_used_at),
                user_agent=session.user_agent,
                ip=session.ip,
                current=session.id == caller.session_id,
            )
            for session in await self._auth.sessions(caller)
        ]
        return auth_pb2.ListSessionsResponse(items=items)

    async def RevokeSession(  # noqa: N802
        self, request: auth_pb2.RevokeSessionRequest, context: Context
    ) -> auth_pb2.RevokeSessionResponse:
        await self._auth.revoke_session(principal(), request.id)
        return auth_pb2.RevokeSessionResponse()

    async def RevokeAllSessions(  # noqa: N802
        self, request: auth_pb2.RevokeAllSessionsRequest, context: Context
    ) -> auth_pb2.RevokeAllSessionsResponse:
        revoked = await self._auth.revoke_all(principal(), keep_current=request.keep_current)
        return auth_pb2.RevokeAllSessionsResponse(revoked=revoked)

    async def ValidateToken(  # noqa: N802
        self, request: auth_pb2.ValidateTokenRequest, context: Context
    ) -> auth_pb2.ValidateTokenResponse:
        caller = await self._auth.validate(request.access_token, client())
        return auth_pb2.ValidateTokenResponse(user_id=caller.user_id, session_id=caller.session_id, role=caller.role)

    async def ForgotPassword(  # noqa: N802
        self, request: auth_pb2.ForgotPasswordRequest, context: Context
    ) -> auth_pb2.AcceptedResponse:
        await self._recovery.forgot_password(request.email, client())
        return ACCEPTED

    async def ResetPassword(  # noqa: N802
        self, request: auth_pb2.ResetPasswordRequest, context: Context
    ) -> auth_pb2.ResetPasswordResponse:
        await self._recovery.reset_password(request.token, request.new_password, client())
        return auth_pb2.ResetPasswordResponse()

    async def ResendVerification(  # noqa: N802
        self, request: auth_pb2.ResendVerificationRequest, context: Context
    ) -> auth_pb2.AcceptedResponse:
        await self._recovery.resend_verification(request.email, client())
        return ACCEPTED

    async def VerifyEmail(self, request: auth_pb2.VerifyEmailRequest, context: Context) -> common_pb2.User:  # noqa: N802
        return user_message(await self._recovery.verify_email(request.token, client()))

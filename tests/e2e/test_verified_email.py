"""ARCANA_REQUIRE_VERIFIED_EMAIL on a real server: an unverified account may verify, resend, read itself and
log out, nothing else, over REST and gRPC, until the code from its mail (a real SMTP server) verifies it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from tests.e2e.support import migrate, start
from tests.support.smtp import Sink, smtp_sink, token_in

__all__ = ["smtp_sink"]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), pytest.mark.req("SRS-107")]
V1 = "/api/v1"


async def grpc_get_user(target: str, access: str, user_id: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        metadata = [("authorization", f"Bearer {access}")]
        try:
            await users_pb2_grpc.UserServiceStub(channel).GetUser(
                users_pb2.GetUserRequest(id=user_id), metadata=metadata
            )
        except grpc.aio.AioRpcError as error:
            status = rpc_status.from_call(error)
            assert status is not None
            info = error_details_pb2.ErrorInfo()
            next(detail for detail in status.details if detail.Is(info.DESCRIPTOR)).Unpack(info)
            assert info.reason == "email_unverified"
            return error.code()
        me = await auth_pb2_grpc.AuthServiceStub(channel).Me(auth_pb2.MeRequest(), metadata=metadata)
        assert me.id == user_id
        return grpc.StatusCode.OK


def test_an_unverified_account_may_only_verify_read_itself_and_log_out(tmp_path: Path, smtp_sink: Sink) -> None:
    migrate(tmp_path)
    server = start(
        [sys.executable, "-m", "py_app", "serve"],
        tmp_path,
        ARCANA_REQUIRE_VERIFIED_EMAIL="on",
        ARCANA_SMTP_URL=smtp_sink.url,
    )
    try:
        server.wait_ready()
        name = f"unverified{uuid.uuid4().hex[:6]}"
        with httpx.Client(base_url=server.http + V1, timeout=30) as client:
            body = {"username": name, "email": f"{name}@example.com", "password": "violet harbour lantern 42"}
            made = client.post("/auth/register", json=body).json()
            bearer = {"Authorization": f"Bearer {made['access_token']}"}
            second = client.post("/auth/login", json={"username_or_email": name, "password": body["password"]}).json()
            assert client.get("/auth/me", headers=bearer).status_code == 200
            refused = client.get(f"/users/{made['user']['id']}", headers=bearer)
            assert (refused.status_code, refused.json()["code"]) == (403, "email_unverified")
            assert client.get("/auth/sessions", headers=bearer).status_code == 403
            assert asyncio.run(grpc_get_user(server.grpc, made["access_token"], made["user"]["id"])) is (
                grpc.StatusCode.PERMISSION_DENIED
            )
            assert (
                client.post("/auth/logout", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code
                == 204
            )
            letter = smtp_sink.wait_for_subject(f"{name}@example.com", "Confirm your email address")
            assert client.post("/auth/email/verify", json={"token": token_in(letter)}).status_code == 200
            assert client.get(f"/users/{made['user']['id']}", headers=bearer).status_code == 200  # at once
            assert asyncio.run(grpc_get_user(server.grpc, made["access_token"], made["user"]["id"])) is (
                grpc.StatusCode.OK
            )
    finally:
        server.stop()

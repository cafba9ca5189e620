"""The caller's principal across the layered topology's hops (issue 13.4), as real processes: `up --mode layered`
at debug, where each internal tier writes one line per call it serves. An authenticated REST or gRPC call makes
the service and repository tiers log the caller's user id under the edge's request id; a public call none."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc
from tests.e2e.support import STOP_SECONDS, Server, migrate, start
from tests.e2e.test_layered import _listed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
PASSWORD = "amber-quarry-whistle-77"


def _lines(up: Server, rid: str) -> list[dict[str, object]]:
    """Every JSON log line of every process written under request id ``rid``."""
    found = []
    for raw in up.output().splitlines():
        if raw.startswith("{") and f'"{rid}"' in raw:
            line = json.loads(raw)
            if line.get("request_id") == rid:
                found.append(line)
    return found


def _served(lines: list[dict[str, object]], tier: str) -> list[dict[str, object]]:
    """The "internal call" lines a tier (``Services`` or ``Repository``) wrote."""
    prefix = f"arcana.internal.v1.{tier}/"
    return [line for line in lines if line["msg"] == "internal call" and str(line["rpc"]).startswith(prefix)]


def _wait_for(up: Server, rid: str, rpc: str) -> list[dict[str, object]]:
    """The lines of ``rid`` once the tier that serves ``rpc`` has written its line (the processes write on
    their own: a tier's line may land a moment after the edge answered)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = _lines(up, rid)
        if any(line.get("rpc") == rpc for line in lines) and any(line["msg"] == "request" for line in lines):
            return lines
        time.sleep(0.1)
    pytest.fail(f"no {rpc} line under {rid}:\n{up.output()[-3000:]}")


async def _grpc(target: str, name: str, rid: str, sessions_rid: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        tokens = await stub.Login(
            auth_pb2.LoginRequest(username_or_email=name, password=PASSWORD),
            metadata=[("x-request-id", rid)],
            timeout=30,
        )
        await stub.ListSessions(
            auth_pb2.ListSessionsRequest(),
            metadata=[("x-request-id", sessions_rid), ("authorization", f"Bearer {tokens.access_token}")],
            timeout=30,
        )


def _assert_for(lines: list[dict[str, object]], user_id: str, service_rpc: str) -> None:
    services, repository = _served(lines, "Services"), _served(lines, "Repository")
    # The authenticating call itself is for nobody yet: the edge binds the principal once it is verified.
    assert [line.get("user_id") for line in services] == [None, user_id], services
    assert services[-1]["rpc"] == service_rpc
    assert user_id in {line.get("user_id") for line in repository}, repository  # edge -> service -> repository
    request = [line for line in lines if line["msg"] == "request"]
    assert [line.get("user_id") for line in request] == [user_id]  # the edge's own line names the user too


@pytest.mark.req("SRS-230", "SRS-228", "SRS-229")
def test_an_authenticated_call_names_its_user_at_every_tier_and_a_public_call_names_none(tmp_path: Path) -> None:
    migrate(tmp_path)
    up = start([sys.executable, "-m", "py_app", "up", "--mode", "layered"], tmp_path, ARCANA_LOG_LEVEL="debug")
    try:
        processes = _listed(up)
        edge = processes["edge-1"]
        tag = uuid.uuid4().hex[:10]
        name = f"hop{tag}"
        register_rid, sessions_rid = f"reg-{tag}", f"rest-{tag}"
        made = httpx.post(
            f"{edge['http']}/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            headers={"x-request-id": register_rid},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        token = made.json()["access_token"]
        me = httpx.get(f"{edge['http']}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        user_id = me.json()["id"]
        listed = httpx.get(
            f"{edge['http']}/api/v1/auth/sessions",
            headers={"Authorization": f"Bearer {token}", "x-request-id": sessions_rid},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        login_rid, grpc_rid = f"login-{tag}", f"grpc-{tag}"
        asyncio.run(_grpc(edge["grpc"], name, login_rid, grpc_rid))

        sessions_rpc = "arcana.internal.v1.Services/AuthUseCases.sessions"
        _assert_for(_wait_for(up, sessions_rid, sessions_rpc), user_id, sessions_rpc)
        _assert_for(_wait_for(up, grpc_rid, sessions_rpc), user_id, sessions_rpc)
        for public, rpc in ((register_rid, "register"), (login_rid, "login")):
            lines = _wait_for(up, public, f"arcana.internal.v1.Services/AuthUseCases.{rpc}")
            assert _served(lines, "Repository"), lines  # it did cross every tier
            # (a security event's own user_id, the account logged in or made, is its subject, not a principal)
            untagged = [*_served(lines, "Services"), *_served(lines, "Repository")]
            untagged += [line for line in lines if line["msg"] == "request"]
            assert not [line for line in untagged if "user_id" in line], untagged
        assert token not in up.output()
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
    finally:
        up.stop()
    assert "Traceback" not in up.output()


@pytest.mark.req("SRS-231", "SRS-228")
def test_in_microservices_mode_the_principal_crosses_edge_users_and_auth(tmp_path: Path) -> None:
    up = start([sys.executable, "-m", "py_app", "up", "--mode", "microservices"], tmp_path, ARCANA_LOG_LEVEL="debug")
    try:
        edge = _listed(up, "microservices")["edge-1"]
        tag = uuid.uuid4().hex[:10]
        name, rid = f"svc{tag}", f"patch-{tag}"
        made = httpx.post(
            f"{edge['http']}/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        token = made.json()["access_token"]
        me = httpx.get(f"{edge['http']}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        user_id = me.json()["id"]
        changed = httpx.patch(
            f"{edge['http']}/api/v1/users/{user_id}",
            json={"first_name": "Hop"},
            headers={"Authorization": f"Bearer {token}", "x-request-id": rid},
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        # edge -> users (the use case) -> auth (the users service propagates the write to the auth replica)
        lines = _wait_for(up, rid, "arcana.internal.v1.Services/AccountReplica.apply")
        served = {str(line["rpc"]).rsplit("/", 1)[1]: line.get("user_id") for line in _served(lines, "Services")}
        assert served["UserUseCases.update"] == user_id, served
        assert served["AccountReplica.apply"] == user_id, served
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(STOP_SECONDS * 2) == 0, up.output()[-3000:]
    finally:
        up.stop()
    assert "Traceback" not in up.output()

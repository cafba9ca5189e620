"""Request logs of a real server process (`python -m py_app serve`, ARCANA_LOG_FORMAT=json): one JSON line per
REST request and gRPC call and per security event, each carrying the request's id, which the caller gets back."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, info_pb2, info_pb2_grpc
from tests.e2e.support import STOP_SECONDS, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
FRESH = re.compile(r"[0-9a-f]{32}")
UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BAD_IDS = ["two words", 'quote"d', "x" * 129, "snow☃man"]


def records(output: str) -> list[dict[str, Any]]:
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a line of the server's output is not JSON: {line!r}")
    return parsed


def requests_with(logged: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [entry for entry in logged if entry["logger"] == "arcana.request" and entry.get("request_id") == request_id]


async def grpc_calls(target: str, ids: dict[str, str]) -> dict[str, Any]:
    """GetInfo (answers OK) and a Login with a wrong password (UNAUTHENTICATED): their trailing metadata."""
    seen: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        info = info_pb2_grpc.InfoServiceStub(channel).GetInfo(
            info_pb2.GetInfoRequest(), metadata=[("x-request-id", ids["info"])], timeout=20
        )
        await info
        seen["info"] = dict(await info.trailing_metadata())
        login = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username_or_email=ids["email"], password=ids["password"]),
            metadata=[("x-request-id", ids["login"])],
            timeout=20,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await login
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        seen["login"] = dict(refused.value.trailing_metadata())
        assert refused.value.details() == "Invalid username, email or password."  # the status as before
        nameless = info_pb2_grpc.InfoServiceStub(channel).GetInfo(
            info_pb2.GetInfoRequest(), metadata=[("x-request-id", BAD_IDS[0])], timeout=20
        )
        await nameless
        seen["bad"] = dict(await nameless.trailing_metadata())
    return seen


@pytest.mark.req("SRS-135", "SRS-136", "SRS-137", "SDD-135", "SDD-136")
def test_every_request_and_security_event_is_one_json_line_under_the_callers_request_id(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    email, password = f"logs{suffix}@example.com", f"right passphrase {suffix}"
    wrong = f"wrong passphrase {suffix}"
    migrate(tmp_path)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, ARCANA_LOG_FORMAT="json")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.http, timeout=20) as http:
            live = http.get("/health/live", headers={"X-Request-ID": f"rest-{suffix}"})
            missing = http.get(f"/api/v1/no-such-path-{suffix}", headers={"X-Request-ID": f"missing-{suffix}"})
            plain = http.get("/health/live")
            replaced = [http.get("/health/live", headers={b"X-Request-ID": bad.encode()}) for bad in BAD_IDS]
            made = http.post(
                "/api/v1/auth/register", json={"username": f"logs{suffix}", "email": email, "password": password}
            )
            assert made.status_code == 201, made.text
            failed = http.post(
                "/api/v1/auth/login",
                json={"username_or_email": email, "password": wrong},
                headers={"X-Request-ID": f"login-{suffix}"},
            )
        ids = {"info": f"grpc-{suffix}", "login": f"grpc-login-{suffix}", "email": email, "password": wrong}
        answered = asyncio.run(grpc_calls(server.grpc, ids))
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(STOP_SECONDS) == 0, server.output()[-3000:]
    finally:
        server.stop()
    output = server.output()
    logged = records(output)

    # REST: the caller's id comes back, on a success, on a 404 and on a problem answer, and names its line.
    assert live.headers["x-request-id"] == f"rest-{suffix}"
    (line,) = requests_with(logged, f"rest-{suffix}")
    assert (line["method"], line["route"], line["status"], line["client_ip"]) == (
        "GET",
        "/health/live",
        200,
        "127.0.0.1",
    )
    assert line["level"] == "info"
    assert UTC_ISO.fullmatch(line["ts"]), line["ts"]
    assert isinstance(line["duration_ms"], float | int)
    assert line["duration_ms"] >= 0
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == f"missing-{suffix}"
    (line,) = requests_with(logged, f"missing-{suffix}")
    assert (line["route"], line["status"]) == ("<unmatched>", 404)
    assert "no-such-path" not in output, "the unmatched path is the caller's text and stays out of the log"

    # Without an id, or with one that is not safe to repeat, the server makes a fresh one (and logs that).
    for answer in (plain, *replaced):
        assert FRESH.fullmatch(answer.headers["x-request-id"]), answer.headers["x-request-id"]
        assert len(requests_with(logged, answer.headers["x-request-id"])) == 1
    assert len({answer.headers["x-request-id"] for answer in (plain, *replaced)}) == 1 + len(BAD_IDS)
    for bad in BAD_IDS:
        assert json.dumps(bad)[1:-1] not in output, f"{bad!r} reached the log"

    # A failed login: 401 problem with the id; its security event carries it, and neither password nor email.
    assert failed.status_code == 401
    assert failed.headers["x-request-id"] == f"login-{suffix}"
    event = [
        entry
        for entry in logged
        if entry["logger"] == "arcana.security" and entry.get("request_id") == f"login-{suffix}"
    ]
    assert [entry["msg"] for entry in event] == ["authn_login_fail"]
    (line,) = requests_with(logged, f"login-{suffix}")
    assert (line["route"], line["status"]) == ("/api/v1/auth/login", 401)

    # gRPC: the id comes back in the trailing metadata, on OK and on an error, and names the call's line.
    assert answered["info"]["x-request-id"] == f"grpc-{suffix}"
    (line,) = requests_with(logged, f"grpc-{suffix}")
    assert (line["method"], line["code"], line["client_ip"]) == ("/arcana.v1.InfoService/GetInfo", "OK", "127.0.0.1")
    assert answered["login"]["x-request-id"] == f"grpc-login-{suffix}"
    (line,) = requests_with(logged, f"grpc-login-{suffix}")
    assert (line["method"], line["code"]) == ("/arcana.v1.AuthService/Login", "UNAUTHENTICATED")
    grpc_event = [entry["msg"] for entry in logged if entry.get("request_id") == f"grpc-login-{suffix}"]
    assert grpc_event == ["authn_login_fail", "request"]
    assert FRESH.fullmatch(answered["bad"]["x-request-id"]), answered["bad"]

    for secret in (password, wrong, email):
        assert secret not in output, f"the log holds {secret[:6]}…"

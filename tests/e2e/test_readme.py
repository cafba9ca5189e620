"""The README's examples work as a new user pastes them: the Python gRPC snippet, saved as a file and
run from another directory with the project's interpreter, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import ROOT, Server, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180), pytest.mark.req("SRS-175")]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(language: str, containing: str) -> str:
    found: list[str] = [
        code for code in re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL) if containing in code
    ]
    assert len(found) == 1, f"one ```{language} block with {containing!r} in README.md"
    return found[0]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    migrate(tmp_path)
    running = start([sys.executable, "-m", "py_app", "serve"], tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_the_python_grpc_snippet_runs_as_a_saved_file(server: Server, tmp_path: Path) -> None:
    register = block("sh", '"username":"alice"')
    assert "correct horse battery" in register
    body = {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}
    assert httpx.post(f"{server.http}/api/v1/auth/register", json=body, timeout=10).status_code == 201
    script = tmp_path / "elsewhere" / "me.py"
    script.parent.mkdir()
    script.write_text(block("python", "AuthServiceStub").replace("127.0.0.1:50051", server.grpc), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, script.name], cwd=script.parent, capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "alice user"), done.stderr


def test_the_grpcurl_walk_through_logs_in_before_it_calls_me() -> None:
    lines = [line for line in block("sh", "grpcurl").splitlines() if line and not line.startswith("#")]
    login = next(index for index, line in enumerate(lines) if "AuthService/Login" in line)
    me = next(index for index, line in enumerate(lines) if "AuthService/Me" in line)
    assert lines[login - 1].startswith("AT=$(grpcurl"), "Me uses a token from the Login just before it"
    assert login < me
    assert '["accessToken"]' in lines[login], "grpcurl prints protojson's lowerCamelCase names"

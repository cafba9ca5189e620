"""One token verify through the full authentication path, beside the bare Rust verify.

``AuthService.authenticate`` as ``bootstrap.build`` wires it over SQLite: signature and claims in the
Rust core, then the session check, from the in-process cache (the default with one worker) or, with
the cache off, a read of the session and its user. Each async call runs through
``loop.run_until_complete``; the ``loop step`` row measures that step alone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from py_app.auth.models import ClientInfo
from py_app.bootstrap import Container, build_edge
from py_app.config import load_settings, resolve_jwt_secret
from py_app.infra.keys import secret_ring
from py_app.infra.security import JwtAccessTokens
from py_app.users.models import NewUser

GROUP = "auth path: one token verify"


class AuthPath:
    """A container over a migrated SQLite database, one logged-in user, and the loop that drives it."""

    def __init__(self, folder: Path, cache_ttl: str) -> None:
        environ = {"ARCANA_DATA_DIR": str(folder), "ARCANA_SESSION_CACHE_TTL": cache_ttl}
        env = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
        subprocess.run(
            [sys.executable, "-m", "py_app", "migrate"], env={**env, **environ}, check=True, capture_output=True
        )
        self.settings = load_settings(environ)
        self.loop = asyncio.new_event_loop()
        self.container: Container = build_edge(self.settings)
        new = NewUser("bench_path", "bench_path@bench.example", "Bench!Passw0rd-2026")
        result = self.loop.run_until_complete(self.container.auth.register(new, ClientInfo()))
        self.token = result.tokens.access_token

    def close(self) -> None:
        self.loop.run_until_complete(self.container.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AuthPath]]:
    made = {
        "cache": AuthPath(tmp_path_factory.mktemp("authpath-cache"), "5"),
        "no cache": AuthPath(tmp_path_factory.mktemp("authpath-nocache"), "0"),
    }
    yield made
    for path in made.values():
        path.close()


@pytest.mark.parametrize(
    "mode",
    [
        "rust verify_access (bare)",
        "loop step (no-op)",
        "authenticate, session cache hit",
        "authenticate, cache off (SQLite)",
    ],
)
def test_authenticate(benchmark: Any, paths: dict[str, AuthPath], mode: str) -> None:
    benchmark.group = GROUP
    path = paths["no cache" if "cache off" in mode else "cache"]
    loop, auth = path.loop, path.container.auth
    if mode.startswith("rust"):
        tokens = JwtAccessTokens(
            secret_ring(resolve_jwt_secret(path.settings)),
            issuer=path.settings.jwt_issuer,
            audience=path.settings.jwt_audience,
            ttl=path.settings.access_token_ttl,
        )
        now = datetime.now(UTC)
        assert tokens.verify(path.token, now).user_id
        benchmark(tokens.verify, path.token, now)
        return
    if mode.startswith("loop"):

        async def noop() -> None:
            return None

        benchmark(lambda: loop.run_until_complete(noop()))
        return
    assert loop.run_until_complete(auth.authenticate(path.token)).user_id
    benchmark(lambda: loop.run_until_complete(auth.authenticate(path.token)))

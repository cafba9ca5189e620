"""Fixtures of the fault tests: a private MariaDB to break, and live servers on it that are always stopped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Server, migrate, start
from tests.faults.private import PrivateMariaDB, private_mariadb

SERVE = [sys.executable, "-m", "py_app", "serve"]


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    with private_mariadb(tmp_path / "mariadb") as server:
        yield server


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Migrate, then start `python -m py_app serve` with these ARCANA_ settings; stopped (SIGKILL) at the end."""
    servers: list[Server] = []

    def factory(**settings: str) -> Server:
        folder = tmp_path / f"server{len(servers)}"
        migrate(folder, **settings)
        server = start(SERVE, folder, **settings)
        servers.append(server)
        server.wait_ready()
        return server

    yield factory
    for server in servers:
        server.stop()

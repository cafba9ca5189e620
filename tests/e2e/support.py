"""Real server processes for end-to-end tests: started the way the README starts them."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180  # make run may have to build on a cold machine
STOP_SECONDS = 20


class Server:
    def __init__(self, process: subprocess.Popen[bytes], http_port: int, grpc_port: int, log: Path) -> None:
        self.process = process
        self.http = f"http://127.0.0.1:{http_port}"
        self.grpc = f"127.0.0.1:{grpc_port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode} before ready:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.http}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server not ready within {STARTUP_SECONDS}s:\n{self.output()[-3000:]}")

    def wait_started(self, workers: int) -> None:
        """Ready, and every one of ``workers`` Granian workers through its start-up (Granian loses a signal
        that reaches a worker still starting: it kills that worker after the grace)."""
        self.wait_ready()
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.output().count("Started worker-") < workers:
            if time.monotonic() > deadline:
                pytest.fail(f"not all {workers} workers started within {STARTUP_SECONDS}s:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def serve_pid(self) -> int:
        """The `python -m py_app serve` process that make runs (make execs it from the recipe shell)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start(command: list[str], tmp_path: Path, **env: str) -> Server:
    """Start ``command`` with free ports and a data directory under ``tmp_path`` (``env`` may override them)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "MAKE"))}
    environ.update(
        ARCANA_DATA_DIR=str(tmp_path / "var"),
        ARCANA_HTTP_PORT=str(free_port()),
        ARCANA_GRPC_PORT=str(free_port()),
        ARCANA_SHUTDOWN_GRACE="3",
        ARCANA_LOG_FORMAT="json",  # what the tests read; console is only the development default
    )
    environ.update(env)
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(process, int(environ["ARCANA_HTTP_PORT"]), int(environ["ARCANA_GRPC_PORT"]), log)


def command(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One `python -m py_app` command with the test's data directory (and extra ARCANA_ settings)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "MAKE"))}
    environ.update(ARCANA_DATA_DIR=str(tmp_path / "var"), ARCANA_LOG_FORMAT="json")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "py_app", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


_TEMPLATE: list[Path] = []  # the SQLite file one `migrate` of this test process made, for the next ones


def migrate(tmp_path: Path, **env: str) -> None:
    """`python -m py_app migrate` for the test's data directory.

    On the default database (SQLite under the data directory, no other setting) the file one real run of
    `migrate` in this test process produced is copied instead: the same bytes, without a Python process start
    per test. Tests of `migrate` itself run the command (tests/integration/test_cli.py)."""
    target = tmp_path / "var" / "arcana.db"
    if env or target.exists():
        result = command(tmp_path, "migrate", **env)
        assert result.returncode == 0, result.stderr
        return
    if not _TEMPLATE:
        made = Path(tempfile.mkdtemp(prefix="arcana-migrated-"))
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        result = command(made, "migrate")
        assert result.returncode == 0, result.stderr
        assert sorted(path.name for path in (made / "var").iterdir()) == ["arcana.db"]  # nothing else to copy
        _TEMPLATE.append(made / "var" / "arcana.db")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], target)

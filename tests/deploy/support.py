"""What the deploy/ files are checked against: the settings, the CLI and the Dockerfile, read from the code."""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from py_app.config import Settings, load_settings
from tests.conftest import free_port
from tests.e2e.support import STOP_SECONDS, Server
from tests.unit.test_readme_settings import settings_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
PLACEHOLDER = "REPLACE_ME"
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.IGNORECASE)


def unknown_arcana(names: object) -> list[str]:
    """The ``ARCANA_`` names among ``names`` that no setting (nor a command) reads."""
    known = settings_variables()
    return sorted(name for name in names if str(name).startswith("ARCANA_") and name not in known)  # type: ignore[attr-defined]


def settings_for(environment: Mapping[str, str]) -> Settings:
    """The settings a process started with ``environment`` would run with (raises SettingsError as it would)."""
    return load_settings({name: value for name, value in environment.items() if name.startswith("ARCANA_")})


@functools.cache
def cli_has(command: str) -> bool:
    """Whether ``python -m py_app COMMAND`` exists: asks the real CLI, as the container would."""
    result = subprocess.run(
        [sys.executable, "-m", "py_app", command, "--help"],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for instruction, arguments in self.instructions if instruction == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                values[name] = value
        return values


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's stages, each with its instructions (continuations joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = arguments.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, arguments.strip()))
    return stages


def copy_sources(stage: Stage) -> list[str]:
    """Sources a stage takes from the build context: COPY without --from, and RUN bind mounts without from=."""
    sources = []
    for arguments in stage.all("COPY"):
        parts = [part for part in shlex.split(arguments) if not part.startswith("--")]
        if "--from=" not in arguments:
            sources += parts[:-1]
    for arguments in stage.all("RUN"):
        for mount in re.findall(r"--mount=(\S+)", arguments):
            options = dict(item.split("=", 1) for item in mount.split(","))
            if options.get("type") == "bind" and "from" not in options:
                sources.append(options["source"])
    return sources


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (its `*` then `!path` rules)."""
    excluded = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            excluded = not negate
    return excluded


def image_environment() -> dict[str, str]:
    """The environment the runtime image sets for its processes."""
    return dockerfile_stages()[-1].env()


# In a private mount namespace: bind each writable directory onto itself (a mount of its own, left
# read-write), then remount / read-only, as a container runtime does with readOnlyRootFilesystem.
READ_ONLY_ROOT = (
    'set -e; data="$1"; tmp="$2"; shift 2; mount --make-rprivate /; '
    'mount --bind "$data" "$data"; mount --bind "$tmp" "$tmp"; mount -o remount,bind,ro /; exec "$@"'
)


def read_only_root(argv: list[str], data: Path, tmp: Path, uid: int | None = None) -> list[str]:
    """``argv`` run with the root filesystem read-only except ``data`` and ``tmp`` (as ``uid`` when given)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a read-only root needs root and unshare (a private mount namespace)")
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid is not None else []
    return ["unshare", "--mount", "sh", "-c", READ_ONLY_ROOT, "sh", str(data), str(tmp), *as_user, *argv]


def container_environment(data: Path, tmp: Path, **settings: str) -> dict[str, str]:
    """The image's environment (production, data and TMPDIR), on this machine's paths and free ports.

    Coverage's own variables are left out: its data files would have to be written on the read-only root.
    """
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARCANA_", "COV_CORE", "COVERAGE_", "MAKE"))
    }
    # The image's settings and Python switches; its PATH names the image's own virtual environment.
    environ.update({key: value for key, value in image_environment().items() if key != "PATH"})
    environ.update(
        ARCANA_DATA_DIR=str(data),
        TMPDIR=str(tmp),
        ARCANA_JWT_SECRET=secrets.token_urlsafe(48),
        ARCANA_HTTP_HOST="127.0.0.1",
        ARCANA_GRPC_HOST="127.0.0.1",
        ARCANA_HTTP_PORT=str(free_port()),
        ARCANA_GRPC_PORT=str(free_port()),
        ARCANA_SHUTDOWN_GRACE="3",
    )
    environ.update(settings)
    return environ


def healthcheck_probe() -> list[str]:
    """The image's HEALTHCHECK command."""
    [healthcheck] = dockerfile_stages()[-1].all("HEALTHCHECK")
    probe = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert isinstance(probe, list)
    return [str(part) for part in probe]


def serve_read_only(python: str, data: Path, tmp: Path, uid: int | None = None) -> None:
    """Migrate, serve, register, pass the image's health check and drain, all on a read-only root."""
    environ = container_environment(data, tmp)
    base = [python, "-m", "py_app"]
    run = functools.partial(
        subprocess.run, cwd=data, env=environ, capture_output=True, text=True, timeout=120, check=False
    )
    refused = run(read_only_root([python, "-c", f"open({str(ROOT / 'ro-probe')!r}, 'w')"], data, tmp, uid))
    assert "Read-only file system" in refused.stderr, "the harness must make the root read-only"
    migrated = run(read_only_root([*base, "migrate"], data, tmp, uid))
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stdout
    log = tmp.parent / f"serve-{uid}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            read_only_root([*base, "serve"], data, tmp, uid),
            cwd=data,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, int(environ["ARCANA_HTTP_PORT"]), int(environ["ARCANA_GRPC_PORT"]), log)
    try:
        server.wait_ready()
        body = {"username": "ro_user", "email": "ro@example.com", "password": "correct horse battery"}
        answer = httpx.post(f"{server.http}/api/v1/auth/register", json=body, timeout=30)
        assert answer.status_code == 201, answer.text
        probe = run(healthcheck_probe())
        assert probe.returncode == 0, probe.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_SECONDS) == 0, server.output()[-3000:]
    finally:
        server.stop()
    assert (data / "arcana.db").exists()

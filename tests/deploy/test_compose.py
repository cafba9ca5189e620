"""deploy/compose/monolithic.yaml, checked without a Docker engine against the settings, the CLI and the image."""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml

from py_app.entrypoints.drain import KILL_MARGIN
from tests.deploy.support import (
    DEPLOY,
    PLACEHOLDER,
    ROOT,
    SECRET_WORDS,
    cli_has,
    dockerfile_stages,
    image_environment,
    settings_for,
    unknown_arcana,
)

pytestmark = pytest.mark.req("SRS-203")
COMPOSE = DEPLOY / "compose" / "monolithic.yaml"
ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
ARCANA_SERVICES = {"migrate": None, "arcana": "edge", "worker": "worker"}  # service -> the role it serves
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def example_env() -> dict[str, str]:
    lines = [line for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}, filled from the .env example."""
    if isinstance(value, str):

        def fill(match: re.Match[str]) -> str:
            name, expression = match.group(1), match.group(0)
            if name in env:
                return env[name]
            assert ":-" in expression, f"{expression}: not in {ENV_EXAMPLE.name} and no default"
            return expression.split(":-", 1)[1].rstrip("}")

        return INTERPOLATION.sub(fill, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return interpolate(document, example_env())  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: the image's environment, then the service's."""
    image = {key: value for key, value in image_environment().items() if key.startswith("ARCANA_")}
    return {**image, **{key: str(value) for key, value in service.get("environment", {}).items()}}


def test_the_services_start_in_order_and_the_database_and_redis_are_checked_first() -> None:
    services = compose()["services"]
    assert set(services) == {"mariadb", "redis", "migrate", "arcana", "worker"}
    assert services["mariadb"]["healthcheck"]["test"][1] == "healthcheck.sh"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["migrate"]["depends_on"] == {"mariadb": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("arcana", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["arcana"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    for service in services.values():
        image = service["image"]
        assert re.fullmatch(r"[a-z0-9./-]+:\d[\w.-]*", image), f"{image}: an exact version, never latest"


def test_every_arcana_container_runs_a_real_command_and_role_with_valid_settings() -> None:
    services = compose()["services"]
    for name, role in ARCANA_SERVICES.items():
        service = services[name]
        [command] = service["command"]
        assert cli_has(command), f"{name}: `python -m py_app {command}` does not exist"
        env = environment(service)
        assert unknown_arcana(env) == [], name
        settings = settings_for(env)  # raises, naming the variable, as the container would at start
        assert settings.env == "production"
        assert settings.effective_database_url.startswith("mysql+asyncmy://arcana:")
        assert settings.redis_url == "redis://redis:6379/0"
        if role is not None:
            assert command == "serve"
            assert settings.role == role
    # Exactly one kind of process runs the background jobs: the worker.
    assert settings_for(environment(services["arcana"])).jobs is False
    assert settings_for(environment(services["worker"])).jobs is True


def test_published_ports_reach_the_ports_the_service_listens_on() -> None:
    arcana = compose()["services"]["arcana"]
    settings = settings_for(environment(arcana))
    targets = [int(mapping.rsplit(":", 1)[1]) for mapping in arcana["ports"]]
    assert targets == [settings.http_port, settings.grpc_port]
    assert "ports" not in compose()["services"]["worker"], "the worker serves nothing"


def test_containers_are_read_only_unprivileged_and_write_only_their_volume_and_tmpfs() -> None:
    services = compose()["services"]
    [user] = dockerfile_stages()[-1].all("USER")
    data_dir = image_environment()["ARCANA_DATA_DIR"]
    for name in ARCANA_SERVICES:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["user"] == user, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["tmpfs"] == [image_environment()["TMPDIR"]], name
        assert [volume.split(":", 1)[1] for volume in service["volumes"]] == [data_dir], name
    grace = settings_for(environment(services["arcana"])).shutdown_grace
    for name in ("arcana", "worker"):
        assert int(services[name]["stop_grace_period"].rstrip("s")) > grace + KILL_MARGIN, name


def test_the_build_is_the_repository_dockerfile_and_the_tag_is_this_version() -> None:
    build = compose()["services"]["arcana"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert compose()["services"]["arcana"]["image"] == f"arcana:{version}"


def test_secrets_come_only_from_the_uncommitted_env_file() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for service in raw["services"].values():
        for name, value in service.get("environment", {}).items():
            if SECRET_WORDS.search(name) or name == "ARCANA_DATABASE_URL":
                assert "${" in str(value), f"{name} is written into the compose file"
    secrets = {name: value for name, value in example_env().items() if SECRET_WORDS.search(name)}
    assert secrets
    assert all(PLACEHOLDER in value for value in secrets.values())
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(ENV_EXAMPLE.with_name(".env"))], cwd=ROOT, check=False, timeout=30
    )
    assert ignored.returncode == 0, "deploy/compose/.env must be ignored by git"

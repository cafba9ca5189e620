from __future__ import annotations

from pathlib import Path

import pytest

from py_app.config import SettingsError, load_settings, resolve_jwt_secret, unknown_variables

pytestmark = pytest.mark.req("SRS-002")


def test_defaults_give_a_development_service_on_sqlite_under_var() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.effective_database_url == "sqlite+aiosqlite:///var/arcana.db"
    assert (settings.http_host, settings.http_port, settings.grpc_port) == ("127.0.0.1", 8000, 50051)
    assert settings.workers == 1
    assert settings.redis_url is None


def test_values_are_read_from_prefixed_variables_and_converted() -> None:
    settings = load_settings(
        {
            "ARCANA_HTTP_PORT": "9001",
            "ARCANA_WORKERS": "2",
            "ARCANA_REDIS_URL": "redis://127.0.0.1:6379/3",
            "ARCANA_DATABASE_URL": "mysql+asyncmy://root@127.0.0.1:3306/test",
            "ARCANA_GRPC_REFLECTION": "false",
        }
    )
    assert settings.http_port == 9001
    assert settings.workers == 2
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert settings.effective_database_url.startswith("mysql+asyncmy://")
    assert settings.reflection_enabled is False


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ARCANA_HTTP_PORT", "eighty", "ARCANA_HTTP_PORT: expected `int`"),
        ("ARCANA_HTTP_PORT", "70000", "ARCANA_HTTP_PORT: expected `int` <= 65535"),
        ("ARCANA_WORKERS", "0", "ARCANA_WORKERS: expected `int` >= 1"),
        ("ARCANA_DB_TIMEOUT", "0", "ARCANA_DB_TIMEOUT: expected `float` > 0.0"),
        ("ARCANA_DB_TIMEOUT", "soon", "ARCANA_DB_TIMEOUT: expected `float`"),
        ("ARCANA_ENV", "staging", "ARCANA_ENV: invalid enum value 'staging'"),
        ("ARCANA_DATABASE_URL", "postgresql://x/y", "ARCANA_DATABASE_URL must be a sqlite:// or mysql:// URL"),
        ("ARCANA_JWT_SECRET", "short", "ARCANA_JWT_SECRET must be at least 32 bytes"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.req("SRS-003")
def test_unknown_prefixed_variables_are_named_with_a_suggestion() -> None:
    warnings = unknown_variables({"ARCANA_HTTP_PROT": "1", "ARCANA_HTTP_PORT": "2", "HOME": "/root"})
    assert warnings == ["unknown setting ARCANA_HTTP_PROT is ignored (did you mean ARCANA_HTTP_PORT?)"]
    assert unknown_variables({"ARCANA_ADMIN_PASSWORD": "x"}) == []


@pytest.mark.req("SRS-004")
def test_production_refuses_to_start_without_a_key() -> None:
    with pytest.raises(SettingsError, match="ARCANA_JWT_SECRET is required when ARCANA_ENV=production"):
        load_settings({"ARCANA_ENV": "production"})


@pytest.mark.req("SRS-004")
def test_production_refuses_a_key_under_256_bits() -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        load_settings({"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "x" * 31})
    settings = load_settings({"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "k" * 32})
    assert resolve_jwt_secret(settings) == b"k" * 32


@pytest.mark.req("SRS-004")
def test_development_generates_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    settings = load_settings({"ARCANA_DATA_DIR": str(tmp_path / "var")})
    first = resolve_jwt_secret(settings)
    assert len(first) >= 32
    assert resolve_jwt_secret(settings) == first
    key_file = tmp_path / "var" / "jwt_secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    other = load_settings({"ARCANA_DATA_DIR": str(tmp_path / "elsewhere")})
    assert resolve_jwt_secret(other) != first


@pytest.mark.req("SRS-004")
def test_the_secret_never_shows_in_the_settings_repr() -> None:
    settings = load_settings({"ARCANA_JWT_SECRET": "s3cr3t-" * 8})
    assert "s3cr3t" not in repr(settings)
    assert "jwt_secret='***'" in repr(settings) or "jwt_secret=***" in repr(settings)


@pytest.mark.req("SRS-104")
def test_rate_limits_cannot_be_switched_off_in_production_and_limits_must_parse() -> None:
    base = {"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "x" * 40}
    with pytest.raises(SettingsError, match="ARCANA_RATE_LIMITS=off"):
        load_settings({**base, "ARCANA_RATE_LIMITS": "off"})
    assert not load_settings({"ARCANA_RATE_LIMITS": "off"}).rate_limits
    for bad in ("5", "5/0", "five/60", "5/60,"):
        with pytest.raises(SettingsError, match="ARCANA_LIMIT_LOGIN_ACCOUNT"):
            load_settings({"ARCANA_LIMIT_LOGIN_ACCOUNT": bad})
    with pytest.raises(SettingsError, match="ARCANA_TRUSTED_PROXIES"):
        load_settings({"ARCANA_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"})


@pytest.mark.req("SRS-165")
def test_rest_and_grpc_on_one_port_is_a_configuration_error() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"ARCANA_GRPC_PORT": "8000"})
    assert str(caught.value) == "ARCANA_GRPC_PORT must differ from ARCANA_HTTP_PORT: REST and gRPC listen apart"
    assert load_settings({"ARCANA_GRPC_PORT": "8000", "ARCANA_ROLE": "grpc"}).grpc_port == 8000  # no REST there

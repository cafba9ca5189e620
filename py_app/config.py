"""Settings: one frozen Struct read from ``ARCANA_*`` environment variables and validated at start.

Every field maps to ``ARCANA_<FIELD>`` in upper case. Values arrive as strings and are converted by
msgspec (``strict=False``), so a bad value fails at start with one line naming the variable.
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

PREFIX = "ARCANA_"
MIN_SECRET_BYTES = 32  # 256 bits, RFC 7518 §3.2 for HS256
# Variables read by commands rather than by the service; known, so they draw no warning.
COMMAND_VARIABLES = frozenset({"ARCANA_ADMIN_PASSWORD"})

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveSeconds = Annotated[int, msgspec.Meta(ge=1)]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message is one line naming the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The service's configuration. Defaults give a working development service on SQLite."""

    env: Literal["development", "production"] = "development"
    role: Literal["edge", "grpc", "worker"] = "edge"  # what this process serves (bootstrap.runner)
    data_dir: str = "./var"
    database_url: str = ""  # empty means a SQLite file under data_dir
    redis_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: Port = 8000
    grpc_host: str = "127.0.0.1"
    grpc_port: Port = 50051
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    db_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0  # seconds one database operation may take
    jwt_secret: str | None = None
    jwt_issuer: str = "arcana"
    jwt_audience: str = "arcana"
    access_token_ttl: PositiveSeconds = 900
    refresh_idle_ttl: PositiveSeconds = 7 * 24 * 3600
    refresh_absolute_ttl: PositiveSeconds = 30 * 24 * 3600
    refresh_reuse_grace: Annotated[int, msgspec.Meta(ge=0, le=60)] = 10
    session_cache_ttl: Annotated[float, msgspec.Meta(ge=0, le=60)] = 5.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace: Annotated[float, msgspec.Meta(ge=0, le=300)] = 10.0
    grpc_reflection: bool | None = None  # None: on in development, off in production

    def __post_init__(self) -> None:
        if self.env == "production" and not self.jwt_secret:
            raise SettingsError("ARCANA_JWT_SECRET is required when ARCANA_ENV=production")
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"ARCANA_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (256 bits)")
        if self.database_url and not self.database_url.startswith(("sqlite", "mysql", "mariadb")):
            raise SettingsError("ARCANA_DATABASE_URL must be a sqlite:// or mysql:// URL")
        if self.role == "edge" and self.http_port == self.grpc_port and _overlap(self.http_host, self.grpc_host):
            raise SettingsError("ARCANA_GRPC_PORT must differ from ARCANA_HTTP_PORT: REST and gRPC listen apart")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'arcana.db'}"

    @property
    def reflection_enabled(self) -> bool:
        return self.env == "development" if self.grpc_reflection is None else self.grpc_reflection

    def __repr__(self) -> str:  # never print the secret
        fields = ", ".join(
            f"{name}={'***' if name == 'jwt_secret' and value else value!r}"
            for name, value in msgspec.structs.asdict(self).items()
        )
        return f"Settings({fields})"


def _overlap(first: str, second: str) -> bool:
    wildcards = {"", "0.0.0.0", "::"}  # noqa: S104 - names, not a bind
    return first == second or first in wildcards or second in wildcards


def known_variables() -> frozenset[str]:
    return frozenset(PREFIX + name.upper() for name in Settings.__struct_fields__) | COMMAND_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for ``ARCANA_`` variables that no setting reads (typos show instead of being ignored)."""
    known = known_variables()
    warnings = []
    for name in sorted(key for key in environ if key.startswith(PREFIX) and key not in known):
        guess = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        warnings.append(f"unknown setting {name} is ignored{hint}")
    return warnings


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise SettingsError with a one-line message on a bad value."""
    environ = os.environ if environ is None else environ
    raw = {
        name: environ[PREFIX + name.upper()] for name in Settings.__struct_fields__ if PREFIX + name.upper() in environ
    }
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_one_line(str(exc))) from None


def _one_line(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.http_port`"; name the variable instead.
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message.splitlines()[0]
    variable = PREFIX + where.rstrip("`").split("[")[0].upper()
    return f"{variable}: {text[0].lower()}{text[1:]}"


def resolve_jwt_secret(settings: Settings) -> bytes:
    """The signing secret: configured, or in development generated once and kept under data_dir."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    if settings.env == "production":  # unreachable through load_settings; kept as a guard
        raise SettingsError("ARCANA_JWT_SECRET is required when ARCANA_ENV=production")
    path = Path(settings.data_dir) / "jwt_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write; the loser reads the winner's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip().encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise SettingsError(f"{path} holds a key shorter than 256 bits; delete it to generate a new one") from None
        return secret
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip().encode()

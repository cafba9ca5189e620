"""Settings: one frozen Struct read from ``ARCANA_*`` environment variables and validated at start.

Every field maps to ``ARCANA_<FIELD>`` in upper case. Values arrive as strings and are converted by
msgspec (``strict=False``), so a bad value fails at start with one line naming the variable.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from py_app.infra.keys import write_once
from py_app.infra.targets import TargetError, channel_target

PREFIX = "ARCANA_"
MIN_SECRET_BYTES = 32  # 256 bits, RFC 7518 §3.2 for HS256
# Variables read by commands rather than by the service; known, so they draw no warning.
COMMAND_VARIABLES = frozenset({"ARCANA_ADMIN_PASSWORD"})

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveSeconds = Annotated[int, msgspec.Meta(ge=1)]
# Switches read as words an operator would type; msgspec alone reads only true/false/1/0.
SWITCH = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
SWITCHES = ("public_directory", "api_docs", "jobs", "require_verified_email", "rate_limits")
# Rate limits: "N/SECONDS", several joined by commas (REFERENCE.md defaults).
LIMITS = {
    "limit_login_account": "5/900",
    "limit_login_address": "20/60",
    "limit_register_address": "5/3600",
    "limit_forgot_account": "1/60,5/3600",
    "limit_forgot_address": "20/3600",
    "limit_resend_account": "1/60,5/3600",
    "limit_resend_address": "20/3600",
    "limit_refresh_session": "60/60",
}
LIMIT_FORMAT = re.compile(r"\d+/\d+(,\d+/\d+)*")
# The roles each deployment mode has (bootstrap.runner maps a mode and role to its runner).
MODE_ROLES: dict[str, tuple[str, ...]] = {
    "monolithic": ("edge", "grpc", "worker"),
    "layered": ("edge", "service", "repository"),
    "microservices": ("edge", "auth", "users"),
}
# The internal services a process calls, by mode and role (the settings that name their addresses).
TARGETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("layered", "edge"): ("service_target",),
    ("layered", "service"): ("repository_target",),
    ("microservices", "edge"): ("auth_target", "users_target"),
    ("microservices", "auth"): ("users_target",),
    ("microservices", "users"): ("auth_target",),
}
TARGET_SETTINGS = ("service_target", "repository_target", "auth_target", "users_target")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message is one line naming the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The service's configuration. Defaults give a working development service on SQLite."""

    env: Literal["development", "production"] = "development"
    # How the processes of the deployment split the work, and what this one serves (bootstrap.runner).
    mode: Literal["monolithic", "layered", "microservices"] = "monolithic"
    role: Literal["edge", "grpc", "worker", "service", "repository", "auth", "users"] = "edge"
    # The internal gRPC addresses of the other processes (TARGETS says who needs which): host:port,
    # dns:///name:port or ip:port,ip:port,... (infra.targets), balanced round-robin. Layered: the service and
    # repository tiers; microservices: the auth and users services.
    service_target: str | None = None
    repository_target: str | None = None
    auth_target: str | None = None
    users_target: str | None = None
    internal_timeout: Annotated[float, msgspec.Meta(gt=0, le=120)] = 15.0  # an internal call with no caller deadline
    # Layered mode: the secret every process of the topology signs and checks its service tokens with
    # (infra.service_auth); development: made once under data_dir; production: required.
    internal_secret: str | None = None
    data_dir: str = "./var"
    database_url: str = ""  # empty means a SQLite file under data_dir
    redis_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: Port = 8000
    grpc_host: str = "127.0.0.1"
    grpc_port: Port = 50051
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    # The management listener for GET /metrics (Prometheus text); None (unset or "off"): no listener and
    # nothing recorded. Never the public port.
    metrics_host: str = "127.0.0.1"
    metrics_port: Port | None = None
    db_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0  # seconds one database operation may take
    jwt_secret: str | None = None
    # Signing keys (README "Signing keys and rotation"). HS256 signs with jwt_secret; EdDSA with a key ring
    # kept in jwt_keys_dir (development: data_dir/keys, made once; production: required, never made).
    jwt_algorithm: Literal["HS256", "EdDSA"] = "HS256"
    jwt_keys_dir: str | None = None
    jwt_keys_check_interval: Annotated[float, msgspec.Meta(ge=0.1, le=60)] = 5.0
    jwks_max_age: Annotated[int, msgspec.Meta(ge=60, le=3600)] = 600
    jwt_issuer: str = "arcana"
    jwt_audience: str = "arcana"
    access_token_ttl: PositiveSeconds = 900
    refresh_idle_ttl: PositiveSeconds = 7 * 24 * 3600
    refresh_absolute_ttl: PositiveSeconds = 30 * 24 * 3600
    refresh_reuse_grace: Annotated[int, msgspec.Meta(ge=0, le=60)] = 10
    session_cache_ttl: Annotated[float, msgspec.Meta(ge=0, le=60)] = 5.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] | None = None  # None: console in development, json in production
    otel_endpoint: str | None = None  # OTLP/HTTP collector, e.g. http://collector:4318; unset: no tracing
    shutdown_grace: Annotated[float, msgspec.Meta(ge=0, le=300)] = 10.0
    grpc_reflection: bool | None = None  # None: on in development, off in production
    public_directory: bool = False  # the unauthenticated ReqRes-compatible directory (/api/public/users)
    api_docs: bool | None = None  # the /schema docs pages; None: on in development, off in production
    cors_origins: str = ""  # comma-separated origins allowed to call the REST API from a browser; none by default
    smtp_url: str | None = None  # smtp://user:pass@host:587?starttls=true or smtps://host:465; unset: mail waits
    mail_from: str = "Arcana <no-reply@localhost>"
    reset_link: str = ""  # e.g. https://app.example.com/reset?token={token}: added to reset mails
    verify_link: str = ""  # e.g. https://app.example.com/verify?token={token}: added to verification mails
    audit_retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 400
    jobs: bool = True  # this serving process also runs the background jobs (off where a worker role runs them)
    require_verified_email: bool = False  # unverified accounts may only verify, resend, read me and log out
    rate_limits: bool = True  # off only for load tests; refused in production
    trusted_proxies: str = ""  # comma-separated addresses or networks whose X-Forwarded-For is believed
    redis_prefix: str = "arcana:"  # every Redis key starts with this
    limit_login_account: str = LIMITS["limit_login_account"]  # failures per account, then a lock (1, 5, 15 min)
    limit_login_address: str = LIMITS["limit_login_address"]  # failures per client address
    limit_register_address: str = LIMITS["limit_register_address"]
    limit_forgot_account: str = LIMITS["limit_forgot_account"]
    limit_forgot_address: str = LIMITS["limit_forgot_address"]
    limit_resend_account: str = LIMITS["limit_resend_account"]
    limit_resend_address: str = LIMITS["limit_resend_address"]
    limit_refresh_session: str = LIMITS["limit_refresh_session"]

    def __post_init__(self) -> None:
        self._check_topology()
        self._check_keys()
        self._check_limits()
        self._check_addresses()

    def _check_topology(self) -> None:
        roles = MODE_ROLES[self.mode]
        if self.role not in roles:
            raise SettingsError(
                f"ARCANA_ROLE={self.role} is not a role of ARCANA_MODE={self.mode} (its roles: {', '.join(roles)})"
            )
        for target in TARGETS.get((self.mode, self.role), ()):
            if not getattr(self, target):
                raise SettingsError(
                    f"ARCANA_{target.upper()} is required for ARCANA_ROLE={self.role} in {self.mode} mode"
                )
        for name in TARGET_SETTINGS:
            value = getattr(self, name)
            if value:
                try:
                    channel_target(value)
                except TargetError as exc:
                    raise SettingsError(f"ARCANA_{name.upper()}: {exc}") from None

    def _check_keys(self) -> None:
        if self.env == "production" and not self.jwt_secret:
            raise SettingsError("ARCANA_JWT_SECRET is required when ARCANA_ENV=production")
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"ARCANA_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (256 bits)")
        if self.jwt_algorithm == "EdDSA" and self.env == "production" and not self.jwt_keys_dir:
            raise SettingsError(
                "ARCANA_JWT_KEYS_DIR is required when ARCANA_ENV=production and ARCANA_JWT_ALGORITHM=EdDSA"
            )
        if self.jwt_keys_dir and self.jwt_algorithm != "EdDSA":
            raise SettingsError("ARCANA_JWT_KEYS_DIR is read only with ARCANA_JWT_ALGORITHM=EdDSA")
        if self.env == "production" and self.mode != "monolithic" and not self.internal_secret:
            raise SettingsError(f"ARCANA_INTERNAL_SECRET is required when ARCANA_ENV=production in {self.mode} mode")
        if self.internal_secret is not None and len(self.internal_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"ARCANA_INTERNAL_SECRET must be at least {MIN_SECRET_BYTES} bytes (256 bits)")

    def _check_limits(self) -> None:
        if self.env == "production" and not self.rate_limits:
            raise SettingsError("ARCANA_RATE_LIMITS=off is for load tests; it is refused when ARCANA_ENV=production")
        for name in LIMITS:
            if not LIMIT_FORMAT.fullmatch(getattr(self, name)) or "/0" in getattr(self, name):
                raise SettingsError(f"ARCANA_{name.upper()} must be N/SECONDS, several joined by commas (e.g. 5/900)")

    def _check_addresses(self) -> None:
        if self.database_url and not self.database_url.startswith(("sqlite", "mysql", "mariadb")):
            raise SettingsError("ARCANA_DATABASE_URL must be a sqlite:// or mysql:// URL")
        try:
            self.trusted_networks  # noqa: B018 - parse once at start, to fail with one line
        except ValueError as exc:
            raise SettingsError(f"ARCANA_TRUSTED_PROXIES: {exc}") from None
        if self.otel_endpoint is not None and not self.otel_endpoint.startswith(("http://", "https://")):
            raise SettingsError("ARCANA_OTEL_ENDPOINT must be an http:// or https:// URL (OTLP over HTTP)")
        if self.smtp_url is not None and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("ARCANA_SMTP_URL must be an smtp:// or smtps:// URL")
        for name, link in (("ARCANA_RESET_LINK", self.reset_link), ("ARCANA_VERIFY_LINK", self.verify_link)):
            if link and "{token}" not in link:
                raise SettingsError(f"{name} must contain {{token}}, where the token goes")
        for origin in self.cors_origin_list:
            if not _is_origin(origin):
                raise SettingsError(
                    f"ARCANA_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no path), nor *"
                )
        if self.role == "edge" and self.http_port == self.grpc_port and _overlap(self.http_host, self.grpc_host):
            raise SettingsError("ARCANA_GRPC_PORT must differ from ARCANA_HTTP_PORT: REST and gRPC listen apart")
        public = [(self.grpc_host, self.grpc_port)] + (
            [(self.http_host, self.http_port)] if self.role == "edge" else []
        )
        if self.metrics_port is not None and any(
            port == self.metrics_port and _overlap(host, self.metrics_host) for host, port in public
        ):
            raise SettingsError("ARCANA_METRICS_PORT must differ from the public ports: metrics are never served there")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'arcana.db'}"

    @property
    def effective_jwt_keys_dir(self) -> Path:
        return Path(self.jwt_keys_dir) if self.jwt_keys_dir else Path(self.data_dir) / "keys"

    @property
    def reflection_enabled(self) -> bool:
        return self.env == "development" if self.grpc_reflection is None else self.grpc_reflection

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env == "production" else "console"

    @property
    def api_docs_enabled(self) -> bool:
        return self.env == "development" if self.api_docs is None else self.api_docs

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        # Browsers send the scheme and host in lower case; compare the way they send them.
        return tuple(origin.strip().lower() for origin in self.cors_origins.split(",") if origin.strip())

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False) for item in self.trusted_proxies.split(",") if item.strip()
        )

    def __repr__(self) -> str:  # never print a secret (the signing keys, a mail server's password)
        fields = ", ".join(
            f"{name}={'***' if name in ('jwt_secret', 'internal_secret', 'smtp_url') and value else value!r}"
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
    raw: dict[str, object] = {
        name: environ[PREFIX + name.upper()] for name in Settings.__struct_fields__ if PREFIX + name.upper() in environ
    }
    if str(raw.get("metrics_port", "")).strip().lower() in ("", "off"):
        raw.pop("metrics_port", None)  # unset or off: no metrics listener
    for name in SWITCHES:
        if name in raw:
            raw[name] = _switch(name, str(raw[name]))
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_one_line(str(exc))) from None


def _switch(name: str, value: str) -> bool:
    try:
        return SWITCH[value.strip().lower()]
    except KeyError:
        raise SettingsError(f"{PREFIX}{name.upper()}: expected on or off, got {value!r}") from None


def _is_origin(origin: str) -> bool:
    """``*``, or exactly what a browser sends in ``Origin``: scheme, host and optional port, nothing else."""
    if origin == "*":
        return True
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and origin == f"{parts.scheme}://{parts.netloc}"
        and not (parts.username or parts.password)
    )


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
    # Complete before it appears: of processes starting at once, the losers read the winner's whole key.
    secret = write_once(path, (secrets.token_urlsafe(48) + "\n").encode()).strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"{path} holds a key shorter than 256 bits; delete it to generate a new one")
    return secret


def resolve_internal_secret(settings: Settings) -> bytes:
    """The service-token secret of the layered mode: configured, or in development made once under data_dir
    (every process ``up`` starts shares the data directory, so they share the secret with no set-up)."""
    if settings.internal_secret:
        return settings.internal_secret.encode()
    if settings.env == "production":  # unreachable through load_settings in layered mode; kept as a guard
        raise SettingsError("ARCANA_INTERNAL_SECRET is required when ARCANA_ENV=production in layered mode")
    path = Path(settings.data_dir) / "internal_secret"
    secret = write_once(path, (secrets.token_urlsafe(48) + "\n").encode()).strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"{path} holds a secret shorter than 256 bits; delete it to generate a new one")
    return secret

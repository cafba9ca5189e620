"""Command-line interface: `python -m py_app {serve,migrate,create-admin,rotate-keys}`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from py_app import __version__
from py_app.config import Settings, SettingsError, load_settings, unknown_variables
from py_app.core.errors import DomainError, InvalidInput, Unavailable
from py_app.infra import keys
from py_app.infra.logs import configure_logging
from py_app.users.models import User

logger = logging.getLogger("arcana.cli")


def _parser() -> argparse.ArgumentParser:
    invoked = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog="python -m py_app" if invoked in ("__main__.py", "-c", "") else invoked,
        description="Arcana user and authentication service. Settings come from ARCANA_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"arcana {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="serve until Ctrl-C or SIGTERM (what is served depends on ARCANA_ROLE)",
        description="Run this process's role (ARCANA_ROLE): `edge` (default) serves REST "
        "(ARCANA_HTTP_HOST:ARCANA_HTTP_PORT) and gRPC (ARCANA_GRPC_HOST:ARCANA_GRPC_PORT), `grpc` serves gRPC only, "
        "`worker` runs background jobs; from ARCANA_WORKERS processes. With ARCANA_MODE=layered: `edge`, `service` "
        "(the use cases over internal gRPC) or `repository` (the store ports over internal gRPC); with "
        "ARCANA_MODE=microservices: `edge`, `auth` or `users` (each service over internal gRPC, with its own "
        "database). Run `migrate` first.",
    )
    topology = commands.add_parser(
        "up",
        help="start a whole topology here as processes (development, tests)",
        description="Start every process of a deployment mode (`python -m py_app serve` each, with its ARCANA_MODE, "
        "ARCANA_ROLE and ports), print each with its addresses, wait until all are ready, stop them all on Ctrl-C "
        "or SIGTERM. The first edge listens on ARCANA_HTTP_PORT/ARCANA_GRPC_PORT, the others on free ports, "
        "unless --base-port is given. Run `migrate` first (microservices: `up` migrates each service's database).",
    )
    topology.add_argument("--mode", choices=("monolithic", "layered", "microservices"), default="monolithic")
    topology.add_argument("--replicas", default="", metavar="ROLE=N,...", help="processes per role, e.g. edge=2")
    topology.add_argument(
        "--base-port", type=int, metavar="PORT", help="give the processes consecutive ports from PORT"
    )
    migrate = commands.add_parser(
        "migrate", help="apply database migrations", description="Upgrade ARCANA_DATABASE_URL's schema."
    )
    migrate.add_argument("--revision", default="head", help="upgrade to this revision (default: head)")
    migrate.add_argument(
        "--downgrade", metavar="REVISION", help="downgrade to REVISION instead (e.g. base): drops data, needs --yes"
    )
    migrate.add_argument("--yes", action="store_true", help="confirm a downgrade that drops tables or columns")
    migrate.add_argument("--current", action="store_true", help="only show the revision the database is at")
    admin = commands.add_parser(
        "create-admin",
        help="create an administrator account",
        description="Create an admin. The password comes from --password, else ARCANA_ADMIN_PASSWORD, else a prompt.",
    )
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="avoid on shared machines: it shows in the process list")
    _add_rotate_keys(commands)
    return parser


def _add_rotate_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = commands.add_parser(
        "rotate-keys",
        help="add a new EdDSA signing key, published before it signs (--list shows the ring)",
        description="Add a key to the EdDSA key ring in ARCANA_JWT_KEYS_DIR (development: $ARCANA_DATA_DIR/keys); "
        "the first run creates the ring. The new key is published in /.well-known/jwks.json at once and signs after "
        "--delay seconds (default: ARCANA_JWKS_MAX_AGE + 60, so every cached key set holds it first). The keys it "
        "replaces keep verifying until their last tokens have expired (ARCANA_ACCESS_TOKEN_TTL + 30 s leeway + "
        "ARCANA_JWT_KEYS_CHECK_INTERVAL after they stop signing), then retire: their tokens fail. Running servers "
        "follow the ring within ARCANA_JWT_KEYS_CHECK_INTERVAL seconds, without a restart.",
    )
    rotate.add_argument("--list", action="store_true", help="only show each key's id, state and times")
    when = rotate.add_mutually_exclusive_group()
    when.add_argument("--delay", type=int, metavar="SECONDS", help="seconds the new key is published before it signs")
    when.add_argument(
        "--now", action="store_true", help="sign with the new key at once (one process, and nothing caches the JWKS)"
    )
    rotate.add_argument(
        "--retire-previous",
        action="store_true",
        help="with --now: refuse the previous keys' tokens at once (a leaked key); clients must refresh",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"arcana: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.effective_log_format)
    # Alembic narrates at INFO; keep the command's output to its own one-line summary.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    for warning in unknown_variables(os.environ):
        logger.warning(warning)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate_command(settings, args)
    if args.command == "up":
        from py_app.entrypoints.up import up  # the runner loads only for this command

        return up(settings, args.mode, args.replicas, args.base_port)
    if args.command == "rotate-keys":
        return _rotate_keys(settings, args)
    return _create_admin(settings, args.username, args.email, args.password)


def _migrate_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.current:
        return _current(settings)
    if args.downgrade and not args.yes:
        print(
            f"arcana: downgrading to {args.downgrade} drops the tables and columns of later revisions, "
            "and their data; add --yes to confirm",
            file=sys.stderr,
        )
        return 2
    return _migrate(settings, args.revision, args.downgrade)


def _serve(settings: Settings) -> int:
    from py_app.bootstrap import runner  # the servers load only for this command

    try:
        return runner(settings)(settings)
    except (OSError, SettingsError) as exc:
        print(f"arcana: cannot serve: {exc}", file=sys.stderr)
        return 1


def _migrate(settings: Settings, revision: str, downgrade: str | None) -> int:
    from py_app.infra import migrations

    url = settings.effective_database_url
    try:
        if downgrade:
            migrations.downgrade(url, downgrade)
        else:
            migrations.upgrade(url, revision)
        current = migrations.run_current_revision(url)
    except Exception as exc:  # noqa: BLE001 - report any driver or Alembic failure as one line
        print(f"arcana: migration failed: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    print(f"database at revision {current or 'base'}")
    if current is not None and not _admin_exists(settings):
        print("no administrator yet: create one with `python -m py_app create-admin --username NAME --email EMAIL`")
    return 0


def _current(settings: Settings) -> int:
    from py_app.infra import migrations

    try:
        current = migrations.run_current_revision(settings.effective_database_url)
    except Exception as exc:  # noqa: BLE001 - report any driver failure as one line
        print(f"arcana: cannot read the revision: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    head = migrations.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `migrate`"
    print(f"database at revision {current or 'base'} ({state})")
    return 0


def _admin_exists(settings: Settings) -> bool:
    from py_app.bootstrap import admin_exists

    try:
        return asyncio.run(admin_exists(settings))
    except Unavailable:
        return True  # the hint is a courtesy: never fail a migration over it


def _create_admin(settings: Settings, username: str, email: str, password: str | None) -> int:
    password = password or os.environ.get("ARCANA_ADMIN_PASSWORD") or _prompt_password()
    if not password:
        print("arcana: a password is required", file=sys.stderr)
        return 2
    try:
        problem = _schema_problem(settings)
        user = None if problem else asyncio.run(_create_admin_async(settings, username, email, password))
    except (DomainError, SettingsError) as exc:
        return _admin_not_created(exc)
    if user is None:
        print(f"arcana: {problem}; has `migrate` been run?", file=sys.stderr)
        return 1
    print(f"created admin {user.username} ({user.id})")
    return 0


def _admin_not_created(exc: DomainError | SettingsError) -> int:
    """One line on why create-admin failed, and its exit code (2 for the operator's input)."""
    if isinstance(exc, InvalidInput):
        details = "; ".join(f"{error.field} {error.message}" for error in exc.errors)
        print(f"arcana: {exc.message} {details}".strip(), file=sys.stderr)
        return 2
    if isinstance(exc, Unavailable):
        cause = getattr(exc.__cause__, "orig", None) or exc.__cause__
        print(
            f"arcana: the database is unavailable ({type(cause).__name__}); is ARCANA_DATABASE_URL right?",
            file=sys.stderr,
        )
        return 1
    if isinstance(exc, SettingsError):  # e.g. production without its key ring
        print(f"arcana: {exc}", file=sys.stderr)
        return 2
    print(f"arcana: {exc.message}", file=sys.stderr)
    return 1


def _schema_problem(settings: Settings) -> str | None:
    from py_app.infra import migrations
    from py_app.infra.db import DATABASE_FAILURES, database_error

    try:
        return migrations.run_schema_problem(settings.effective_database_url)
    except DATABASE_FAILURES as exc:
        raise database_error(exc) from exc


async def _create_admin_async(settings: Settings, username: str, email: str, password: str) -> User:
    from py_app.bootstrap import account_cases

    async with account_cases(settings) as users:
        return await users.create_admin(username, email, password)


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        return ""
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        print("arcana: the passwords differ", file=sys.stderr)
        return ""
    return first


def _rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    problem = _rotate_keys_usage(settings, args)
    if problem:
        print(f"arcana: {problem}", file=sys.stderr)
        return 2
    store = keys.KeyRingStore(settings.effective_jwt_keys_dir)
    try:
        if args.list:
            _print_ring(store.path, store.load(), int(time.time()))
            return 0
        return _rotate(settings, store, args)
    except (keys.KeyRingError, OSError) as exc:
        print(f"arcana: {exc}" if args.list else f"arcana: cannot rotate the keys: {exc}", file=sys.stderr)
        return 1


def _rotate_keys_usage(settings: Settings, args: argparse.Namespace) -> str | None:
    if settings.jwt_algorithm != "EdDSA":
        return (
            "rotate-keys works on EdDSA key rings (ARCANA_JWT_ALGORITHM=EdDSA); "
            f"{settings.jwt_algorithm} signs with ARCANA_JWT_SECRET, which is never published"
        )
    if args.list and (args.delay is not None or args.now or args.retire_previous):
        return "--list only shows the ring; drop the other options"
    if args.retire_previous and not args.now:
        return "--retire-previous needs --now (a key must sign once the others retire)"
    if args.delay is not None and args.delay < 0:
        return "--delay must be 0 or more seconds"
    return None


def _rotate(settings: Settings, store: keys.KeyRingStore, args: argparse.Namespace) -> int:
    from py_app.infra.security import LEEWAY_SECONDS

    delay = 0 if args.now else settings.jwks_max_age + 60 if args.delay is None else args.delay
    # The last token of a replaced key: signed up to one check interval after the switch, valid ttl + leeway.
    verify_for = settings.access_token_ttl + LEEWAY_SECONDS + math.ceil(settings.jwt_keys_check_interval)
    now = int(time.time())
    added = keys.new_key(settings.jwt_algorithm, now, now + delay)

    def change(ring: keys.KeyRing | None) -> keys.KeyRing:
        if ring is None:  # nothing has been signed yet: the first key signs at once
            return keys.KeyRing(added.alg, (keys.RingKey(added.kid, added.alg, added.material, now, now),))
        return ring.rotated(added, now, verify_for=verify_for, retire_previous=args.retire_previous)

    before, after = store.update(change)
    if before is None:
        print(f"created the key ring {store.path} with key {added.kid} (signs now)")
        return 0
    kept = {key.kid for key in after.keys}
    when = "now" if delay == 0 else f"from {keys.iso(added.signs_from)} (in {delay} s)"
    print(f"added key {added.kid}: published now, signs {when}")
    for key in after.keys[:-1]:
        if args.retire_previous:
            print(f"retired key {key.kid}: its tokens are refused from now on")
        else:
            print(f"key {key.kid} verifies until {keys.iso(key.retires_at)}, then retires")
    for key in before.keys:
        if key.kid not in kept:
            print(f"removed retired key {key.kid}")
    if 0 < delay < settings.jwks_max_age:
        print(
            f"note: the delay is shorter than ARCANA_JWKS_MAX_AGE ({settings.jwks_max_age} s): clients holding an "
            "older cached key set may refuse the new key's tokens until it expires"
        )
    print(f"running servers follow the ring within {settings.jwt_keys_check_interval:g} s, without a restart")
    return 0


def _print_ring(path: Path, ring: keys.KeyRing, now: int) -> None:
    print(f"key ring {path}: {ring.alg}, {len(ring.keys)} key(s), now {keys.iso(now)}")
    rows = [("kid", "state", "created", "signs from", "retires")]
    rows += [
        (
            key.kid,
            ring.state(key, now).value,
            keys.iso(key.created_at),
            keys.iso(key.signs_from),
            keys.iso(key.retires_at),
        )
        for key in ring.keys
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

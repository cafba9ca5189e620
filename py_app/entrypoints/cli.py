"""Command-line interface: `python -m py_app {serve,migrate,create-admin}`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from py_app import __version__
from py_app.config import Settings, SettingsError, load_settings, unknown_variables
from py_app.core.errors import DomainError, InvalidInput, Unavailable
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
        "`worker` runs background jobs; from ARCANA_WORKERS processes. Run `migrate` first.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"arcana: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    # Alembic narrates at INFO; keep the command's output to its own one-line summary.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    for warning in unknown_variables(os.environ):
        logger.warning(warning)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
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
    return _create_admin(settings, args.username, args.email, args.password)


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
        user = asyncio.run(_create_admin_async(settings, username, email, password))
    except InvalidInput as exc:
        details = "; ".join(f"{error.field} {error.message}" for error in exc.errors)
        print(f"arcana: {exc.message} {details}".strip(), file=sys.stderr)
        return 2
    except Unavailable as exc:
        cause = getattr(exc.__cause__, "orig", None) or exc.__cause__
        print(f"arcana: database error ({type(cause).__name__}); has `migrate` been run?", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"arcana: {exc.message}", file=sys.stderr)
        return 1
    print(f"created admin {user.username} ({user.id})")
    return 0


async def _create_admin_async(settings: Settings, username: str, email: str, password: str) -> User:
    from py_app.bootstrap import build_edge

    async with build_edge(settings) as container:
        return await container.users.create_admin(username, email, password)


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        return ""
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        print("arcana: the passwords differ", file=sys.stderr)
        return ""
    return first

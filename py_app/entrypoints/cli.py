"""Command-line interface: `python -m py_app {serve,migrate,create-admin}`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence

from py_app import __version__
from py_app.config import Settings, SettingsError, load_settings, unknown_variables
from py_app.core.errors import DomainError, InvalidInput, Unavailable
from py_app.infra.logs import configure_logging
from py_app.users.models import User

logger = logging.getLogger("arcana.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m py_app",
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
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead (e.g. base)")
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
    return 0


def _create_admin(settings: Settings, username: str, email: str, password: str | None) -> int:
    password = password or os.environ.get("ARCANA_ADMIN_PASSWORD") or _prompt_password()
    if not password:
        print("arcana: a password is required", file=sys.stderr)
        return 2
    try:
        problem = _schema_problem(settings)
        if problem:
            print(f"arcana: {problem}; has `migrate` been run?", file=sys.stderr)
            return 1
        user = asyncio.run(_create_admin_async(settings, username, email, password))
    except InvalidInput as exc:
        details = "; ".join(f"{error.field} {error.message}" for error in exc.errors)
        print(f"arcana: {exc.message} {details}".strip(), file=sys.stderr)
        return 2
    except Unavailable as exc:
        cause = getattr(exc.__cause__, "orig", None) or exc.__cause__
        print(
            f"arcana: the database is unavailable ({type(cause).__name__}); is ARCANA_DATABASE_URL right?",
            file=sys.stderr,
        )
        return 1
    except DomainError as exc:
        print(f"arcana: {exc.message}", file=sys.stderr)
        return 1
    print(f"created admin {user.username} ({user.id})")
    return 0


def _schema_problem(settings: Settings) -> str | None:
    from py_app.infra import migrations
    from py_app.infra.db import DATABASE_FAILURES, database_error

    try:
        return migrations.run_schema_problem(settings.effective_database_url)
    except DATABASE_FAILURES as exc:
        raise database_error(exc) from exc


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

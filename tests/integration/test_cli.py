from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import argon2
import pytest

from py_app import __version__
from py_app.entrypoints import cli
from py_app.infra import migrations

PASS = "a long admin passphrase"

pytestmark = pytest.mark.req("SRS-010")


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ARCANA_")}
    environ.update({"ARCANA_DATA_DIR": str(tmp_path / "var"), **env})
    return subprocess.run(
        [sys.executable, "-m", "py_app", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["create-admin"]])
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m py_app")


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", ARCANA_HTTP_PORT="http")
    assert result.returncode == 2
    assert result.stderr.strip() == "arcana: configuration error: ARCANA_HTTP_PORT: expected `int`, got `str`"


@pytest.mark.req("SRS-003")
def test_an_unknown_variable_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", ARCANA_DATABSE_URL="sqlite:///x.db")
    assert result.returncode == 0
    assert "unknown setting ARCANA_DATABSE_URL is ignored (did you mean ARCANA_DATABASE_URL?)" in result.stderr


@pytest.mark.req("SRS-014")
def test_migrate_then_create_admin_stores_an_argon2id_hash(tmp_path: Path) -> None:
    migrated = run(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines()[0] == f"database at revision {migrations.head_revision()}"
    created = run(
        tmp_path,
        "create-admin",
        "--username",
        "root",
        "--email",
        "Root@Example.com",
        "--password",
        "a long admin passphrase",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin root (")
    assert "a long admin passphrase" not in created.stdout + created.stderr
    with sqlite3.connect(tmp_path / "var" / "arcana.db") as db:
        email, role, password_hash = db.execute("SELECT email, role, password_hash FROM users").fetchone()
    assert (email, role) == ("root@example.com", "admin")
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert argon2.PasswordHasher().verify(password_hash, "a long admin passphrase")


def test_create_admin_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    created = run(
        tmp_path,
        "create-admin",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        ARCANA_ADMIN_PASSWORD="from the environment",
    )
    assert created.returncode == 0, created.stderr
    again = run(
        tmp_path, "create-admin", "--username", "ops", "--email", "x@example.com", "--password", "another passphrase"
    )
    assert again.returncode == 1
    assert again.stderr.strip() == "arcana: A user with this username or email already exists."


def test_create_admin_without_any_password_source_fails_cleanly(tmp_path: Path) -> None:
    result = run(tmp_path, "create-admin", "--username", "ops", "--email", "ops@example.com")
    assert result.returncode == 2
    assert result.stderr.strip() == "arcana: a password is required"


def test_create_admin_rejects_a_weak_password_naming_the_field(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    result = run(tmp_path, "create-admin", "--username", "ops", "--email", "ops@example.com", "--password", "password1")
    assert result.returncode == 2
    assert "password is too common" in result.stderr


def test_create_admin_before_migrate_says_so(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "create-admin",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        "--password",
        "long enough passphrase",
    )
    assert result.returncode == 1
    assert "has `migrate` been run?" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_admin_prompts_twice_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARCANA_DATA_DIR", str(tmp_path / "var"))
    assert cli.main(["migrate"]) == 0
    answers = iter(["typed at the prompt", "typed at the prompt"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert cli.main(["create-admin", "--username", "tty", "--email", "tty@example.com"]) == 0
    assert "created admin tty" in capsys.readouterr().out


@pytest.mark.req("SRS-175")
def test_migrate_downgrade_asks_for_yes_before_dropping_data(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    refused = run(tmp_path, "migrate", "--downgrade", "base")
    assert refused.returncode == 2
    assert "add --yes to confirm" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    head = migrations.head_revision()
    assert run(tmp_path, "migrate", "--current").stdout.strip() == f"database at revision {head} (up to date)"
    result = run(tmp_path, "migrate", "--downgrade", "base", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database at revision base"
    behind = run(tmp_path, "migrate", "--current")
    assert behind.stdout.strip() == f"database at revision base (behind head {head}: run `migrate`)"


@pytest.mark.req("SRS-175")
def test_migrate_hints_at_create_admin_until_an_administrator_exists(tmp_path: Path) -> None:
    first = run(tmp_path, "migrate")
    assert first.stdout.splitlines()[-1].startswith(
        "no administrator yet: create one with `python -m py_app create-admin"
    )
    made = run(tmp_path, "create-admin", "--username", "root", "--email", "root@example.com", "--password", PASS)
    assert made.returncode == 0, made.stderr
    assert "no administrator" not in run(tmp_path, "migrate").stdout


@pytest.mark.req("SRS-175")
def test_the_arcana_command_is_the_cli() -> None:
    arcana = Path(sys.executable).parent / "arcana"
    done = subprocess.run([str(arcana), "--version"], capture_output=True, text=True, check=False, timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, f"arcana {__version__}")
    helped = subprocess.run([str(arcana), "--help"], capture_output=True, text=True, check=False, timeout=30)
    assert helped.stdout.startswith("usage: arcana ")


def test_migrate_against_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", ARCANA_DATABASE_URL="mysql+asyncmy://root@127.0.0.1:1/none")
    assert result.returncode == 1
    assert result.stderr.startswith("arcana: migration failed: OperationalError")
    assert len(result.stderr.strip().splitlines()) == 1

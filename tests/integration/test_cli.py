from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime
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


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["create-admin"], ["rotate-keys"]])
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


EDDSA = {"ARCANA_JWT_ALGORITHM": "EdDSA"}
KEY_ROW = re.compile(r"^(\S+)\s+(pending|active|verifying|retired)\s+(\S+)\s+(\S+)\s+(\S+)$")


def key_rows(listing: str) -> list[tuple[str, str, str]]:
    """(kid, state, retires) for each key row of `rotate-keys --list`."""
    rows = [KEY_ROW.match(line) for line in listing.splitlines()[2:]]
    return [(row[1], row[2], row[5]) for row in rows if row]


@pytest.mark.req("SRS-109")
def test_rotate_keys_creates_rotates_and_lists_the_ring(tmp_path: Path) -> None:
    missing = run(tmp_path, "rotate-keys", "--list", **EDDSA)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("ring.json: no key ring; create one with `python -m py_app rotate-keys`")
    created = run(tmp_path, "rotate-keys", **EDDSA)
    assert created.returncode == 0, created.stderr
    first = created.stdout.split(" with key ")[1].split()[0]
    assert created.stdout.startswith(f"created the key ring {tmp_path / 'var' / 'keys' / 'ring.json'}")

    rotated = run(tmp_path, "rotate-keys", **EDDSA, ARCANA_ACCESS_TOKEN_TTL="600", ARCANA_JWKS_MAX_AGE="300")
    assert rotated.returncode == 0, rotated.stderr
    lines = rotated.stdout.splitlines()
    assert re.fullmatch(r"added key (\S+): published now, signs from \S+Z \(in 360 s\)", lines[0]), lines
    second = lines[0].split()[2].rstrip(":")
    assert re.fullmatch(rf"key {first} verifies until \S+Z, then retires", lines[1]), lines
    assert lines[-1] == "running servers follow the ring within 5 s, without a restart"

    listing = run(tmp_path, "rotate-keys", "--list", **EDDSA)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].startswith(
        f"key ring {tmp_path / 'var' / 'keys' / 'ring.json'}: EdDSA, 2 key"
    )
    (old, old_state, old_retires), (new, new_state, new_retires) = key_rows(listing.stdout)
    assert (old, old_state, new, new_state, new_retires) == (first, "active", second, "pending", "-")
    ring = json.loads((tmp_path / "var" / "keys" / "ring.json").read_text())
    signs_from, retires = (
        datetime.fromisoformat(ring["keys"][n][field]) for n, field in ((1, "signs_from"), (0, "retires_at"))
    )
    assert (retires - signs_from).total_seconds() == 600 + 30 + 5  # ttl + leeway + one check interval
    assert old_retires == ring["keys"][0]["retires_at"]

    again = run(tmp_path, "rotate-keys", **EDDSA)
    assert again.returncode == 1
    assert again.stderr.strip().startswith(f"arcana: cannot rotate the keys: key {second} already waits to sign from")
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.req("SRS-109")
def test_rotate_keys_now_and_retire_previous(tmp_path: Path) -> None:
    assert run(tmp_path, "rotate-keys", **EDDSA).returncode == 0
    now = run(tmp_path, "rotate-keys", "--now", **EDDSA)
    assert now.returncode == 0, now.stderr
    assert now.stdout.splitlines()[0].endswith(": published now, signs now")
    retired = run(tmp_path, "rotate-keys", "--now", "--retire-previous", **EDDSA)
    assert retired.returncode == 0, retired.stderr
    assert sum(line.startswith("retired key ") for line in retired.stdout.splitlines()) == 2
    states = [state for _, state, _ in key_rows(run(tmp_path, "rotate-keys", "--list", **EDDSA).stdout)]
    assert states == ["retired", "retired", "active"]
    pruned = run(tmp_path, "rotate-keys", "--now", **EDDSA)
    assert sum(line.startswith("removed retired key ") for line in pruned.stdout.splitlines()) == 2


@pytest.mark.req("SRS-109")
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "arcana: rotate-keys works on EdDSA key rings (ARCANA_JWT_ALGORITHM=EdDSA); HS256 signs with"),
        (("--retire-previous",), EDDSA, "arcana: --retire-previous needs --now"),
        (("--list", "--now"), EDDSA, "arcana: --list only shows the ring"),
        (("--delay", "-1"), EDDSA, "arcana: --delay must be 0 or more seconds"),
    ],
)
def test_rotate_keys_refuses_what_it_cannot_do_in_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run(tmp_path, "rotate-keys", *args, **env)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "var" / "keys").exists()


@pytest.mark.req("SRS-108")
def test_production_without_its_key_ring_refuses_to_serve_in_one_line(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    production = {**EDDSA, "ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "p" * 48}
    unset = run(tmp_path, "serve", **production)
    assert unset.returncode == 2
    assert unset.stderr.strip() == (
        "arcana: configuration error: "
        "ARCANA_JWT_KEYS_DIR is required when ARCANA_ENV=production and ARCANA_JWT_ALGORITHM=EdDSA"
    )
    empty = run(tmp_path, "serve", **production, ARCANA_JWT_KEYS_DIR=str(keys_dir))
    assert empty.returncode == 1
    assert empty.stderr.strip() == (
        f"arcana: cannot serve: ARCANA_JWT_KEYS_DIR: {keys_dir}/ring.json: no key ring; "
        "create one with `python -m py_app rotate-keys`"
    )
    assert run(tmp_path, "migrate", **production, ARCANA_JWT_KEYS_DIR=str(keys_dir)).returncode == 0
    admin = run(
        tmp_path,
        "create-admin",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        "--password",
        PASS,
        **production,
        ARCANA_JWT_KEYS_DIR=str(keys_dir),
    )
    assert admin.returncode == 2
    assert admin.stderr.strip().startswith("arcana: ARCANA_JWT_KEYS_DIR: ")
    assert "Traceback" not in unset.stderr + empty.stderr + admin.stderr

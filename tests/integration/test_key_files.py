"""Key material on disk: made once, whole, mode 0600, even when processes start at the same moment; followed
by running processes as it rotates; required and checked in production."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from py_app.bootstrap import prepare_keys
from py_app.config import SettingsError, load_settings, resolve_jwt_secret
from py_app.infra.keys import KeyRing, KeyRingStore, KeyRingWatcher, RingKey, new_key
from py_app.infra.security import JwtAccessTokens

PRODUCTION = {"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": "p" * 48, "ARCANA_JWT_ALGORITHM": "EdDSA"}

ROUNDS = 25


def _start_at_once(base: str, environ: dict[str, str], barrier: Barrier, results: Any) -> None:
    """What each process does at start, ROUNDS times, each time in a fresh data directory, in step with the other."""
    for round_ in range(ROUNDS):
        settings = load_settings({**environ, "ARCANA_DATA_DIR": f"{base}/{round_}"})
        barrier.wait(timeout=30)
        try:
            if settings.jwt_algorithm == "EdDSA":
                prepare_keys(settings)
                ring = KeyRingStore(settings.effective_jwt_keys_dir).load()
                results.put((round_, "ring", ",".join(key.kid for key in ring.keys)))
            else:
                results.put((round_, "secret", resolve_jwt_secret(settings).decode()))
        except Exception as exc:  # noqa: BLE001 - the parent reports whatever went wrong
            results.put((round_, "error", f"{type(exc).__name__}: {exc}"))


def start_two_processes_at_once(tmp_path: Path, **environ: str) -> dict[int, list[tuple[str, str]]]:
    context = multiprocessing.get_context("spawn")  # a clean interpreter, like a second server process
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_start_at_once, args=(str(tmp_path), environ, barrier, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    seen: dict[int, list[tuple[str, str]]] = {}
    for _ in range(2 * ROUNDS):
        round_, kind, value = results.get(timeout=60)
        seen.setdefault(round_, []).append((kind, value))
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return seen


@pytest.mark.req("SRS-004")
def test_two_processes_starting_at_once_get_the_same_whole_development_secret(tmp_path: Path) -> None:
    seen = start_two_processes_at_once(tmp_path)
    for round_, answers in seen.items():
        assert [kind for kind, _ in answers] == ["secret", "secret"], (round_, answers)
        first, second = (value for _, value in answers)
        assert first == second, round_
        assert len(first) >= 32
        key_file = tmp_path / str(round_) / "jwt_secret"
        assert key_file.read_text().strip() == first
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert os.listdir(tmp_path / str(round_)) == ["jwt_secret"]  # no temporary file left behind


@pytest.mark.req("SRS-108", "SDD-108")
def test_two_processes_starting_at_once_get_the_same_one_key_ring(tmp_path: Path) -> None:
    seen = start_two_processes_at_once(tmp_path, ARCANA_JWT_ALGORITHM="EdDSA")
    for round_, answers in seen.items():
        assert [kind for kind, _ in answers] == ["ring", "ring"], (round_, answers)
        first, second = (value for _, value in answers)
        assert first == second, round_
        assert "," not in first  # one key: nobody wrote a second ring over the first
        keys_dir = tmp_path / str(round_) / "keys"
        assert keys_dir.stat().st_mode & 0o777 == 0o700
        assert (keys_dir / "ring.json").stat().st_mode & 0o777 == 0o600
        assert os.listdir(keys_dir) == ["ring.json"]


@pytest.mark.req("SRS-108")
def test_development_makes_the_ring_once_and_keeps_it(tmp_path: Path) -> None:
    settings = load_settings({"ARCANA_DATA_DIR": str(tmp_path / "var"), "ARCANA_JWT_ALGORITHM": "EdDSA"})
    prepare_keys(settings)
    ring = KeyRingStore(tmp_path / "var" / "keys").load()
    prepare_keys(settings)
    assert KeyRingStore(tmp_path / "var" / "keys").load() == ring
    assert ring.alg == "EdDSA"


@pytest.mark.req("SRS-108")
def test_production_needs_a_key_ring_directory_holding_a_ring(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ARCANA_JWT_KEYS_DIR is required when ARCANA_ENV=production"):
        load_settings(PRODUCTION)
    keys_dir = tmp_path / "keys"
    settings = load_settings({**PRODUCTION, "ARCANA_JWT_KEYS_DIR": str(keys_dir)})
    with pytest.raises(SettingsError) as missing:
        prepare_keys(settings)
    assert str(missing.value) == (
        f"ARCANA_JWT_KEYS_DIR: {keys_dir}/ring.json: no key ring; create one with `python -m py_app rotate-keys`"
    )
    assert not keys_dir.exists()  # production never makes keys of its own
    keys_dir.mkdir()
    (keys_dir / "ring.json").write_text('{"format": "arcana-key-ring/1", "keys": []}')
    with pytest.raises(SettingsError) as empty:
        prepare_keys(settings)
    assert str(empty.value) == f"ARCANA_JWT_KEYS_DIR: {keys_dir}/ring.json: the ring holds no key"
    with pytest.raises(SettingsError, match="ARCANA_JWT_KEYS_DIR is read only with ARCANA_JWT_ALGORITHM=EdDSA"):
        load_settings({**PRODUCTION, "ARCANA_JWT_ALGORITHM": "HS256", "ARCANA_JWT_KEYS_DIR": str(keys_dir)})


@pytest.mark.req("SRS-108")
def test_production_starts_from_a_ring_made_elsewhere_and_warns_when_others_can_read_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KeyRingStore(tmp_path / "keys")
    store.create(KeyRing("EdDSA", (new_key("EdDSA", int(time.time())),)))
    settings = load_settings({**PRODUCTION, "ARCANA_JWT_KEYS_DIR": str(store.directory)})
    prepare_keys(settings)
    assert "readable by other users" not in caplog.text
    store.path.chmod(0o644)  # as a Kubernetes secret volume mounts it by default
    with caplog.at_level(logging.WARNING, logger="arcana.keys"):
        prepare_keys(settings)
    assert "key ring is readable by other users" in caplog.text


def rotate(store: KeyRingStore, added: RingKey, now: int, verify_for: int) -> None:
    def change(ring: KeyRing | None) -> KeyRing:
        assert ring is not None
        return ring.rotated(added, now, verify_for=verify_for)

    store.update(change)


def watched(store: KeyRingStore, clock: list[float]) -> tuple[JwtAccessTokens, KeyRingWatcher]:
    ring = store.load()
    tokens = JwtAccessTokens(ring, issuer="arcana", audience="arcana", ttl=900, now=int(clock[0]))
    return tokens, KeyRingWatcher(store, tokens.use, ring=ring, interval=60, clock=lambda: clock[0])


def kids(tokens: JwtAccessTokens) -> set[str]:
    return {key["kid"] for key in json.loads(tokens.published().jwks)["keys"]}


@pytest.mark.req("SRS-109", "SDD-109")
def test_the_watcher_follows_the_file_and_the_clock(tmp_path: Path) -> None:
    now = int(time.time())
    clock = [float(now)]
    store = KeyRingStore(tmp_path / "keys")
    first = store.create(KeyRing("EdDSA", (new_key("EdDSA", now),)))
    tokens, watcher = watched(store, clock)
    assert watcher.check() is False  # nothing changed: no read, nothing applied
    added = new_key("EdDSA", now, now + 30)
    rotate(store, added, now, verify_for=100)
    assert watcher.check() is True
    assert kids(tokens) == {first.keys[0].kid, added.kid}
    assert tokens.kid == first.keys[0].kid  # published, not signing yet
    clock[0] = now + 30
    assert watcher.check() is True  # the file did not change; the clock made the new key active
    assert tokens.kid == added.kid
    clock[0] = now + 130
    assert watcher.check() is True
    assert kids(tokens) == {added.kid}
    assert watcher.check() is False


@pytest.mark.req("SDD-109")
def test_a_broken_ring_file_is_reported_once_and_the_last_good_ring_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [time.time()]
    store = KeyRingStore(tmp_path / "keys")
    good = store.create(KeyRing("EdDSA", (new_key("EdDSA", int(clock[0])),)))
    tokens, watcher = watched(store, clock)
    store.path.write_text("{ half a ring")
    with caplog.at_level(logging.ERROR, logger="arcana.keys"):
        assert watcher.check() is False
        assert watcher.check() is False
    assert caplog.text.count("key ring not applied") == 1
    assert tokens.kid == good.keys[0].kid
    store.path.unlink()
    assert watcher.check() is False
    assert tokens.kid == good.keys[0].kid


@pytest.mark.req("SDD-109")
def test_the_watcher_thread_applies_a_rotation_within_its_interval_and_stops_when_closed(tmp_path: Path) -> None:
    store = KeyRingStore(tmp_path / "keys")
    now = int(time.time())
    store.create(KeyRing("EdDSA", (new_key("EdDSA", now),)))
    ring = store.load()
    tokens = JwtAccessTokens(ring, issuer="arcana", audience="arcana", ttl=900)
    watcher = KeyRingWatcher(store, tokens.use, ring=ring, interval=0.05)
    watcher.start()
    try:
        added = new_key("EdDSA", now, now)
        rotate(store, added, now, verify_for=100)
        deadline = time.monotonic() + 5
        while tokens.kid != added.kid and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tokens.kid == added.kid
    finally:
        watcher.close()


@pytest.mark.req("SDD-108")
def test_a_rotation_keeps_the_mode_the_operator_gave_the_ring(tmp_path: Path) -> None:
    store = KeyRingStore(tmp_path / "keys")
    now = int(time.time())
    store.create(KeyRing("EdDSA", (new_key("EdDSA", now),)))
    store.path.chmod(0o640)  # readable by the service's group
    rotate(store, new_key("EdDSA", now, now), now, verify_for=1)
    assert store.path.stat().st_mode & 0o777 == 0o640
    assert len(store.load().keys) == 2
    assert sorted(os.listdir(store.directory)) == [".ring.lock", "ring.json"]

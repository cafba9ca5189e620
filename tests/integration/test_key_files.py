"""Key material on disk: made once, whole, mode 0600, even when several processes start at the same moment."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from py_app.config import load_settings, resolve_jwt_secret

ROUNDS = 25


def _start_at_once(base: str, environ: dict[str, str], barrier: Barrier, results: Any) -> None:
    """What each process does at start, ROUNDS times, each time in a fresh data directory, in step with the other."""
    for round_ in range(ROUNDS):
        settings = load_settings({**environ, "ARCANA_DATA_DIR": f"{base}/{round_}"})
        barrier.wait(timeout=30)
        try:
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

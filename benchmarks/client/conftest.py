"""The Python-client suite runs against servers the runner started; BENCH_STACK names their description."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import pytest


@cache
def stack() -> dict[str, Any]:
    path = os.environ.get("BENCH_STACK")
    if not path:
        return {"targets": [], "only": []}
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def target(name: str) -> dict[str, Any]:
    return next(entry for entry in stack()["targets"] if entry["name"] == name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    protocols = [p for p in ("rest", "grpc") if p in stack()["only"]] or ["rest", "grpc"]
    # Parameters stay small (names only): pytest-benchmark copies them into its JSON.
    cases = [
        (entry["name"], op, protocol) for entry in stack()["targets"] for op in entry["ops"] for protocol in protocols
    ]
    if not cases:
        skip = pytest.mark.skip(reason="run it with: python -m benchmarks.run --suite client")
        metafunc.parametrize("case", [pytest.param(None, marks=skip)])
        return
    metafunc.parametrize("case", cases, ids=["-".join(case) for case in cases])

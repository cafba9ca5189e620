"""The Python-client suite runs against servers the runner started; BENCH_STACK names their description."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


def _cases() -> list[tuple[dict[str, Any], str, str]]:
    path = os.environ.get("BENCH_STACK")
    if not path:
        return []
    with open(path, encoding="utf-8") as handle:
        stack = json.load(handle)
    protocols = [p for p in ("rest", "grpc") if p in stack.get("only", ())] or ["rest", "grpc"]
    return [(target, op, protocol) for target in stack["targets"] for op in target["ops"] for protocol in protocols]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    cases = _cases()
    if not cases:
        metafunc.parametrize(
            "case",
            [pytest.param(None, marks=pytest.mark.skip(reason="run it with: python -m benchmarks.run --suite client"))],
        )
        return
    ids = [f"{target['name']}-{op}-{protocol}" for target, op, protocol in cases]
    metafunc.parametrize("case", cases, ids=ids)

"""SRS-038: the hand-written stub matches the module's public surface (full check: mypy.stubtest)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from py_app import _rust_core as rc

STUB = Path(rc.__file__).with_name("_rust_core.pyi")


@pytest.mark.req("SRS-038")
def test_stub_all_matches_runtime() -> None:
    tree = ast.parse(STUB.read_text("utf-8"))
    assigned = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    )
    stub_all = ast.literal_eval(assigned)
    assert sorted(stub_all) == sorted(rc.__all__)
    for name in stub_all:
        assert hasattr(rc, name), name
    assert rc.version() == "0.1.0"

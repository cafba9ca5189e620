"""SRS-038: the hand-written stub matches the module's public surface (full check: mypy.stubtest).

SRS-013: the extension `make setup` built is the release build of this crate's version.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from py_app import _rust_core as rc

STUB = Path(rc.__file__).with_name("_rust_core.pyi")
CARGO_TOML = Path(__file__).resolve().parents[3] / "Cargo.toml"


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


@pytest.mark.req("SRS-013")
def test_module_reports_the_crate_version_and_a_release_build() -> None:
    crate_version = tomllib.loads(CARGO_TOML.read_text("utf-8"))["package"]["version"]
    assert rc.__version__ == rc.version() == crate_version
    assert "__version__" not in rc.__all__
    # `make setup` builds with `maturin develop --release`; a debug build here means the tests
    # (and anything benchmarked) ran against a build that is not the one the service ships.
    assert rc.BUILD_PROFILE == "release"

"""The image's build, run here without Docker: the builder stage's steps, then the runtime stage's install.

A release build of the Rust core takes minutes on a busy two-core machine, so this runs in
`make package-check` (ARCANA_PACKAGE_CHECK=1), not in every `make test`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.support import ROOT, copy_sources, dockerfile_stages, ignored, serve_read_only

UID = 10001  # the image's USER
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("ARCANA_PACKAGE_CHECK") != "1", reason="a release build: run it with `make package-check`"
    ),
]


def interpreter_for_others() -> str:
    """A Python 3.11 that the image's UID may run (a pyenv build under root's private home is not one)."""
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter behind this virtual environment
    for candidate in (base, shutil.which("python3.11", path="/usr/local/bin:/usr/bin")):
        if candidate and all(
            parent.stat().st_mode & 0o001 for parent in Path(candidate).resolve().parents if parent != Path("/")
        ):
            return candidate
    pytest.skip("no Python 3.11 that another user can run")


def size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the image's UID can read (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="arcana-package-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def build_context(destination: Path) -> Path:
    """What `docker build` would send and the builder stage copy: the COPY sources, less .dockerignore."""
    [builder] = [stage for stage in dockerfile_stages() if stage.name == "builder"]
    for source in copy_sources(builder):
        path = ROOT / source
        files = [path] if path.is_file() else sorted(item for item in path.rglob("*") if item.is_file())
        for item in files:
            relative = item.relative_to(ROOT)
            if not any(ignored(str(part)) for part in [relative, *relative.parents][:-1]):
                (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, destination / relative)
    return destination


def run(*argv: str | Path, cwd: Path = ROOT) -> str:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "VIRTUAL_ENV"))}
    # The crates already built for this checkout are reused; only the Rust core itself is rebuilt.
    environ.setdefault("CARGO_TARGET_DIR", str(ROOT / "target"))
    result = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=environ, capture_output=True, text=True, timeout=840, check=False
    )
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.req("SRS-207")
def test_the_wheel_builds_from_the_locks_and_the_runtime_install_alone_migrates_and_serves(shared_dir: Path) -> None:
    bin_dir = Path(sys.executable).parent
    wheels = shared_dir / "wheels"
    # The builder stage, in a copy of the build context: `maturin build --release --locked --out /wheels`.
    source = build_context(shared_dir / "src")
    assert not list(source.rglob("*.so")), "a developer's build output must not reach the build"
    run(bin_dir / "maturin", "build", "--release", "--locked", "--out", wheels, cwd=source)
    [wheel] = wheels.glob("arcana-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("py_app/_rust_core.") and name.endswith(".so") for name in names)
    assert "py_app/migrations/env.py" in names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "rust_core/"))]
    # The runtime stage: a venv without pip, exactly requirements.lock and the wheel, checked whole.
    venv = shared_dir / "venv"
    run(interpreter_for_others(), "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = bin_dir / "pip"
    run(pip, "--python", python, "install", "--no-deps", "-r", ROOT / "requirements.lock", wheel)
    run(pip, "--python", python, "check")
    installed = run(pip, "--python", python, "freeze")
    assert not [line for line in installed.lower().splitlines() if line.startswith(("maturin", "pytest", "ruff"))]
    data, tmp = shared_dir / "data", shared_dir / "tmp"
    data.mkdir()
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)
    os.chown(data, UID, UID)
    assert "python -m py_app" in run(python, "-m", "py_app", "--help", cwd=data)  # not the repository's copy
    serve_read_only(str(python), data, tmp, uid=UID)
    mib = 2**20
    print(f"\nwheel {wheel.name}: {wheel.stat().st_size / mib:.1f} MiB; installed venv {size(venv) / mib:.1f} MiB")

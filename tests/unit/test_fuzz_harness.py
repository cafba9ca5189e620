"""`make fuzz`'s wiring: every harness of `rust_core/src/fuzzing.rs` is a libFuzzer target with seeds, and
`tools/fuzz.sh` keeps a crashing input where `cargo test` replays it and fails the run (a stand-in `cargo`
plays libFuzzer finding a crash, so this runs in the suite without a fuzz build)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"


def harness_targets() -> list[str]:
    """The names in `fuzzing::TARGETS`, the list the replay test walks."""
    listed = re.search(r"TARGETS: \[&str; \d+\] = \[(.*?)\]", (ROOT / "rust_core/src/fuzzing.rs").read_text(), re.S)
    assert listed is not None
    return re.findall(r'"(\w+)"', listed[1])


TARGETS = harness_targets()
FAKE_CARGO = """#!/bin/sh
# cargo fuzz --version | build | run TARGET ...: the run of TARGET "finds" a crash, the others finish clean.
[ "$1" = fuzz ] || exit 3
case "$2" in
  --version|build) exit 0 ;;
  run) for arg; do case "$arg" in -artifact_prefix=*) prefix="${arg#-artifact_prefix=}" ;; esac; done
       if [ "$3" = "$CRASHING" ]; then
         printf 'boom' > "${prefix}crash-0123"; echo "==1== ERROR: libFuzzer: deadly signal"; exit 77
       fi
       echo "#42	DONE   cov: 7 ft: 9 corp: 1/1b exec/s: 42"; exit 0 ;;
esac
exit 3
"""


@pytest.mark.req("SRS-146")
def test_every_harness_is_a_fuzz_target_with_seeds_and_a_regression_folder() -> None:
    manifest = tomllib.loads((FUZZ / "Cargo.toml").read_text())
    bins = {entry["name"]: entry["path"] for entry in manifest["bin"]}
    assert sorted(bins) == sorted(TARGETS)
    assert "workspace" in manifest, "fuzz/ must be its own workspace, out of the extension's build"
    for target in TARGETS:
        source = (FUZZ / bins[target]).read_text()
        assert f"_rust_core::fuzzing::{target}(data)" in source, target
        assert [seed for seed in (FUZZ / "seeds" / target).iterdir() if seed.stat().st_size], target
        assert (FUZZ / "regressions" / target).is_dir(), target
    assert "tools/fuzz.sh" in (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\n(\t.*\n)*\tcargo test", (ROOT / "Makefile").read_text(), re.M), "make test must replay"


@pytest.mark.req("SRS-146", "SRS-147")
def test_a_crash_is_kept_as_a_regression_and_fails_the_run(tmp_path: Path) -> None:
    work = tmp_path / "fuzz"
    for target in TARGETS:
        (work / "seeds" / target).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cargo").write_text(FAKE_CARGO)
    (bin_dir / "cargo").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FUZZ_DIR": str(work), "FUZZ_SECONDS": "1", "CRASHING": "parse_phc"}
    run = subprocess.run(
        [str(ROOT / "tools/fuzz.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert (work / "regressions/parse_phc/crash-0123").read_bytes() == b"boom"
    assert "crashes in: parse_phc" in run.stderr
    assert "DONE" in run.stdout  # progress is shown
    assert not [path for path in (work / "regressions").rglob("*") if path.is_file() and "parse_phc" not in str(path)]
    clean = subprocess.run(
        [str(ROOT / "tools/fuzz.sh")],
        env={**env, "CRASHING": "none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert os.path.isdir(work / "corpus/verify_token")

#!/usr/bin/env bash
# `make fuzz`: build the coverage-guided targets of fuzz/ (cargo-fuzz, libFuzzer) and run each for
# FUZZ_SECONDS (default 60), starting from its committed seeds. libFuzzer prints its progress (execs,
# coverage, corpus) as it goes. A crash, leak or timeout stops that target; its input is copied into
# fuzz/regressions/<target>/, which `cargo test` replays (make test), and the run exits non-zero.
#
# The machine has the stable toolchain only: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz
# passes (sanitizer coverage, AddressSanitizer), as a nightly would.
set -uo pipefail
cd "${FUZZ_DIR:-$(dirname "$0")/../fuzz}"

SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-verify_token decode_header parse_phc verify_password}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  # Like `make bench` with its load generators: set up what the command needs (crates.io, a few minutes once).
  echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked) =="
  cargo install cargo-fuzz --locked --quiet || { echo "cannot install cargo-fuzz" >&2; exit 2; }
fi
echo "== building the fuzz targets (cargo fuzz build, AddressSanitizer) =="
cargo fuzz build || exit 2

failed=""
for target in $TARGETS; do
  echo "== $target: ${SECONDS_EACH}s =="
  mkdir -p "corpus/$target" "artifacts/$target" "regressions/$target"
  # The working corpus (ignored by git) grows between runs; the seeds are read-only inputs.
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" 2>&1 | tee "artifacts/$target.log" | grep --line-buffered -E \
    "^#[0-9]+.*(pulse|DONE)|INFO: seed corpus|stat::|ERROR|panicked|SUMMARY|Test unit written"
  status=${PIPESTATUS[0]}
  if [ "$status" -ne 0 ]; then
    for crash in "artifacts/$target"/*; do
      [ -f "$crash" ] && cp "$crash" "regressions/$target/" && echo "kept $crash in fuzz/regressions/$target/"
    done
    failed="$failed $target"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing found crashes in:$failed (inputs kept in fuzz/regressions/; cargo test replays them)" >&2
  exit 1
fi
echo "no crash in $SECONDS_EACH s per target"

# One front door. `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-stamp
DEV_STAMP := $(VENV)/.dev-stamp
RUST_STAMP := $(VENV)/.rust-stamp
RUST_SOURCES := Cargo.toml Cargo.lock $(shell find rust_core -type f 2>/dev/null)

.PHONY: help setup dev run test check package-check lint types rust-check proto proto-check bench bench-quick bench-scale bench-check bench-micro bench-tools clean soak fuzz

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Runtime dependencies and the build tool only: what serving needs (requirements.lock + maturin).
$(DEPS_STAMP): requirements.lock requirements-build.lock pyproject.toml
	@echo "== python environment ($(VENV), runtime) =="
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-build.lock
	@touch $@

# Tests, linters and benchmark tools on top (requirements-dev.lock).
$(DEV_STAMP): $(DEPS_STAMP) requirements-dev.lock
	@echo "== development tools =="
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $@

# The release build runs only when Rust sources or the Python environment changed. It installs the
# package in editable mode, which also gives the venv the `arcana` command.
$(RUST_STAMP): $(DEPS_STAMP) $(RUST_SOURCES)
	@echo "== rust extension (release) =="
	@VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet
	@$(PY) -c "from py_app import _rust_core; print('rust core', _rust_core.version())"
	@touch $@

setup: $(RUST_STAMP) ## create the venv, install the pinned runtime dependencies, build the Rust extension

dev: setup $(DEV_STAMP) ## setup, plus the pinned test and development tools

run: setup ## set up, migrate the database (SQLite under ./var by default) and serve REST :8000 + gRPC :50051
	@$(PY) -m py_app migrate
	@exec $(PY) -m py_app serve

# The suite mostly waits on the server processes it starts: three workers keep both cores busy (TEST_WORKERS=0
# runs it in this process, one test at a time). tests/conftest.py puts each module in a group of its own.
TEST_WORKERS ?= 3

test: dev ## set up (with the test tools), then run cargo test and the whole pytest suite with coverage and spec coverage
	cargo test --quiet
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --spec-check --cov=py_app --cov-report=term:skip-covered

soak: dev ## the soak for 2 minutes (64 clients, REST + gRPC, private MariaDB; the suite runs it 25 s) -> var/soak.json
	ARCANA_TEST_SOAK_SECONDS=$${ARCANA_TEST_SOAK_SECONDS:-120} $(PY) -m pytest tests/faults/test_soak.py -q -s -p no:cacheprovider

fuzz: ## coverage-guided fuzzing of the Rust token verifier and PHC parser (cargo-fuzz), FUZZ_SECONDS (60) per target
	tools/fuzz.sh

check: dev lint types rust-check proto-check ## ruff, mypy (strict), import contracts, rustfmt, clippy, stubs, protos

package-check: dev ## the image without Docker: hadolint, the deploy tests, and the builder's release build of the wheel into a fresh venv
	$(VENV)/bin/hadolint deploy/Dockerfile
	ARCANA_PACKAGE_CHECK=1 $(PY) -m pytest tests/deploy -p no:cacheprovider -s -q

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

types:
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest py_app._rust_core --allowlist rust_core/stubtest-allowlist.txt

rust-check:
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings
	cargo fmt --check --manifest-path fuzz/Cargo.toml
	cargo fmt --check --manifest-path benchmarks/varied-load/Cargo.toml
	cargo clippy --manifest-path benchmarks/varied-load/Cargo.toml --target-dir target/varied-load --quiet -- -D warnings

proto: $(DEV_STAMP) ## regenerate py_app/_proto from protos/
	$(PY) tools/gen_proto.py

proto-check:
	$(PY) tools/gen_proto.py --check

BENCH_APT := nghttp2-client wrk

# h2load and wrk come from Debian; installed when missing and we are root, else a one-line hint.
bench-tools: dev ## the load generators: h2load and wrk (apt), varied-load (benchmarks/varied-load, cargo)
	@missing=""; for tool in h2load wrk taskset; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== installing$$missing (apt-get install $(BENCH_APT)) =="; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_APT) >/dev/null; \
	  else echo "missing:$$missing; install them with: sudo apt-get install $(BENCH_APT)"; exit 1; fi; \
	fi
	@cargo build --release --locked --quiet --manifest-path benchmarks/varied-load/Cargo.toml --target-dir target/varied-load

bench: bench-tools ## every benchmark suite (micro, load, Python clients, profiles, the 2-minute soak) -> benchmarks/results/<date>/ (< 13 min)
	$(PY) -m benchmarks.run

bench-quick: bench-tools ## the same suites, SQLite only, c=16, one round (< 2 min)
	$(PY) -m benchmarks.run --quick

bench-scale: bench-tools ## one worker against two on both cores: point query, me, refresh, login (< 4 min)
	$(PY) -m benchmarks.run --scale

bench-check: dev ## fail when a ratio to its ceiling fell > 25% against the previous committed results
	$(PY) -m benchmarks.check

bench-micro: dev ## only the micro suite, writing benchmarks/micro/REPORT.md as before
	@mkdir -p var
	$(PY) -m pytest benchmarks/micro --benchmark-only -p no:cacheprovider --benchmark-json=var/bench-micro.json -o addopts=""
	$(PY) benchmarks/micro/report.py var/bench-micro.json

clean: ## remove the venv, build output and local data
	rm -rf $(VENV) target var .pytest_cache .mypy_cache .ruff_cache .coverage

# One front door. `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-stamp
RUST_STAMP := $(VENV)/.rust-stamp
RUST_SOURCES := Cargo.toml Cargo.lock $(shell find rust_core -type f 2>/dev/null)

.PHONY: help setup run test check lint types rust-check proto proto-check bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(DEPS_STAMP): requirements.lock pyproject.toml
	@echo "== python environment ($(VENV)) =="
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

# The release build runs only when Rust sources or the Python environment changed.
$(RUST_STAMP): $(DEPS_STAMP) $(RUST_SOURCES)
	@echo "== rust extension (release) =="
	@VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --skip-install --quiet
	@$(PY) -c "from py_app import _rust_core; print('rust core', _rust_core.version())"
	@touch $@

setup: $(RUST_STAMP) ## create the venv, install pinned dependencies, build the Rust extension

run: setup ## set up, migrate the database (SQLite under ./var by default) and serve REST :8000 + gRPC :50051
	@$(PY) -m py_app migrate
	@exec $(PY) -m py_app serve

test: setup ## set up, then run cargo test and the whole pytest suite with coverage and spec coverage
	cargo test --quiet
	$(PY) -m pytest --spec-check --cov=py_app --cov-report=term:skip-covered

check: setup lint types rust-check proto-check ## ruff, mypy (strict), import contracts, rustfmt, clippy, stubs, protos

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

proto: $(DEPS_STAMP) ## regenerate py_app/_proto from protos/
	$(PY) tools/gen_proto.py

proto-check:
	$(PY) tools/gen_proto.py --check

bench: setup ## run the micro benchmarks and write benchmarks/micro/REPORT.md
	@mkdir -p var
	$(PY) -m pytest benchmarks/micro --benchmark-only -p no:cacheprovider --benchmark-json=var/bench-micro.json -o addopts=""
	$(PY) benchmarks/micro/report.py var/bench-micro.json

clean: ## remove the venv, build output and local data
	rm -rf $(VENV) target var .pytest_cache .mypy_cache .ruff_cache .coverage

# The two commands of the README: `make run` (the main job) and `make test` (every test).
# Each does its own setup, idempotently: torch 2.11.0 in a cached virtual environment, the data, the build.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
SPEC ?= experiments/fashion-mnist.toml
RESULTS ?= results

.PHONY: run test build setup smoke bench bench-coordinator fmt lint

setup:
	@scripts/setup-torch.sh >/dev/null

build: setup
	@$(ENV) cargo build --release --quiet --bin iscp

run: build
	@scripts/setup-data.sh
	./target/release/iscp run $(SPEC) --results $(RESULTS)

smoke: build
	./target/release/iscp run experiments/smoke.toml --results $(RESULTS)

test: setup
	@$(ENV) export ISCP_PYREAD_PYTHON="$$(scripts/setup-pyread.sh)" && export ISCP_CHROMIUM="$$(scripts/setup-chromium.sh)" && cargo build --release --quiet --bin iscp && cargo test --release --workspace

bench: build
	./target/release/iscp bench

bench-coordinator: build
	./target/release/iscp bench-coordinator --units 1000,100000 --workers 1,8 --max-units 1,16

fmt:
	cargo fmt --all

lint: setup
	@$(ENV) cargo clippy --release --workspace --all-targets -- -D warnings
	@python3 scripts/check-cycles.py

# The two commands of the README:  `make demo`  and  `make test`.
# Every target installs what it needs first (idempotent, cached), so both work on a fresh machine.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export WEBAPP_SCALER_CACHE ?= $(HOME)/.cache/webapp-scaler

.PHONY: setup system-packages control-plane test unit lint bench demo clean

setup: $(STAMP)  ## virtualenv with the pinned dependencies

$(STAMP): pyproject.toml
	@echo "[setup] python virtualenv in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

system-packages:  ## Debian packages the tests and the demo use (skipped when present)
	@bash hack/install-system-packages.sh

control-plane:  ## build and cache etcd, kube-apiserver, kube-controller-manager, kubectl, helm
	@bash hack/build-control-plane.sh >/dev/null

test: setup system-packages control-plane lint  ## the whole test suite (what CI runs)
	@$(PY) -m pytest
	@bash hack/check-no-leaks.sh

unit: setup  ## the fast tests that need no control plane
	@$(PY) -m pytest tests/unit

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-logo --no-cache

bench: setup system-packages control-plane  ## every benchmark, full length; results and plots in docs/
	@$(PY) -m webapp_scaler.cli simulate --all-traces --out docs/bench
	@$(PY) benchmarks/reaction.py --trials 40 --json docs/bench/reaction.json
	@$(PY) -m session_agent.bench --duration 10 --rounds 3

demo: setup system-packages control-plane  ## the local demo stack
	@$(PY) -m webapp_scaler.cli demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

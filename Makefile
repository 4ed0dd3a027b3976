# The two commands of the README:  `make demo`  and  `make test`.
# Every target installs what it needs first (idempotent, cached), so both work on a fresh machine.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
export WEBAPP_SCALER_CACHE ?= $(HOME)/.cache/webapp-scaler

# uv, at the version pyproject.toml pins ([tool.uv] required-version), in a bootstrap virtualenv of its own
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
UV_HOME    := $(WEBAPP_SCALER_CACHE)/uv-$(UV_VERSION)
UV         := $(UV_HOME)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

PYPROJECTS := pyproject.toml operator/pyproject.toml sidecar/pyproject.toml devtools/pyproject.toml

.PHONY: setup lock system-packages control-plane test unit lint generate bench demo clean

setup: $(STAMP)  ## virtualenv: the three distributions (editable) and the dev group, exactly as uv.lock pins them

$(UV):
	@echo "[setup] uv $(UV_VERSION) in $(UV_HOME)"
	@test -n "$(UV_VERSION)" || { echo "no [tool.uv] required-version in pyproject.toml" >&2; exit 1; }
	@$(PYTHON) -m venv $(UV_HOME)
	@$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(PYPROJECTS) uv.lock | $(UV)
	@echo "[setup] python virtualenv in $(VENV)"
	@$(UV) sync --quiet --frozen --all-packages --python $(PYTHON)
	@touch $@

lock: | $(UV)  ## re-resolve uv.lock after a dependency change in any pyproject.toml
	@$(UV) lock

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

generate: setup  ## rewrite the generated files: docs/api-reference.md and the stand-in CRDs
	@$(PY) -m webapp_scaler_dev.generate.api_reference
	@$(PY) -m webapp_scaler_dev.generate.standin_crds

bench: setup system-packages control-plane  ## every benchmark, full length; results and plots in docs/
	@$(PY) -m webapp_scaler_dev.cli simulate --all-traces --out docs/bench
	@$(PY) benchmarks/reaction.py --trials 40 --json docs/bench/reaction.json
	@$(PY) benchmarks/agent_proxy.py --duration 10 --rounds 3

demo: setup system-packages control-plane  ## the local demo stack
	@$(PY) -m webapp_scaler_dev.cli demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

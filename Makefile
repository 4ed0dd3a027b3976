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

.PHONY: setup lock system-packages control-plane load-balancers go-tools test unit lint generate bench demo drain-matrix clean

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

load-balancers:  ## build and cache Traefik; copy the Gateway API CRDs (standard, experimental) into the cache
	@bash hack/build-load-balancers.sh >/dev/null

go-tools:  ## build and cache the Go harnesses of the status tests: kstatus (cli-utils) and lua-health (Argo CD's Lua)
	@bash hack/build-go-tools.sh >/dev/null

test: setup system-packages control-plane load-balancers go-tools lint  ## the whole test suite (what CI runs)
	@$(PY) -m pytest
	@bash hack/check-no-leaks.sh

unit: setup  ## the fast tests that need no control plane
	@$(PY) -m pytest tests/unit

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-logo --no-cache

generate: setup  ## rewrite the generated files: docs/api-reference.md, the stand-in CRDs, the chart's and manifests/base's copies
	@$(PY) -m webapp_scaler_dev.generate.api_reference
	@$(PY) -m webapp_scaler_dev.generate.standin_crds
	@$(PY) -m webapp_scaler_dev.generate.chart_files

bench: setup system-packages control-plane  ## every benchmark, full length; results and plots in docs/
	@$(PY) -m webapp_scaler_dev.cli simulate --all-traces --out docs/bench
	@$(PY) -m webapp_scaler_dev.cli simulate --all-traces --seeds 1 2 3 --arrivals random --arrivals even \
		--policy webapp-scaler --policy hpa-drain-tuned --summary docs/bench/matrix.json
	@$(PY) -m webapp_scaler_dev.cli simulate --all-traces --visits heavy --out docs/bench/heavy \
		--policy webapp-scaler --policy hpa --policy hpa-drain --policy hpa-drain-tuned --policy keda \
		--policy patent-sma --policy oracle-drain
	@$(PY) -m webapp_scaler_dev.cli simulate --synthetic flash --synthetic diurnal --seeds 1 2 3 \
		--arrivals random --arrivals even --summary docs/bench/synthetic.json
	@$(PY) -m webapp_scaler_dev.cli simulate --synthetic flash --synthetic diurnal --seeds 1 2 3 \
		--arrivals random --arrivals even --peak-vms 150 --summary docs/bench/synthetic-150.json
	@$(PY) benchmarks/reaction.py --trials 40 --json docs/bench/reaction.json
	@$(PY) benchmarks/agent_proxy.py --duration 4 --rounds 8 --json docs/bench/agent_proxy.json --plot docs/bench/agent_proxy.png

demo: setup system-packages control-plane  ## the local demo stack
	@$(PY) -m webapp_scaler_dev.cli demo

drain-matrix: setup system-packages control-plane load-balancers  ## every load balancer x drain mode; writes docs/load-balancers.md
	@$(PY) -m webapp_scaler_dev.cli drain-matrix --write docs/load-balancers.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

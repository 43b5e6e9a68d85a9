# Entry points (names relied upon by CI and docs): up, down, test, cluster, bench.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: up down cluster cluster-down cluster-status binaries venv test test-unit test-integration lint bench

## up: everything on this machine (today: the pinned binaries and the control plane).
up: cluster
	@echo "notebook-platform: control plane ready; kubeconfig at .local/kubeconfig"
	@echo "  export KUBECONFIG=$(CURDIR)/.local/kubeconfig; .local/bin/kubectl get --raw /readyz"

## down: stop everything `make up` started.
down: cluster-down

binaries:
	@hack/build.sh

cluster: binaries
	@hack/cluster.sh up

cluster-down:
	@hack/cluster.sh down

cluster-status:
	@hack/cluster.sh status

# The venv is rebuilt when pyproject.toml changes.
venv: .venv/.installed
.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q -U pip
	@$(PY) -m pip install -q -e '.[hub,dev]'
	@touch $@

## test: every test this machine can run (unit, then integration against the real apiserver).
test: venv binaries
	@$(PY) -m pytest -m unit -q $(PYTEST_ARGS)
	@$(PY) -m pytest -m "integration or e2e" -q $(PYTEST_ARGS)

test-unit: venv
	@$(PY) -m pytest -m unit -q $(PYTEST_ARGS)

test-integration: venv binaries
	@$(PY) -m pytest -m integration -q $(PYTEST_ARGS)

lint: venv
	@.venv/bin/ruff check webhook builder hub_config tests bench
	@.venv/bin/mypy

bench: venv cluster
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

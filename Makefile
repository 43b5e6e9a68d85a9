# Entry points (names relied upon by CI and docs): up, down, test, cluster, bench.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: up images down cluster cluster-down cluster-status binaries node node-binaries node-down node-status venv test test-unit test-integration lint bench

## up: everything on this machine: the pinned binaries, the control plane, the node, the project's images
## (only when their inputs change) and the chart; prints the hub URL and how to log in (hack/up.sh).
up: cluster node
	@hack/up.sh

## images: the project's images (webhook, builder, hub, proxy, notebook) built by Kaniko on the node.
images: node
	@hack/project-images.sh

## down: stop everything `make up` started (the node first, then the control plane).
down:
	@hack/node.sh down || echo "down: the node did not stop cleanly; stopping the control plane anyway" >&2
	@hack/cluster.sh down

binaries:
	@hack/build.sh

cluster: binaries
	@hack/cluster.sh up

cluster-down:
	@hack/cluster.sh down

cluster-status:
	@hack/cluster.sh status

## node: a real node on this machine (containerd, kubelet, kube-proxy, registry, CoreDNS, RWX storage).
node: cluster node-binaries
	@hack/node.sh up

node-binaries:
	@hack/build.sh node

node-down:
	@hack/node.sh down

node-status:
	@hack/node.sh status

# configurable-http-proxy (JupyterHub's proxy) from npm, pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The venv is rebuilt when pyproject.toml changes.
venv: .venv/.installed
.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q -U pip
	@$(PY) -m pip install -q -e '.[hub,dev]'
	@touch $@

## test: every test this machine can run: lint, unit, then `make up` and the integration and e2e tests.
test: venv node_modules/.installed binaries
	@.venv/bin/ruff check webhook builder hub_config tests bench
	@.venv/bin/mypy
	@$(PY) -m pytest -m unit -q $(PYTEST_ARGS)
	@# The platform first, outside pytest's per-test time limit: a cold `make up` builds five images.
	@$(MAKE) -s up
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

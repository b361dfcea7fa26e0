# Overseer's stable interface: `make up` (a newcomer's first command),
# `make test` (what CI runs), the cluster targets, `make bench`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: manifests help deps cluster-up cluster-down cluster-status images crds lint unit test chaos bench bench-cluster bench-sync bench-executions bench-throughput bench-api bench-archive bench-scale bench-cold up down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps: ## install Debian packages and the Python environment (.venv)
	@hack/install-deps.sh

cluster-up: deps ## build (cached) and start the local single-node cluster; last line: export KUBECONFIG=...
	@hack/cluster.sh up

cluster-down: ## stop the local cluster and remove its state, mounts and network rules
	@hack/cluster.sh down

cluster-status: ## say which cluster components run
	@hack/cluster.sh status

images: ## build the local images (operator, library, testbox, pause)
	@hack/build-images.sh >/dev/null

crds: deps ## regenerate the CRDs in charts/ and manifests/ from the Python model
	@$(PY) -m overseer.crd.render

manifests: deps ## render manifests/overseer.yaml from charts/overseer
	@hack/render-manifests.sh

lint: deps ## ruff, mypy --strict, import contracts (library: stdlib only), size limits, CRD and manifest drift
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy
	@# the tests that use the one fake client, so mypy checks the fake against KubeClient
	@.venv/bin/mypy $$(grep -rl --include='*.py' fake_kube tests)
	@.venv/bin/lint-imports
	@$(PY) hack/check_stdlib_only.py
	@# functions over 60 lines need a '# long because ...' beside them, modules over 400 on top
	@$(PY) hack/long-functions.py
	@$(PY) hack/long-modules.py
	@$(PY) -m overseer.crd.render --check
	@hack/render-manifests.sh --check

unit: deps ## the tests that need no cluster
	@.venv/bin/pytest --no-cluster -q

# The cluster tests mostly wait on pods: TEST_WORKERS pytest-xdist workers run them side
# by side (each test has its own namespace and operator). loadgroup keeps a module
# with a costly module fixture on one worker.
TEST_WORKERS ?= 4

test: deps lint ## everything: lint, unit, component and cluster tests (starts the local cluster if no KUBECONFIG)
	@.venv/bin/pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=25

chaos: deps ## the fault suite at full counts (< 15 min; stops the local API server and containerd): prints what each fault lost
	@.venv/bin/pytest -q --chaos -k "not slice" --timeout=900 \
		tests/component/test_half_open.py tests/e2e/test_chaos_kills.py \
		tests/e2e/test_chaos_node.py tests/e2e/test_chaos_outage.py tests/e2e/test_chart_install.py

bench: bench-cluster bench-sync bench-executions bench-api bench-archive ## print every benchmark's figures (asserts nothing)

bench-cluster: deps ## warm cluster-up time and the running cluster's memory (restarts the cluster)
	@bench/cluster.sh

bench-sync: deps ## time a 10,000-job repository sync on the local cluster (a few minutes)
	@$(PY) bench/sync.py

bench-executions: deps ## time 100 executions against 100 bare Jobs, and the output archive (a few minutes)
	@$(PY) bench/executions.py

bench-throughput: deps ## 1,000 executions and 1,000 bare Jobs created at 20/s: completions a minute, side by side (long)
	@$(PY) bench/executions.py --count 1000 --rate 20 --stream-mib 0 --timeout 3600

bench-api: deps ## the REST API: reads against a bare endpoint, pages, POST on the cluster, 200 MiB of stdout
	@$(PY) bench/api.py

bench-archive: deps ## the output archive: MiB/s to the S3 store, a local directory and a plain upload; 1 GiB per stream with RSS
	@$(PY) bench/archive.py

bench-scale: deps ## 10,000 jobs and 10,000 finished executions: operator RSS at start and restart, GET /jobs pages, no-op sync writes (about 10 minutes; not in make bench)
	@$(PY) bench/scale.py

bench-cold: deps ## also measure a cold Kubernetes build from empty Go caches (about 6 minutes on 2 cores)
	@bench/cluster.sh --cold

up: deps ## bring Overseer up on the local cluster (or KUBECONFIG's) and sync the example jobs
	@hack/up.sh

down: ## stop everything make up started: Overseer, the example git server, the local cluster
	@hack/down.sh
	@hack/cluster.sh down

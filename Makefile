# The few targets people look for. `make test` is the one test command (CI runs it too).
.PHONY: help up up-scale down logs test lint test-unit validate load load-headless e2e bench bench-stack bench-queries bench-series check dashboards slo

# preflight.py needs PyYAML: the project's venv has it; a plain python3 may too.
PREFLIGHT := $(shell command -v uv >/dev/null 2>&1 && echo "uv run python" || echo python3) scripts/preflight.py

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

up: ## check host ports, start the stack, print where everything is
	$(PREFLIGHT)
	docker compose up -d --build --wait
	$(PREFLIGHT) --urls

up-scale: ## the scale-out profile (Mimir, MinIO, HA Alertmanagers, relays on Postgres): deploy/scale-out/
	$(PREFLIGHT)
	$(PREFLIGHT) --compose-file deploy/scale-out/compose.yaml
	docker compose -f docker-compose.yml -f deploy/scale-out/compose.yaml up -d --build --wait
	$(PREFLIGHT) --urls
	$(PREFLIGHT) --compose-file deploy/scale-out/compose.yaml --urls

down: ## stop the stack (data volumes are kept; `docker compose down --volumes` drops them)
	docker compose down

logs: ## follow the stack's logs
	docker compose logs -f --tail=50

test: ## set up what is missing, lint, run every test that can run here
	scripts/test.sh

lint: ## set up what is missing and lint only
	scripts/test.sh --lint

test-unit: ## lint, then the fast tier only (no real processes, Postgres or Redis)
	scripts/test.sh -- -m "not integration and not e2e and not compose"

validate: ## every config check that needs no running stack, one summary (lookout validate)
	uv run lookout validate

load: ## start Locust against the running stack (web UI on http://127.0.0.1:8089)
	docker compose --profile load up -d locust
	@echo "Locust: http://127.0.0.1:$${LOCUST_PORT:-8089}"

# Bounds of `make load-headless` (override: make load-headless USERS=20 RUN_TIME=5m).
SHOP_URL ?= http://127.0.0.1:8000
USERS ?= 10
SPAWN_RATE ?= 2
RUN_TIME ?= 2m
load-headless: ## bounded Locust run against the running shop; exit 1 if a budget in tests/load/budgets.toml breaks
	uv run locust -f tests/load/locustfile.py --headless --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(RUN_TIME) --stop-timeout 10 --host $(SHOP_URL) --only-summary

e2e: ## the native stack end to end: load, every panel, every correlation, the chaos scenarios (~7 min)
	uv run pytest tests/test_e2e_stack.py tests/test_chaos.py tests/test_load.py -q

bench: ## the demo app's instrumentation overhead (prints the on/off throughput ratio)
	uv run python bench/demo_overhead.py

bench-stack: ## the native stack's start-up time and idle memory (Prometheus, Alertmanager, Loki, Tempo)
	uv run python bench/native_stack.py

bench-queries: ## every dashboard's PromQL over 24 h of backfilled data: recording rules vs raw (~4 min)
	uv run python bench/dashboard_queries.py

bench-series: ## memory per active series of a real Prometheus (docs/scaling.md; ~1 min)
	uv run python bench/prometheus_series.py

check: ## run every dashboard panel's queries against the running stack (data / empty / error)
	uv run lookout check

dashboards: ## regenerate grafana/dashboards/*.json from services/lookout (then commit them)
	uv run lookout dashboards build

slo: ## regenerate prometheus/rules/slo.yml and its promtool tests from slo/slos.yaml
	uv run lookout slo build

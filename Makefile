# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist processes; each gets its own freshly migrated database.
TEST_WORKERS ?= 2
export HOST PORT

.PHONY: run test install dev migrate openapi lint format typecheck check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

run: install ## migrate and serve on HOST:PORT with the worker inside (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/leadflow serve --worker --host $(HOST) --port $(PORT)

.PHONY: worker
worker: install ## a worker process alone (webhook deliveries), beside `leadflow serve`
	$(BIN)/leadflow worker

test: dev ## the whole suite (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

migrate: install
	$(BIN)/leadflow migrate

openapi: install ## regenerate openapi/openapi.json from the app
	$(BIN)/leadflow openapi --output openapi/openapi.json

lint: dev ## ruff check (the formatter is offered by `make format`, not enforced)
	$(BIN)/ruff check src tests migrations

format: dev
	$(BIN)/ruff format src tests migrations

typecheck: dev
	$(BIN)/mypy src

.PHONY: clients
clients: dev ## generated clients as tests: a Python client (openapi-python-client, own venv .venv-clients) and TypeScript types (openapi-typescript, openapi-fetch, tsc --strict) each run the core flow against a `leadflow serve` with a fresh database on CLIENTS_DATABASE (postgresql://postgres@127.0.0.1:5432)
	tests/clients/run

.PHONY: fuzz
fuzz: dev ## schemathesis against every operation of the live app, FUZZ_EXAMPLES (5) per operation and mode; fails on any finding (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/pytest -m fuzz -p no:randomly -n $(TEST_WORKERS) -q tests/test_schemathesis.py $(PYTEST_ARGS)

# What `make test-pgbouncer` runs through PgBouncer: the API's main resources, the read
# path, idempotency (advisory locks), the migration lock, the job worker (SKIP LOCKED
# claims). Not tests/webhooks: its backoff test allows 10 % around 5 s including the
# delivery's own round trips, which a loaded machine behind PgBouncer overran (5.54 s).
PGBOUNCER_TESTS ?= tests/leads tests/deals tests/conversion tests/deal_items tests/test_pgbouncer.py tests/test_idempotency.py tests/test_migration_lock.py tests/jobs

.PHONY: test-pgbouncer
test-pgbouncer: dev ## PGBOUNCER_TESTS through a PgBouncer in transaction mode in front of 127.0.0.1:5432, LEADFLOW_DB_PGBOUNCER=true (.ci/with-pgbouncer; installs Debian's pgbouncer when missing)
	.ci/with-pgbouncer $(BIN)/pytest -n $(TEST_WORKERS) -q $(PGBOUNCER_TESTS) $(PYTEST_ARGS)

.PHONY: reliability
reliability: dev ## fault tests: a throwaway PostgreSQL cluster, `leadflow serve` processes, two replicas behind HAProxy with a Redis of their own (Debian's haproxy, redis-server; not in `make test`)
	$(BIN)/pytest -m reliability -q tests/reliability $(PYTEST_ARGS)

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench-reports
bench-reports: install ## each report's p50 at 10,000 and 1,000,000 leads and their ratio (BENCH_ARGS="--reuse --explain": the last run's database, and the plans)
	$(BIN)/python -m bench.reports $(BENCH_ARGS)

.PHONY: bench-inbox
bench-inbox: install ## inbox first page vs deep page with 1,000,000 leads (own database on DATABASE_URL's server)
	$(BIN)/python -m bench.inbox $(BENCH_ARGS)

.PHONY: bench-conversion
bench-conversion: install ## lead to deal: singles at concurrency 8 vs bulk of 500 (own database on DATABASE_URL's server)
	$(BIN)/python -m bench.conversion $(BENCH_ARGS)

.PHONY: bench-board
bench-board: install ## pipeline board with 100,000 open deals; deal by id vs a raw asyncpg select
	$(BIN)/python -m bench.board $(BENCH_ARGS)

.PHONY: bench-capture
bench-capture: install ## signed captures/s at concurrency 16 vs a raw asyncpg insert endpoint
	$(BIN)/python -m bench.capture $(BENCH_ARGS)

.PHONY: bench-checkout
bench-checkout: install ## a pool checkout with pool_pre_ping vs the closed-connection check
	$(BIN)/python bench/pool_checkout.py $(BENCH_ARGS)

.PHONY: bench-webhooks
bench-webhooks: install ## POST /leads and conversion p50 with vs without a webhook subscription; deliveries/s of one worker
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

.PHONY: bench-instructions
bench-instructions: install ## instructions per request under valgrind's callgrind (same whatever the load; BENCH_ONLY=lead,deal,page,healthz)
	$(BIN)/python -m bench.instructions $(BENCH_ARGS)

.PHONY: bench-rules
bench-rules: install ## marking an activity done with 0 and with 50 enabled conversion rules
	$(BIN)/python -m bench.rules $(BENCH_ARGS)

.PHONY: bench-imports
bench-imports: install ## import of 50,000 rows (person + organization + lead each) by a worker vs COPY of the same rows (own database on DATABASE_URL's server; BENCH_ARGS=--silent, --rows N)
	$(BIN)/python -m bench.imports $(BENCH_ARGS)

.PHONY: bench-fields
bench-fields: install ## custom fields: an equality filter at 10,000 vs 1,000,000 leads; a deal write with 0 vs 10 formulas (BENCH_ARGS=--quick: 1,000 / 10,000 leads)
	$(BIN)/python -m bench.fields $(BENCH_ARGS)

.PHONY: soak
soak: install ## SOAK_SECONDS (600) of mixed traffic at SOAK_RPS (60) against `leadflow serve`: fails on any 5xx, RSS or DB connection growth
	$(BIN)/python bench/soak.py $(BENCH_ARGS)

.PHONY: bench
bench: install ## leadflow vs its raw-asyncpg ceiling at 1,000,000 leads, with wrk: one table (BENCH_SECONDS, BENCH_QUICK=1)
	$(BIN)/python -m bench.suite

# lakelens: `make demo` and `make test` set everything up from a bare machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Most tests wait on subprocesses, servers and sockets rather than
# on the CPU: four workers on a 2-core machine run the suite in about 6 minutes, against 14.5
# serially. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 4
LINT_PATHS := $(wildcard src tests bench)

.PHONY: demo test lint format bench bench-postgres bench-queries test-tools clean

$(BIN)/python:
	bash scripts/bootstrap-venv.sh "$(PYTHON)" "$(VENV)"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/lakelens demo
	@echo
	@echo "The lakelens command is in $(VENV)/bin: run '. $(VENV)/bin/activate' to use it, then"
	@echo "'lakelens serve' and open http://127.0.0.1:8765/ for the dashboard."

test-tools:
	bash scripts/install-test-tools.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
test: $(VENV)/.installed-dev test-tools lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/sdk_overhead.py
	$(BIN)/python bench/alert_latency.py

# The same benches against the local PostgreSQL (a new database per run, or the bench store's
# cached copy), beside SQLite, with PostgreSQL ÷ SQLite per figure.
BENCH_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench-postgres: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	-$(BIN)/python bench/ingest.py --stores sqlite,postgres --database-url $(BENCH_POSTGRES)
	-$(BIN)/python bench/queries.py --quick --database-url $(BENCH_POSTGRES)
	-$(BIN)/python bench/pages.py --database-url $(BENCH_POSTGRES)
	-$(BIN)/python bench/alert_evaluation.py --store .bench-data/quick/home/lakelens.db \
		--database-url $(BENCH_POSTGRES)
	-$(BIN)/python bench/alert_latency.py --quick --database-url $(BENCH_POSTGRES)

# The 1M-materialization store takes about 2 minutes and 4 GB to build (cached in .bench-data/).
bench-queries: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/queries.py

clean:
	rm -rf $(VENV) .lakelens .pytest_cache .mypy_cache .ruff_cache test-artifacts

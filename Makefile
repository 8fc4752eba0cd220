# aiotutorial: `make run` serves the app, `make test` runs the whole suite. Both set up what
# they need (virtualenv, packages, the embedded PostgreSQL, migrations) and are idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-min lint format db db-stop db-status psql clean help

help:
	@echo "make run        serve http://127.0.0.1:6543 (gunicorn + AsyncGunicornWorker)"
	@echo "make test       the whole suite plus ruff lint and format checks"
	@echo "make db         start the embedded PostgreSQL (unless DATABASE_URL) and migrate"
	@echo "make db-stop    stop the embedded PostgreSQL"
	@echo "make psql       a psql shell on the application database"

$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[testing]'
	@touch $(STAMP)

db: $(STAMP)
	$(BIN)/python -m aiotutorial.pgcluster ensure
	$(BIN)/python -m aiotutorial.migrate upgrade

run: db
	$(BIN)/gunicorn --paste development.ini

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: db lint
	@scripts/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite on the lowest versions setup.py allows (requirements/minimum.txt), in .venv-min.
# Playwright pins its own greenlet, so the browser tests are left to `make test`.
MIN_VENV := .venv-min
test-min: db
	@test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off \
		-c requirements/minimum.txt -e . 'pytest>=8,<10'
	$(MIN_VENV)/bin/python -m pip check
	$(MIN_VENV)/bin/python -m pytest --ignore=tests/test_browser.py \
		--ignore=tests/test_game_browser.py $(PYTEST_ARGS)

db-stop:
	@test -x $(BIN)/python && $(BIN)/python -m aiotutorial.pgcluster stop || true

db-status: $(STAMP)
	$(BIN)/python -m aiotutorial.pgcluster status

psql: db
	$(BIN)/python -m aiotutorial.pgcluster psql

clean: db-stop
	rm -rf $(VENV) $(MIN_VENV) *.egg-info .pytest_cache .ruff_cache

# make bench [QUICK=1]: the benchmarks of bench/run.py (servers on loopback, one table,
# bench/results/latest.json and PNG plots). Installs Debian's wrk (as root) and the bench extra.
.PHONY: bench
bench: db
	@test $(VENV)/.bench-installed -nt setup.py || { \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]' && \
		touch $(VENV)/.bench-installed; }
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else echo "wrk is missing (not root, so not installed): HTTP load by bench/httpload.py"; fi; }
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); \
		$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)

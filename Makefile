# aiotutorial: `make run` serves the app, `make test` runs the whole suite. Both set up what
# they need (virtualenv, packages, the embedded PostgreSQL, migrations) and are idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint format db db-stop db-status psql clean help

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

db-stop:
	@test -x $(BIN)/python && $(BIN)/python -m aiotutorial.pgcluster stop || true

db-status: $(STAMP)
	$(BIN)/python -m aiotutorial.pgcluster status

psql: db
	$(BIN)/python -m aiotutorial.pgcluster psql

clean: db-stop
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache

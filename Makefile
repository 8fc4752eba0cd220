# aiotutorial: `make run` serves the app, `make test` runs the whole suite. Both set up what
# they need (virtualenv, packages, the embedded PostgreSQL, migrations) and are idempotent.
# `make help` lists the targets: each documented by a `## text` comment on its rule's line.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What serving needs (`pip install -e .`: make run, make db); then the test and lint tools
# (`.[testing]`: make test, make lint), which `make run` does not wait for or install.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.testing-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-min lint format db db-stop db-status psql clean help

help: ## this list
	@sed -n 's/^\([a-zA-Z0-9_.-]*\):.*## \(.*\)$$/make \1\t\2/p' $(MAKEFILE_LIST) | expand -t 16

# The first time: a virtualenv, then the package and what it needs to serve (about 20 s, most
# of it pip's downloads, whose progress pip shows). Later: nothing, until setup.py changes.
$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
		$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
			echo "make: $(PYTHON) cannot make virtualenvs (no ensurepip): Debian's python3-venv is needed"; \
			test "$$(id -u)" = 0 || { echo "make: as root: apt-get install python3-venv"; exit 1; }; \
			echo "make: installing python3-venv with apt-get (about 10 s)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }; \
		echo "make: creating the virtualenv $(VENV) (a few seconds)"; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@echo "make: upgrading pip in $(VENV) (a few seconds)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "make: installing aiotutorial and what it needs to serve into $(VENV) with pip" \
		"(about 20 s the first time, seconds after that)"
	@start=$$(date +%s) && \
		$(BIN)/python -m pip install --disable-pip-version-check -e . && \
		echo "make: $(VENV) is ready to serve ($$(( $$(date +%s) - start )) s)"
	@touch $(STAMP)

# The test and lint tools (pytest, ruff, mypy, coverage, Playwright), for make test and make
# lint only: Playwright alone is a download of about 50 MB that serving never uses.
$(TEST_STAMP): $(STAMP)
	@echo "make: installing the test and lint tools (pytest, ruff, mypy, coverage, playwright)" \
		"into $(VENV) with pip (about 30 s the first time, seconds after that)"
	@start=$$(date +%s) && \
		$(BIN)/python -m pip install --disable-pip-version-check -e '.[testing]' && \
		echo "make: the test and lint tools are ready ($$(( $$(date +%s) - start )) s)"
	@touch $(TEST_STAMP)

# pgcluster never installs anything itself: it uses the machine's PostgreSQL, or the one in the
# pgserver wheel (setup.py's extra) when that is installed. So with neither, install the extra.
db: $(STAMP) ## start the embedded PostgreSQL (unless DATABASE_URL is set) and migrate
	@test -n "$$DATABASE_URL" || { $(BIN)/python -m aiotutorial.pgcluster bindir >/dev/null 2>&1; \
		test $$? != 3 || { \
			echo "make: no PostgreSQL on this machine: installing the PostgreSQL bundled in the" \
				"pgserver wheel, pip install -e '.[pgserver]' (about 30 s)"; \
			$(BIN)/python -m pip install --disable-pip-version-check -e '.[pgserver]'; }; }
	$(BIN)/python -m aiotutorial.pgcluster ensure
	$(BIN)/python -m aiotutorial.migrate upgrade

# BUS_URL=redis://host:port/db make run: the realtime bus over Redis (README, Scaling), whose
# client (redis-py, the extra `redis`) is installed the first time.
run: db ## serve http://127.0.0.1:6543 (gunicorn + AsyncGunicornWorker)
	@case "$$BUS_URL" in redis://*|rediss://*|unix://*) \
		$(BIN)/python -c 'import redis' 2>/dev/null || { \
			echo "make: BUS_URL names Redis: installing its client, pip install -e '.[redis]'"; \
			$(BIN)/python -m pip install --disable-pip-version-check -e '.[redis]'; };; esac
	$(BIN)/gunicorn --paste development.ini

# The pages' checker: TypeScript's, over the JSDoc of aiotutorial/static/ (jsconfig.json), at
# the version package-lock.json pins, installed by `npm ci` into node_modules/ (the first time
# a few seconds; again only when package.json or the lock changes). Node.js and npm are
# Debian's where missing (as root). (Without package.json, npm ci says so itself.)
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): $(wildcard package.json package-lock.json)
	@command -v npm >/dev/null 2>&1 || { \
		echo "make: npm is needed for the pages' type checker (Node.js 18 or newer)"; \
		test "$$(id -u)" = 0 || { echo "make: as root: apt-get install nodejs npm"; exit 1; }; \
		echo "make: installing Debian's nodejs and npm with apt-get (about a minute)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@echo "make: installing the pages' type checker (TypeScript, as package-lock.json pins it)" \
		"into node_modules with npm ci (a few seconds)"
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

lint: $(TEST_STAMP) $(NODE_STAMP) ## ruff, mypy (strict on aio/ and realtime/), and tsc over static/'s JSDoc
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	node_modules/.bin/tsc -p jsconfig.json

format: $(TEST_STAMP) ## ruff check --fix and ruff format: fix what can be fixed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suite's bench smoke tests start the servers make bench compares (Tornado, Django Channels
# and its Redis) for real, so make test installs them as it installs Chromium and nginx: a
# machine with what make test set up runs every test (under CI, a missing one is a failure).
test: db lint bench-deps ## the whole suite (PYTEST_ARGS=...) with branch coverage, after the lint checks
	@scripts/ensure-chromium
	@scripts/ensure-nginx
	@scripts/ensure-redis
	@rm -rf var/coverage && mkdir -p var/coverage
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	@$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report --format=total | sed 's/^/branch coverage: /; s/$$/ %/'
	@$(BIN)/python -m coverage html -q
	@echo "coverage report: test-artifacts/coverage/index.html"

# The suite on the lowest versions setup.py allows (requirements/minimum.txt), in .venv-min.
# Playwright pins its own greenlet, so the browser tests (tests/browser/) are left to `make test`.
MIN_VENV := .venv-min
test-min: db ## the suite on the lowest versions setup.py allows, in .venv-min
	@test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar off \
		-c requirements/minimum.txt -e . 'pytest>=8,<10'
	$(MIN_VENV)/bin/python -m pip check
	$(MIN_VENV)/bin/python -m pytest --ignore=tests/browser $(PYTEST_ARGS)

db-stop: ## stop the embedded PostgreSQL
	@test -x $(BIN)/python && $(BIN)/python -m aiotutorial.pgcluster stop || true

db-status: $(STAMP) ## is the embedded PostgreSQL running? (exit 0 if so, else 3)
	$(BIN)/python -m aiotutorial.pgcluster status

psql: db ## a psql shell on the application database
	$(BIN)/python -m aiotutorial.pgcluster psql

clean: db-stop ## stop the embedded PostgreSQL, remove the virtualenvs and caches (keeps var/)
	rm -rf $(VENV) $(MIN_VENV) node_modules *.egg-info .pytest_cache .ruff_cache

# make bench [QUICK=1] [FORCE=1]: the benchmarks of bench/run.py (servers on loopback, one table,
# bench/results/latest.json and PNG plots). Installs the bench extra, and Debian's wrk and
# redis-server (as root; the harness starts a Redis of its own on a free port for Django Channels).
# Refuses to start on a busy machine (load average over 1, or other processes using more than
# half a core in a short sample): FORCE=1 measures anyway, with a warning the results record.
.PHONY: bench bench-deps
bench: db bench-deps ## the benchmarks, about 25 minutes (QUICK=1: about 9), after make test
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); \
		$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(if $(FORCE),--force) $(BENCH_ARGS)

# What make bench needs beyond serving (make test installs it too: the bench's smoke tests
# start Tornado, Django Channels and its Redis for real).
bench-deps: $(STAMP) ## the bench extra and Debian's wrk and redis-server
	@test $(VENV)/.bench-installed -nt setup.py || { \
		echo "make: installing the bench extra (Tornado, Django Channels, matplotlib...) into" \
			"$(VENV) with pip (about a minute the first time)"; \
		$(BIN)/python -m pip install --disable-pip-version-check -e '.[bench]' && \
		touch $(VENV)/.bench-installed; }
	@scripts/ensure-redis
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "make: installing Debian's wrk for the bench's HTTP load (about 10 s)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else echo "wrk is missing (not root, so not installed): HTTP load by bench/httpload.py"; fi; }

# make soak [QUICK=1] [REDIS=1]: faults under load (soak/): a PostgreSQL cluster and two instances of its
# own, 24 clients that reconnect by themselves, kill -9, PostgreSQL and instance restarts and
# fuzzing while 10 messages a second are posted; exits 0 only when nothing was lost,
# duplicated or reordered, no 5xx and no traceback at ERROR. Logs and report: var/soak/<time>/.
# Never touches var/pg. REDIS=1: the instances on a Redis bus of their own, kill -9 of Redis among
# the faults. SOAK_ARGS passes options (--minutes N --clients N --rate R).
.PHONY: soak
soak: $(STAMP) ## faults under load, about 3.5 minutes (QUICK=1: about 40 s; REDIS=1: the Redis bus)
	@$(BIN)/python -m aiotutorial.pgcluster bindir >/dev/null 2>&1; test $$? != 3 || { \
		echo "make: no PostgreSQL on this machine: installing the PostgreSQL bundled in the" \
			"pgserver wheel, pip install -e '.[pgserver]' (about 30 s)"; \
		$(BIN)/python -m pip install --disable-pip-version-check -e '.[pgserver]'; }
	@if [ -n "$(REDIS)" ]; then scripts/ensure-redis; \
		$(BIN)/python -c 'import redis' 2>/dev/null || \
			$(BIN)/python -m pip install --disable-pip-version-check -e '.[redis]'; fi
	$(BIN)/python -m soak $(if $(QUICK),--quick) $(if $(REDIS),--bus redis) $(SOAK_ARGS)

# The two commands: `make run` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DIALWAVE_DATABASE_URL ?= sqlite:///./dialwave.db
export DIALWAVE_DATABASE_URL

.PHONY: run test lint install clean bench

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP)

# The demo: a started campaign on the simulated carrier, engine time 10x faster (docs: README "Quick start").
DEMO_TIME_SCALE ?= 10
PORT ?= 8080
run: $(STAMP)
	$(BIN)/dialwave migrate
	DIALWAVE_PORT=$(PORT) $(BIN)/dialwave demo --org demo --time-scale $(DEMO_TIME_SCALE)
	DIALWAVE_PORT=$(PORT) $(BIN)/dialwave serve --host 127.0.0.1 --port $(PORT) --time-scale $(DEMO_TIME_SCALE)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

# pytest-xdist: one worker per CPU, each test file on one worker (a file's module-scoped servers are
# started once). Most tests wait on servers, sipp or the browser, so two workers on two CPUs take about
# half the time of one. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= auto
test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) dialwave.db dialwave.db-wal dialwave.db-shm

# Ratify: `make run` and `make test` are all a new machine needs (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_WORKERS ?= 2
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: bench-roster bench-cast bench-notices chromium pdf-libs run test lint typecheck test-sqlite test-postgres drills messages extract-messages bench clean

run: $(VENV)/.installed $(COMPILED)
	$(BIN)/ratify migrate
	$(BIN)/ratify demo
	$(BIN)/ratify serve --with-worker

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Ratify needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile -d translations -D messages -l $* >/dev/null

messages: $(VENV)/.installed extract-messages $(COMPILED)

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k N_ --project=Ratify --version=0.1.0 --no-location --sort-output -o translations/messages.pot . >/dev/null
	$(BIN)/pybabel update -i translations/messages.pot -d translations -D messages --no-fuzzy-matching >/dev/null

lint: $(VENV)/.installed-test
	$(BIN)/ruff check ratify tests bench drills alembic
	$(BIN)/ruff format --check ratify tests bench drills alembic

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy ratify

chromium:
	@scripts/ensure-chromium

pdf-libs:
	@scripts/ensure-pdf-libs

test-sqlite: $(VENV)/.installed-test $(COMPILED)
	RATIFY_TEST_DB=sqlite $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-test $(COMPILED)
	RATIFY_TEST_DB=postgresql RATIFY_TEST_DATABASE_URL="$${RATIFY_TEST_DATABASE_URL:-$(PG_URL)}" \
		$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: chromium pdf-libs lint typecheck test-sqlite test-postgres

# Long drills against a real PostgreSQL (scratch databases, dropped after): drills/README.md.
drills: $(VENV)/.installed-test
	$(BIN)/python drills/run.py --postgres "$(PG_URL)"

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py --postgres "$(PG_URL)"

bench-roster: $(VENV)/.installed-test
	$(BIN)/python bench/roster_import.py -n 300000 --sqlite --postgres "$(PG_URL)"

bench-cast: $(VENV)/.installed-test
	$(BIN)/python bench/cast_load.py --postgres "$(PG_URL)"

bench-notices: $(VENV)/.installed-test
	$(BIN)/python bench/notices.py --postgres "$(PG_URL)"

bench-tally: $(VENV)/.installed-test
	$(BIN)/python bench/tally.py --sqlite --postgres "$(PG_URL)"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

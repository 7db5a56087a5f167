# ngo-kit: every target creates .venv when it is missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ngo-kit-installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)

.PHONY: demo test lint typecheck pytest docs bench audit clean

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,all]'
	@for p in $(dir $(PLUGIN_PROJECTS)); do $(BIN)/python -m pip install --quiet --no-deps -e $$p || exit 1; done
	@touch $(STAMP)

# relief_hub on SQLite at http://127.0.0.1:8000 (CI runs it with DEMO_ARGS=--smoke).
demo: $(STAMP)
	$(BIN)/python examples/relief_hub/demo.py $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy tests/conftest.py
	@for d in tests/*/; do \
	  echo "mypy $$d"; MYPYPATH=$$d $(BIN)/mypy $$d || exit 1; \
	done
	@for p in plugins/*/; do \
	  echo "mypy $$p"; MYPYPATH=$${p}src:$${p}tests $(BIN)/mypy $${p}src $${p}tests || exit 1; \
	done

# The suite on SQLite, then on PostgreSQL when NGO_KIT_TEST_POSTGRES_URL is set,
# then on MariaDB when NGO_KIT_TEST_MARIADB_URL is set.
pytest: $(STAMP)
	NGO_KIT_TEST_DATABASE_URL= $(BIN)/python -m pytest -n 2
	@if [ -n "$$NGO_KIT_TEST_POSTGRES_URL" ]; then \
	  echo "== the suite again on PostgreSQL"; \
	  NGO_KIT_TEST_DATABASE_URL="$$NGO_KIT_TEST_POSTGRES_URL" $(BIN)/python -m pytest -n 2 || exit 1; \
	fi
	@if [ -n "$$NGO_KIT_TEST_MARIADB_URL" ]; then \
	  echo "== the suite again on MariaDB"; \
	  NGO_KIT_TEST_DATABASE_URL="$$NGO_KIT_TEST_MARIADB_URL" $(BIN)/python -m pytest -n 2 || exit 1; \
	fi

test: lint typecheck pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# Known vulnerabilities in the installed packages. Needs a network that reaches PyPI's JSON API
# or OSV (this project's CI network reaches neither; see docs/security.md). --strict: a package
# that cannot be audited fails the run; --skip-editable: ngo-kit and its plugins are this checkout.
audit: $(STAMP)
	$(BIN)/pip-audit --local --strict --skip-editable --progress-spinner off

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache

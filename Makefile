# The two commands a newcomer needs: `make up` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/tugboat up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

# Four workers, each test file on one of them: the suite mostly waits on real processes (clusters,
# controllers, polls), so on 2 cores four workers use about one core in all and finish in ~6 minutes
# (two: ~8). Override with e.g. `make test PYTEST_ARGS="-n 0 -x"`.
PYTEST_ARGS ?= -n 4 --dist loadfile

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/apiserver.py
	$(BIN)/python bench/localcluster.py
	$(BIN)/python bench/gitops.py
	$(BIN)/python bench/rollouts.py
	$(BIN)/python bench/analysis.py
	$(BIN)/python bench/server.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

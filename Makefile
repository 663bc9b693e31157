# projector: the commands a new user runs. Everything installs into .venv; servers live under .services/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lock test test-unit test-integration demo lint services-start services-stop services-status bench soak package clean

install: $(STAMP)

## make install: the exact versions of requirements.lock (hash-checked), then projector itself (editable).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

## make lock: re-resolve the newest versions pyproject.toml allows into the two lock files (with hashes):
## requirements.lock (everything, for make install and CI) and requirements-runtime.lock (scripts/package).
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--no-annotate --upgrade --custom-compile-command "make lock" --quiet
lock: install
	$(BIN)/pip install -q uv
	$(UV_COMPILE) --extra dev -o requirements.lock
	$(UV_COMPILE) -o requirements-runtime.lock

## make test: install, start the local servers (fetched and cached on first use), run every test:
## the tests that can share the servers in TEST_WORKERS processes (most of their time is spent
## waiting on the servers), then the serial ones (tests/conftest.py: SERIAL_FILES) alone.
TEST_WORKERS ?= 3
test: install services-start
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not serial" -n $(TEST_WORKERS) --dist loadfile --durations=15
	$(BIN)/python -m pytest -q -p no:cacheprovider -m serial --durations=5

test-unit: install
	$(BIN)/python -m pytest -q -m unit

test-integration: install services-start
	$(BIN)/python -m pytest -q -m integration

## make demo: the main job end to end on the local servers.
demo: install
	$(BIN)/python scripts/demo

## make lint: ruff (lint rules and formatting) and mypy (strict on projector/; [tool.mypy] in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services-start: install
	$(BIN)/python scripts/services start

services-stop:
	$(BIN)/python scripts/services stop --only opensearch,moto,rie,toxiproxy

services-status:
	$(BIN)/python scripts/services status

bench: install services-start
	$(BIN)/python scripts/bench

soak: install services-start
	$(BIN)/python scripts/soak

package: install
	$(BIN)/python scripts/package

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache

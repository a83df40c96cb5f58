# The two commands a newcomer needs: `make run` and `make test` (see README.md).
# Both install from the lock files (every version pinned and hashed); `make upgrade` re-resolves
# them from pyproject.toml's ranges and runs the suite, so a new release is adopted on purpose.
PYTHON ?= $(shell command -v python3.11 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
# `make test` uses the local PostgreSQL and Redis unless these are set.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gateway
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
INSTALL_LOG := $(VENV)/install.log
# The lock files carry no index URL: pip's own configuration says where packages come from.
COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: run test check install install-dev lock upgrade bench clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

# Runs pip with its output in a log file, shown when it fails, so that `make run` ends with the
# demo key on screen rather than pages of pip output.
define pip_quietly
	@{ $(1); } >>$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); echo "$(2)"; exit 1; }
endef

# Exactly the lock (hash-checked, nothing resolved), then the project itself from the working
# tree: --no-index resolves its requirements against what is installed, so a requirement of
# pyproject.toml that the lock lacks fails here.
define install_locked
	@echo "installing $(1) into $(VENV) (log: $(INSTALL_LOG))"
	@: >$(INSTALL_LOG)
	$(call pip_quietly,$(BIN)/python -m pip install --require-hashes --no-deps -r $(1),install failed)
	$(call pip_quietly,$(BIN)/python -m pip install --no-index --no-build-isolation -e '.$(2)',$(1) lacks a requirement of pyproject.toml: run make lock)
endef

$(VENV)/.installed: $(LOCK) pyproject.toml | $(BIN)/python
	$(call install_locked,$(LOCK),)
	@touch $@

$(VENV)/.installed-dev: $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(call install_locked,$(DEV_LOCK),[dev])
	@touch $(VENV)/.installed $@

# pip-compile, as pinned in the development lock (the project itself need not install yet).
$(BIN)/pip-compile: $(DEV_LOCK) | $(BIN)/python
	@: >$(INSTALL_LOG)
	$(call pip_quietly,$(BIN)/python -m pip install --require-hashes --no-deps -r $(DEV_LOCK),install failed)
	@touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# After editing pyproject.toml's dependencies: pins what is new, keeps every other pin. The
# runtime lock is the development lock's subset, with the same versions.
lock: $(BIN)/pip-compile
	$(COMPILE) --extra dev -o $(DEV_LOCK) pyproject.toml
	$(COMPILE) -c $(DEV_LOCK) -o $(LOCK) pyproject.toml

# Every package at the newest release pyproject.toml's ranges allow, then the whole suite.
upgrade: $(BIN)/pip-compile
	$(COMPILE) --upgrade --extra dev -o $(DEV_LOCK) pyproject.toml
	$(COMPILE) --upgrade -c $(DEV_LOCK) -o $(LOCK) pyproject.toml
	$(MAKE) --no-print-directory test

run: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py setupdemo
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

check: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: install-dev
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
		$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory check

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

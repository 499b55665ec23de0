# pymon: `make run` starts the daemon on the demo config, `make test` runs lint + the suite.
# Both install from the locks in requirements/ (what CI tested), with uv; `make lock`
# regenerates the locks from pyproject.toml (docs/install.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

# uv installs the locks: pip bootstraps this version of it into the venv from PyPI.
# uv reads no pip configuration (pip.conf, PIP_*): it uses PyPI unless UV_DEFAULT_INDEX
# (or another UV_* setting) points it elsewhere.
UV_VERSION := 0.13.9
UV         := $(BIN)/uv
UV_STAMP   := $(VENV)/.uv-$(UV_VERSION)
UV_PIP      = $(UV) pip $(1) --quiet --python $(BIN)/python
UV_CHECK    = $(call UV_PIP,check) || { echo "pyproject.toml asks for what the locks lack: make lock" >&2; exit 1; }

# The locks: runtime (make run), runtime + dev extras (make test), the build backend that
# builds pymon itself. One universal resolution each (all platforms, Python >= 3.11, so
# uvloop keeps its sys_platform marker), with hashes.
LOCK_DIR   ?= requirements
LOCKS      := requirements/run.txt requirements/dev.txt requirements/build.txt
LOCK_FLAGS  = --quiet --universal --python-version 3.11 --generate-hashes \
              --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

.PHONY: run test lint fmt bench lock lock-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# Pinned versions only (--no-deps: the lock is complete, nothing is resolved again), then
# pymon itself, editable; `uv pip check` fails when pyproject.toml asks for what the lock lacks.
# `make run` adds what the run lock pins and keeps the dev tools a `make test` installed;
# `make test` makes the venv exactly the dev lock (uv pip sync removes everything else).
$(VENV)/.run-stamp: requirements/run.txt requirements/build.txt pyproject.toml | $(UV_STAMP)
	$(call UV_PIP,install) --no-deps -r requirements/run.txt \
	    -b requirements/build.txt -e .
	$(UV_CHECK)
	touch $@

$(VENV)/.dev-stamp: requirements/dev.txt requirements/run.txt requirements/build.txt pyproject.toml | $(UV_STAMP)
	$(call UV_PIP,sync) requirements/dev.txt
	$(call UV_PIP,install) --no-deps -b requirements/build.txt -e .
	$(UV_CHECK)
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	$(BIN)/pymon run $(if $(CONFIG),-c $(CONFIG))

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

fmt: $(VENV)/.dev-stamp
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools

bench: $(VENV)/.run-stamp
	$(BIN)/pymon bench $(BENCH_ARGS)

# Regenerate the locks from pyproject.toml after changing a dependency there. Pins already
# in a lock stay unless pyproject.toml excludes them; `make lock UPGRADE=1` takes the newest
# versions allowed. The dev lock is constrained to the run lock's pins, so both agree.
lock: | $(UV_STAMP)
	mkdir -p $(LOCK_DIR)
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	    | $(UV) pip compile $(LOCK_FLAGS) - -o $(LOCK_DIR)/build.txt
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml -o $(LOCK_DIR)/run.txt
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml --extra dev -c $(LOCK_DIR)/run.txt \
	    -o $(LOCK_DIR)/dev.txt

# Fails when the locks do not pin what `make lock` makes of pyproject.toml (.ci/run runs
# it). Hashes are left out of the comparison: a release can gain a wheel after it was locked.
lock-check: | $(UV_STAMP)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/new" \
	    && cp $(LOCKS) "$$tmp" && cp $(LOCKS) "$$tmp/new" \
	    && $(MAKE) --no-print-directory lock LOCK_DIR="$$tmp/new" \
	    && sed -i -e "s|$$tmp/new/|requirements/|" -e '/--hash=/d' "$$tmp"/*.txt "$$tmp"/new/*.txt \
	    && diff -ru "$$tmp" "$$tmp/new" -x new && echo "lock-check: the locks match pyproject.toml"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

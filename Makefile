# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Read the reference data in place when this checkout sits beside it.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/ml-latest-small/ratings.csv),)
export LATENTFACTORS_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test lint notebooks bench coverage clean

$(VENV)/.stamp-base: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,notebooks,lint]"
	touch $@ $(VENV)/.stamp-base

$(VENV)/.stamp-coverage: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,coverage]"
	touch $@ $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(PY) -m latentfactors demo

test: $(VENV)/.stamp-test
	$(PY) -m pytest

# Line coverage of the package, kernel bodies included: the kernels run as plain
# Python (NUMBA_DISABLE_JIT=1), so tests marked `jit`, on real data or of notebooks
# are left out. Report in the terminal and in htmlcov/index.html.
coverage: $(VENV)/.stamp-coverage
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -m "not jit and not slow and not notebooks" \
		--cov=latentfactors --cov-report=term-missing --cov-report=html

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check latentfactors tests benchmarks
	$(VENV)/bin/ruff format --check latentfactors tests benchmarks

notebooks: $(VENV)/.stamp-test
	$(PY) examples/build_notebooks.py

bench: $(VENV)/.stamp-base
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# mlwright developer entry points. Every target installs what it needs into $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-slow lint format bench-profile bench-serve bench-compare \
	bench-portfolio clean

install: $(STAMP)

# Re-installs when the project's dependency files change. The constraints file pins torch to the
# local CPU wheel so that no install ever pulls a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@start=$$(date +%s); \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install --quiet --upgrade pip && \
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' && \
	touch $(STAMP) && \
	echo "install: done in $$(( $$(date +%s) - start )) s"

demo: $(STAMP)
	$(BIN)/mlwright demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench-profile: $(STAMP)
	$(BIN)/python bench/profile_bench.py

# wrk (Debian: apt-get install wrk) drives both servers when installed; else a Python generator
bench-serve: $(STAMP)
	@command -v wrk >/dev/null || echo "wrk not found: using the Python load generator"
	$(BIN)/python bench/serve_bench.py

# FLAML and AutoGluon go into their own virtualenvs under bench/.venvs (the script builds them);
# cells resume, so an interrupted run continues where it stopped
bench-compare: $(STAMP)
	$(BIN)/python bench/compare.py

bench-portfolio: $(STAMP)
	$(BIN)/python bench/portfolio.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

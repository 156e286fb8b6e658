# One command each: `make test` sets up .venv (first run only) and runs lint + the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The server's web-page test drives Debian's Chromium through Playwright (never Playwright's own download).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test test-fast lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	# tf-keras (for the hub.KerasLayer export test) declares `tensorflow`, which tensorflow-cpu provides
	# under another name: without --no-deps pip would install a second TensorFlow.
	$(PY) -m pip install --quiet --no-deps tf-keras==2.21.0
	touch $(STAMP)

# Classify the bundled photo with the official weights (fetched once, about 220 MB, then cached).
demo: $(STAMP)
	$(VENV)/bin/irv2 classify src/irv2/data/chelsea.jpg

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

$(CHROMIUM):
	apt-get update -qq && apt-get install -y --no-install-recommends chromium

# Everything, TensorFlow parity tests included (what CI runs).
test: lint $(CHROMIUM)
	$(PY) -m pytest

# The fast layer only: no TensorFlow, seconds.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

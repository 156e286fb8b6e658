# Three virtualenvs, each built on first use and rebuilt when its requirements change (a stamp file records it):
#   .venv-run   irv2 and its runtime dependencies only (requirements-run.txt)             `make demo`
#   .venv-fast  + the test tools and every extra, without TensorFlow (requirements-fast.txt)   `make test-fast`
#   .venv       + TensorFlow (the reference), tf-keras and pyspark (requirements-dev.txt)  `make test`, `make lint`
VENV ?= .venv
FAST_VENV ?= .venv-fast
RUN_VENV ?= .venv-run
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FAST_STAMP := $(FAST_VENV)/.installed
RUN_STAMP := $(RUN_VENV)/.installed
# The server's web-page test drives Debian's Chromium through Playwright (never Playwright's own download).
CHROMIUM := /usr/bin/chromium
# The Spark recipe's test runs Spark in local mode on Debian's headless Java runtime.
JAVA := /usr/bin/java

.PHONY: demo setup setup-fast setup-run test test-fast lint clean

setup: $(STAMP)
setup-fast: $(FAST_STAMP)
setup-run: $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml requirements-run.txt
	python3 -m venv $(RUN_VENV)
	$(RUN_VENV)/bin/python -m pip install --quiet -r requirements-run.txt -e .
	touch $@

$(FAST_STAMP): pyproject.toml requirements-run.txt requirements-fast.txt
	python3 -m venv $(FAST_VENV)
	$(FAST_VENV)/bin/python -m pip install --quiet -r requirements-fast.txt -e .
	touch $@

$(STAMP): pyproject.toml requirements-run.txt requirements-fast.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	# tf-keras (for the hub.KerasLayer export test) declares `tensorflow`, which tensorflow-cpu provides
	# under another name: without --no-deps pip would install a second TensorFlow.
	$(PY) -m pip install --quiet --no-deps tf-keras==2.21.0
	touch $@

# Classify the bundled photo in .venv-run (irv2 and its runtime dependencies, no test tools, no TensorFlow),
# with the official weights: fetched once (about 220 MB) into ~/.cache/irv2, then loaded from there, offline too.
demo: $(RUN_STAMP)
	$(RUN_VENV)/bin/irv2 classify src/irv2/data/chelsea.jpg

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

$(CHROMIUM):
	apt-get update -qq && apt-get install -y --no-install-recommends chromium

$(JAVA):
	apt-get update -qq && apt-get install -y --no-install-recommends openjdk-17-jre-headless

# Everything, in .venv (what CI runs): ruff, the fast layer, the TensorFlow parity tests, the server's load and
# browser tests, and every recipe in README.md and docs/ (tests/docs).
test: lint $(CHROMIUM) $(JAVA)
	$(PY) -m pytest

# The fast layer only, in .venv-fast, which has no TensorFlow: no test marked slow or tensorflow.
test-fast: $(FAST_STAMP)
	$(FAST_VENV)/bin/python -m pytest -m "not slow and not tensorflow"

clean:
	rm -rf $(VENV) $(FAST_VENV) $(RUN_VENV) .pytest_cache .ruff_cache

# Two commands matter: `make demo` (the main job, on an embedded default) and
# `make test` (the whole suite, against both ends of the supported SDK range).
# Both create their own virtual environments and install what they need.

PYTHON ?= python3
SDK_NEW ?= 1.8.9
SDK_OLD ?= 1.2.18
VENV_NEW := .venv/sdk-$(SDK_NEW)
VENV_OLD := .venv/sdk-$(SDK_OLD)
PYTEST_ARGS ?=

.PHONY: demo test test-new test-old generate bench clean

$(VENV_NEW)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_NEW)
	$(VENV_NEW)/bin/pip install -q --upgrade pip
	$(VENV_NEW)/bin/pip install -q -e ".[test,dashboard]" "livekit-agents==$(SDK_NEW)"
	touch $@

# 1.2.x imports httpx, which newer dependency sets no longer pull in
$(VENV_OLD)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install -q --upgrade pip
	$(VENV_OLD)/bin/pip install -q -e ".[test,dashboard]" "livekit-agents==$(SDK_OLD)" httpx
	touch $@

demo: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/livekit-agents-exporter demo $(DEMO_ARGS)

test: test-new test-old

test-new: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS)

# the old SDK runs the suites that exercise the worker; rules and dashboard do not depend on it
test-old: $(VENV_OLD)/.installed
	$(VENV_OLD)/bin/python -m pytest -m "not sdk_independent" $(PYTEST_ARGS)

generate: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/python -m livekit_agents_exporter.generate

bench: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/pip install -q -e ".[bench]"
	$(VENV_NEW)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache

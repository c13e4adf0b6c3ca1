# Two commands matter: `make demo` (the main job, on an embedded default) and
# `make test` (the whole suite, against both ends of the supported SDK range).
# Both create their own virtual environments and install what they need.

PYTHON ?= python3
SDK_NEW ?= 1.8.9
SDK_OLD ?= 1.2.18
VENV_NEW := .venv/sdk-$(SDK_NEW)
VENV_OLD := .venv/sdk-$(SDK_OLD)
# the package's core dependencies only, no livekit-agents: what a user without the extra has
VENV_NOSDK := .venv-extra/nosdk
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

$(VENV_NOSDK)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_NOSDK)
	$(VENV_NOSDK)/bin/pip install -q --upgrade pip
	$(VENV_NOSDK)/bin/pip install -q -e .
	touch $@

demo: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/livekit-agents-exporter demo $(DEMO_ARGS)

# Both SDK ends run even when the first fails; one summary line each, and the target fails
# when either did.
test: $(VENV_NEW)/.installed $(VENV_OLD)/.installed $(VENV_NOSDK)/.installed
	@new=0; old=0; \
	$(MAKE) --no-print-directory test-new || new=$$?; \
	$(MAKE) --no-print-directory test-old || old=$$?; \
	echo "make test: livekit-agents $(SDK_NEW): $$( [ $$new = 0 ] && echo passed || echo FAILED )"; \
	echo "make test: livekit-agents $(SDK_OLD): $$( [ $$old = 0 ] && echo passed || echo FAILED )"; \
	[ $$new = 0 ] && [ $$old = 0 ]

test-new: $(VENV_NEW)/.installed $(VENV_NOSDK)/.installed
	LKX_NOSDK_PYTHON=$(VENV_NOSDK)/bin/python $(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS)

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

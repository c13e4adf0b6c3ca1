# Two commands matter: `make demo` (the main job, on an embedded default) and
# `make test` (the whole suite, against both ends of the supported SDK range).
# Both create their own virtual environments and install what they need.

PYTHON ?= python3
SDK_NEW ?= 1.8.9
SDK_OLD ?= 1.2.18
VENV_NEW := .venv/sdk-$(SDK_NEW)
VENV_OLD := .venv/sdk-$(SDK_OLD)
# the package's core dependencies only, no extra (no livekit-agents, no bcrypt): what a user
# without the extras has; --clear, so that nothing a previous pyproject.toml installed stays
VENV_NOSDK := .venv-extra/nosdk
# what a worker installs, `.[livekit]` and nothing else (tests/packaging/test_worker_install.py)
VENV_WORKER := .venv-extra/worker
PYTEST_ARGS ?=

.PHONY: demo lint test test-new test-old test-matrix matrix-venvs generate bench clean

$(VENV_NEW)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_NEW)
	$(VENV_NEW)/bin/pip install -q --upgrade pip
	$(VENV_NEW)/bin/pip install -q -e ".[test,dashboard,lint,basic-auth]" "livekit-agents==$(SDK_NEW)"
	touch $@

# 1.2.x imports httpx, which newer dependency sets no longer pull in
$(VENV_OLD)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install -q --upgrade pip
	$(VENV_OLD)/bin/pip install -q -e ".[test,dashboard,basic-auth]" "livekit-agents==$(SDK_OLD)" httpx
	touch $@

$(VENV_NOSDK)/.installed: pyproject.toml
	$(PYTHON) -m venv --clear $(VENV_NOSDK)
	$(VENV_NOSDK)/bin/pip install -q --upgrade pip
	$(VENV_NOSDK)/bin/pip install -q -e .
	touch $@

$(VENV_WORKER)/.installed: pyproject.toml
	$(PYTHON) -m venv --clear $(VENV_WORKER)
	$(VENV_WORKER)/bin/pip install -q --upgrade pip
	$(VENV_WORKER)/bin/pip install -q -e ".[livekit]" "livekit-agents==$(SDK_NEW)"
	touch $@

# ruff over the whole tree, mypy --strict over the package (settings in pyproject.toml)
lint: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/ruff check .
	$(VENV_NEW)/bin/mypy

demo: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/livekit-agents-exporter demo $(DEMO_ARGS)

# Both SDK ends run even when the first fails; one summary line each, and the target fails
# when either did.
test: $(VENV_NEW)/.installed $(VENV_OLD)/.installed $(VENV_NOSDK)/.installed $(VENV_WORKER)/.installed
	@new=0; old=0; \
	$(MAKE) --no-print-directory test-new || new=$$?; \
	$(MAKE) --no-print-directory test-old || old=$$?; \
	echo "make test: livekit-agents $(SDK_NEW): $$( [ $$new = 0 ] && echo passed || echo FAILED )"; \
	echo "make test: livekit-agents $(SDK_OLD): $$( [ $$old = 0 ] && echo passed || echo FAILED )"; \
	[ $$new = 0 ] && [ $$old = 0 ]

test-new: $(VENV_NEW)/.installed $(VENV_NOSDK)/.installed $(VENV_WORKER)/.installed
	LKX_NOSDK_PYTHON=$(abspath $(VENV_NOSDK))/bin/python LKX_WORKER_PYTHON=$(abspath $(VENV_WORKER))/bin/python \
		$(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS)

# the old SDK runs the suites that exercise the worker; rules and dashboard do not depend on it
test-old: $(VENV_OLD)/.installed
	$(VENV_OLD)/bin/python -m pytest -m "not sdk_independent" $(PYTEST_ARGS)

# The minor-release matrix: a short real-worker counting scenario on the latest patch of
# every minor release of the supported range (the full suite runs at both ends, above).
# One venv per release, with only what the scenario needs; MATRIX_VENV_DIR moves them.
MATRIX_SDKS ?= 1.2.18 1.3.12 1.4.6 1.5.17 1.6.10 1.7.1 1.8.9
MATRIX_VENV_DIR ?= .venv
MATRIX_TESTS ?= tests/matrix
MATRIX_STAMPS := $(foreach v,$(MATRIX_SDKS),$(MATRIX_VENV_DIR)/sdk-$(v)/.matrix-installed)

# 1.2.x to 1.5.x import httpx without depending on it
$(MATRIX_VENV_DIR)/sdk-%/.matrix-installed: pyproject.toml
	$(PYTHON) -m venv $(MATRIX_VENV_DIR)/sdk-$*
	$(MATRIX_VENV_DIR)/sdk-$*/bin/pip install -q --disable-pip-version-check -e ".[matrix]" \
		"livekit-agents==$*" $(if $(filter 1.2.% 1.3.% 1.4.% 1.5.%,$*),httpx)
	touch $@

matrix-venvs: $(MATRIX_STAMPS)

MATRIX_REPORT := $(MATRIX_VENV_DIR)/matrix-report.jsonl

# every release runs even when one fails; one summary line each, then the scenario's figures
test-matrix: $(MATRIX_STAMPS)
	@rm -f $(MATRIX_REPORT); failed=""; for v in $(MATRIX_SDKS); do \
		start=$$(date +%s); \
		if LKX_MATRIX_REPORT=$(MATRIX_REPORT) $(MATRIX_VENV_DIR)/sdk-$$v/bin/python -m pytest \
			-q -p no:cacheprovider $(MATRIX_TESTS) $(PYTEST_ARGS); \
		then echo "test-matrix: livekit-agents $$v passed in $$(( $$(date +%s) - start ))s"; \
		else echo "test-matrix: livekit-agents $$v FAILED"; failed="$$failed $$v"; fi; \
	done; \
	cat $(MATRIX_REPORT) 2>/dev/null || true; \
	if [ -n "$$failed" ]; then echo "test-matrix: failed on$$failed"; exit 1; fi

generate: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/python -m livekit_agents_exporter.generate --root .
	$(VENV_NEW)/bin/python benchmarks/report.py --readme-only

bench: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/pip install -q -e ".[bench]"
	$(VENV_NEW)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache

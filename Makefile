# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest bench clean localstack check-containers test-containers

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "thumbx needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/thumbx demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) localstack
	THUMBX_LOCALSTACK_PYTHON="$$(tools/localstack/venv.sh)" $(PY) -m pytest -q

test: lint typecheck check-containers pytest

# LocalStack's core in its own venv (cached outside the repo): the second emulator of the integration tests.
localstack:
	tools/localstack/venv.sh >/dev/null

# Offline checks of Dockerfile and compose files: docker-compose config, hadolint, checkov --skip-download.
check-containers: $(STAMP)
	$(PY) tools/containers/static_checks.py "$$(tools/containers/checks-venv.sh)"

# The real run (root; slow on a cold cache): private dockerd, stand-in base images, compose up, thumbnails.
test-containers: $(STAMP)
	tools/containers/install-engine.sh
	THUMBX_CONTAINER_TESTS=1 THUMBX_CHECKS_BIN="$$(tools/containers/checks-venv.sh)" \
		$(PY) -m pytest -q -s tests/containers

clean:
	rm -rf $(VENV) demo-out .mypy_cache .pytest_cache .ruff_cache

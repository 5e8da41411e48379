# DDS: `make run` starts the embedded default with demo data; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run on PostgreSQL (as in CI); override DATABASE_URL to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dds
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv demo clean screenshots tools manifests

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q -e .  # the `dds` command-line client
	touch $@

venv: $(VENV)/.installed

# Deployment checks (checkov, kubernetes-validate, hadolint) in their own virtualenv.
TOOLS_VENV ?= .venv-tools
$(TOOLS_VENV)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install -q --upgrade pip
	$(TOOLS_VENV)/bin/pip install -q -r requirements-tools.txt
	touch $@

tools: $(TOOLS_VENV)/.installed

# The manifests and the Dockerfile: render, validate, checkov, hadolint.
manifests: venv tools
	PYTHON=$(PY) TOOLS_VENV=$(TOOLS_VENV) ./scripts/check-manifests.sh

run: venv
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py demo_data
	@echo "DDS at http://$(HOST):$(PORT)/ (admin at /admin/)"
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

test: venv
	./scripts/services-up.sh
	$(MAKE) --no-print-directory lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest

# Screenshots of the portal's main pages (docs/screenshots/), taken by the browser test
# in Chromium (apt-get install chromium).
screenshots: venv
	./scripts/services-up.sh
	DDS_SCREENSHOTS=docs/screenshots DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
		$(PY) -m pytest -q portal/tests/test_browser.py

# Lint, the layer contracts (.importlinter; docs/architecture.md) and the types (mypy with
# the Django and DRF stubs: [tool.mypy] in pyproject.toml). All must be clean.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) $(TOOLS_VENV) var staticfiles .pytest_cache .ruff_cache

# Amplify: `make run` to start, `make test` to check everything. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
export AMPLIFY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: setup run worker demo test lint unit bench atproto-net browser migration clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/amplify db upgrade
	@echo "Amplify: open http://localhost:8501 (first visit creates the admin)."
	@echo "Want to look around first? 'make demo' starts a separate demo workspace."
	$(VENV)/bin/streamlit run amplify/ui/server.py

worker: setup
	$(VENV)/bin/amplify db upgrade
	$(VENV)/bin/amplify worker

demo: setup
	$(VENV)/bin/amplify demo
	AMPLIFY_DATABASE_URL=sqlite:///data/demo.db AMPLIFY_EMBEDDED_WORKER=true $(VENV)/bin/streamlit run amplify/ui/server.py

atproto-net: setup
	@bash tests/atproto_net/install.sh

browser:
	@bash scripts/ensure-chromium.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q tests/unit

test: setup atproto-net browser lint
	$(VENV)/bin/pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/worker_all.py

# A schema change: edit amplify/models.py, then `make migration MSG="what changed"` and review
# the new file in amplify/migrations/versions (NOT NULL columns need a server default).
migration: setup
	rm -f /tmp/amplify-migration.db
	$(PY) -c "from amplify.migrate import upgrade, revision; u='sqlite:////tmp/amplify-migration.db'; upgrade(u); revision('$(MSG)', u)"
	$(VENV)/bin/ruff check --fix -q amplify/migrations/versions || true
	$(VENV)/bin/ruff format -q amplify/migrations/versions

clean:
	rm -rf $(VENV) tests/artifacts .pytest_cache .mypy_cache .ruff_cache

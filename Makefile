# Contacts Gateway: every target sets up .venv itself, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench serve clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## gateway on 127.0.0.1:8080 with seeded provider emulators; writes var/demo.json
	$(PY) -m gateway.demo

test: $(STAMP)  ## the whole suite (embedded Redis; set REDIS_URL to use a server)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)  ## benchmarks on the embedded Redis; prints a table
	$(PY) -m bench

serve: $(STAMP)
	$(VENV)/bin/contacts-gateway serve

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis

# Convenience targets; each works on a fresh machine with only Python and pip.
PY := .venv/bin/python

.venv/installed: requirements.txt pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && touch $@

setup: .venv/installed
demo: setup
	.venv/bin/crm demo
test: setup
	$(PY) -m pytest
lint: setup
	.venv/bin/ruff check .
bench: setup
	$(PY) -m bench
bench-quick: setup
	$(PY) -m bench --quick

.PHONY: setup demo test lint bench bench-quick

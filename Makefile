# The two commands of the README. Each creates .venv on first use and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev,demo]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cruxcelery demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q
	$(VENV)/bin/python -m mypy cruxcelery
	$(VENV)/bin/python -m ruff check cruxcelery tasks flows tests bench examples

# the bench also needs the `bench` extra (DBOS, psycopg, pyinstrument, py-spy): installed once per pyproject.toml
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install -q -e '.[dev,demo,bench]'
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench

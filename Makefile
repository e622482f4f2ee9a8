# The two commands of the README. Each creates .venv on first use and installs what it needs, at the
# versions requirements/constraints.txt records (a change to it, or to pyproject.toml, makes a new .venv).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
CONSTRAINTS := requirements/constraints.txt
INPUTS := $(shell cat pyproject.toml setup.py $(CONSTRAINTS) | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(INPUTS)

.PHONY: demo test test-busy faults fault-points bench constraints

$(STAMP): pyproject.toml setup.py $(CONSTRAINTS)
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev,demo]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cruxcelery demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q
	$(VENV)/bin/python -m mypy cruxcelery
	$(VENV)/bin/python -m ruff check cruxcelery tasks flows tests bench examples

# The same suite with both cores kept busy by two spinning processes the run starts and stops.
test-busy: $(STAMP)
	CRUX_TEST_BUSY=2 $(VENV)/bin/python -m pytest -q

# Every fault kind at every enumerated fault point of the flows package, then the seeded soak (10
# minutes of random faults, worker kills and Redis restarts; SEED=n replays a schedule). `make test`
# runs a quick subset of the sweep. tests/faults/ explains the harness.
SEED ?= 1
faults: $(STAMP)
	CRUX_FAULTS=all $(VENV)/bin/python -m pytest -q tests/faults
	$(VENV)/bin/python -m tests.faults.soak --seed $(SEED) --minutes 10

# Add to tests/faults/points.txt the points a fault-free run reaches (after adding a Redis write or a publish).
fault-points: $(STAMP)
	$(VENV)/bin/python -m tests.faults.record_points

# the bench also needs the `bench` extra (DBOS, psycopg, pyinstrument, py-spy): installed once per .venv
BENCH_STAMP := $(VENV)/.bench-installed-$(INPUTS)

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev,demo,bench]'
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench

# Resolve today's releases again (within pyproject.toml's ranges, every extra `make` installs) in a
# scratch virtualenv and rewrite $(CONSTRAINTS) with them, keeping its header; then run `make test`
# (it makes a new .venv from the new file) and commit the file once the suite passes.
constraints:
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	$(PYTHON) -m venv "$$scratch/venv" && \
	"$$scratch/venv/bin/python" -m pip install -q --upgrade pip && \
	"$$scratch/venv/bin/python" -m pip install -q -e '.[dev,demo,bench]' && \
	sed '/^[^#]/,$$d' $(CONSTRAINTS) > "$$scratch/constraints.txt" && \
	"$$scratch/venv/bin/python" -m pip freeze --exclude-editable >> "$$scratch/constraints.txt" && \
	cp "$$scratch/constraints.txt" $(CONSTRAINTS)

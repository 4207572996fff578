SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install up status screenshots test test-unit fuzz soak lint bench down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/system-deps
	./scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

up: install
	$(BIN)/roadwatch up

# How the system started by `make up` goes; exits 1 if any part is not ready.
status: install
	$(BIN)/roadwatch status

# The dashboard at a desktop's, a laptop's and a phone's width, taken by its end-to-end
# test (which checks that nothing overflows), into docs/screenshots for the README.
screenshots: install
	ROADWATCH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -p no:xdist tests/e2e

# Three workers (pytest-xdist): the tests mostly wait on servers, so three share two cores
# well; every test makes its own topics and databases. Each module runs whole on one worker
# (loadscope), so that a module's fixture, such as an API stack or a secured deployment, is
# made once; tests/conftest.py puts the modules with slow tests first. pytest exits 5 when
# it collected no test: that is a broken suite, not a pass. The short soak then runs alone:
# three brokers and six processes under load take the machine, and beside the rest of the
# suite they made other tests' servers miss their deadlines (a run of 17 min 42 s). With
# PYTEST_ARGS (a chosen subset), it does not run.
TEST_WORKERS ?= 3
# The environment may forbid Python's bytecode cache (PYTHONDONTWRITEBYTECODE, set on this
# machine). A run starts some ninety Python processes, and each would compile roadwatch's and
# the tests' sources again: a collection of the suite took 7.3 s of CPU so, 3.6 s from cache.
test test-unit: export PYTHONDONTWRITEBYTECODE =
test: install
	./scripts/system-deps --browser
	$(BIN)/roadwatch infra up
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder -m "not soak" \
		$(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	if [ -n "$(PYTEST_ARGS)" ]; then exit $$status; fi; \
	$(BIN)/pytest -p no:xdist -m soak tests/integration/test_soak.py; soak=$$?; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	exit $$soak

# The tests that need no server: seconds, with nothing started.
test-unit: install
	$(BIN)/pytest -m "not kafka and not postgres and not mongo" $(PYTEST_ARGS)

# The fuzz suite at length: hostile records on every topic, hostile answers from webhook
# receivers and from the ports `roadwatch status` asks, documents roadwatch did not write in
# MongoDB, and the Kafka record parser and the MongoDB document reader over any bytes. make
# test runs it too, at 12 examples a test; this runs FUZZ_EXAMPLES a test (25 times as many
# for the parser and the reader).
FUZZ_EXAMPLES ?= 300
fuzz: export PYTHONDONTWRITEBYTECODE =
fuzz: install
	$(BIN)/roadwatch infra up
	ROADWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest \
		tests/unit/test_tolerant_fetch.py tests/integration/test_hostile_records.py \
		tests/integration/test_hostile_receivers.py \
		tests/integration/test_hostile_status_answers.py \
		tests/integration/test_hostile_documents.py tests/unit/test_mongo_documents.py $(PYTEST_ARGS)

# The whole system on three Kafka brokers of its own, under load, through a seeded schedule
# of crashes and outages, every invariant checked from outside at the end: SOAK_SECONDS
# (600), SOAK_RATE (1000 detections/s), SOAK_SEED (1). The report goes to soak/results/;
# docs/reliability.md explains it. make test runs a two-minute one.
soak: export PYTHONDONTWRITEBYTECODE =
soak: install
	$(BIN)/python -m soak

lint: install
	$(BIN)/ruff check src tests bench soak
	$(BIN)/ruff format --check src tests bench soak
	$(BIN)/mypy

# The figures in docs/benchmarks.md. A whole run took 39 minutes on 2 cores, on a slow day
# (2026-12-07). `.venv/bin/python -m bench STEP…` runs some steps alone, into bench/results/.
bench: install
	./scripts/system-deps --bench
	$(BIN)/roadwatch infra up
	$(BIN)/python -m bench

down:
	$(BIN)/roadwatch infra down

clean: down
	rm -rf .roadwatch $(VENV)

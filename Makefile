# Two entry points, both from a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.assay-installed

.PHONY: install run test bench corpus rules clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,ray]'   # ray: CI runs the Ray executor's tests too
	touch $(STAMP)

# The main job on embedded defaults: a short differential-testing campaign into crashes/.
run: install
	$(BIN)/assay fuzz --time 10m --workers 2 --backends inductor,aot_eager --out crashes/

# Two pytest workers (most tests wait on one child process at a time); a file's tests stay on one
# worker, so a module's fixture (a campaign, a Ray cluster) is built once.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 tests

# Rebuild the shipped corpus and rules (minutes; see docs/inference.md).
corpus: install
	$(BIN)/assay traces collect
rules: install
	$(BIN)/assay rules infer

# Each benchmark prints a table; see docs/benchmarks-*.md for the commands behind the shipped numbers.
bench: install
	$(BIN)/python benchmarks/gen_bench.py
	$(BIN)/python benchmarks/fuzz_bench.py
	$(BIN)/python benchmarks/verify_bench.py
	$(BIN)/python benchmarks/triage_bench.py

clean:
	rm -rf $(VENV) build *.egg-info

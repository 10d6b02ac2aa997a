# The two commands of the README:  `make demo`  and  `make test`  (CI runs `make test` via .ci/run).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export SPARK_LOCAL_IP := 127.0.0.1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup postgres demo test test-quick bench bench-grouping bench-chain bench-ab stack-up stack-status stack-down clean help

help:
	@echo "make demo   - set up .venv and run the main job (small world -> the nightly chain through Airflow -> A/B report)"
	@echo "make test   - set up .venv and run the test suite (what CI runs)"
	@echo "make test-quick - the suite without the slow and stack tests (your own loop; no Postgres needed)"
	@echo "make bench  - ingest benchmark (5M events: lines/s vs the fair parse+write baseline, json.loads and the old baseline; driver peak RSS at 5M and 20M)"
	@echo "make bench-grouping - grouping (engine auto) vs scikit-learn: 1000x500 (goal <= 2x), 10x200000, 10000x200 products x users"
	@echo "make bench-chain - the nightly chain on the medium world (stage times, driver peak RSS)"
	@echo "make bench-ab - the simulated A/B over 3 seeds of the small world and of each shape in bench/worlds (mean, std, min, max of every figure)"
	@echo "make stack-up / stack-status / stack-down - the real stack as local processes (osmf stack ...)"
	@echo "make clean  - remove .osmf (local state) and caches, keep .venv"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so no other package can pull a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -c constraints.txt -e ".[test,text]"
	touch $(STAMP)

# Debian's PostgreSQL server for `osmf stack up` (and its end-to-end test), installed when missing
postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's postgresql (for osmf stack up)"; \
	  apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; }; \
	else echo "warning: no PostgreSQL server: osmf stack up needs Debian's postgresql (apt-get install postgresql)"; fi

setup: $(STAMP) postgres

demo: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/osmf demo

test: $(STAMP) postgres
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest -q --durations=15

test-quick: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest -q -m "not slow and not stack" --durations=10

bench: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python bench/bench_ingest.py

bench-grouping: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python bench/bench_grouping.py --engine auto --sizes 1000x500,10x200000,10000x200

bench-chain: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python bench/bench_chain.py --preset medium

# the simulated A/B over 3 seeds of the demo shape and of each world shape in bench/worlds (~40 min)
bench-ab: $(STAMP)
	$(BIN)/python bench/ab_seeds.py --preset small --seeds 3 --first-seed 1 --out bench/out/ab_small
	for w in bench/worlds/*.toml; do \
	  $(BIN)/python bench/ab_seeds.py --config $$w --seeds 3 --first-seed 1 --out bench/out/ab_$$(basename $$w .toml) || exit 1; \
	done

stack-up: $(STAMP) postgres
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/osmf stack up

stack-status: $(STAMP)
	$(BIN)/osmf stack status

stack-down: $(STAMP)
	$(BIN)/osmf stack down

clean:
	@if [ -d .osmf/stack/pids ] && [ -x $(BIN)/osmf ]; then $(BIN)/osmf stack down; fi
	rm -rf .osmf .pytest_cache bench/out

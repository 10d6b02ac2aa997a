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

.PHONY: setup demo test bench bench-grouping clean help

help:
	@echo "make demo   - set up .venv and run the main job (small world -> the nightly chain through Airflow -> A/B report)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - ingest benchmark (5M events: lines/s vs the fair parse+write baseline, json.loads and the old baseline; driver peak RSS at 5M and 20M)"
	@echo "make bench-grouping - batched MLlib grouping of 1000 products x 500 users vs scikit-learn"
	@echo "make clean  - remove .osmf (local state) and caches, keep .venv"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so no other package can pull a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -c constraints.txt -e ".[test,text]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/osmf demo

test: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest -q

bench: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python bench/bench_ingest.py

bench-grouping: $(STAMP)
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python bench/bench_grouping.py --engine grouped

clean:
	rm -rf .osmf .pytest_cache bench/out

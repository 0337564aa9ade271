# The two commands of README.md, plus helpers. Every target sets up .venv itself first.
# `make demo`  : the main job on the embedded default data
# `make test`  : the whole test suite (library/notebook sync, nbdev_test, pytest)
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

.PHONY: setup demo test test-sync test-nbs test-py docs bench clean

setup:
	@bash tools/setup-env.sh

demo: setup
	$(BIN)/causal-llmrec demo --out runs/demo $(ARGS)

test: setup test-sync test-nbs test-py

test-sync:
	@bash tools/check-sync.sh

test-nbs:
	cd nbs && ../$(BIN)/nbdev_test --n_workers 2 --timing

test-py:
	$(BIN)/python -m pytest tests -q -m "not slow" $(PYTEST_ARGS)

docs: setup
	$(BIN)/causal-llmrec docs --out _site

clean:
	rm -rf _proc _site _docs .pytest_cache runs

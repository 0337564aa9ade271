# The two commands of README.md, plus helpers. Every target sets up .venv itself first.
# `make demo`  : the main job on the embedded default data
# `make test`  : the default test tier, what CI runs (library/notebook sync, nbdev_test, pytest without the slow tests,
#                in PYTEST_WORKERS processes: pytest-xdist, default 2; PYTEST_WORKERS=1 runs them in one process)
# `make test-slow`: the slow tier: every notebook with its `#| slow` cells too (nbdev_test --flags slow: the pages' long
#                   demonstrations, such as the quick pipeline run, whose behaviour fast tests also check) and the
#                   minutes-long end-to-end runs (the full default demo, the example runs, kills in every stage,
#                   retraining, a real MiniLM fine-tune): pytest -m slow
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
# cache byte code even where the shell sets PYTHONDONTWRITEBYTECODE (many containers do): the environment is installed
# with pip --no-compile (tools/setup-env.sh), so without the cache every Python process (each notebook's kernel, each
# pytest worker and subprocess) compiled torch, transformers, pandas and scikit-learn from source again, ~6 s of a core
unexport PYTHONDONTWRITEBYTECODE
# the default tier runs in PYTEST_WORKERS processes (pytest-xdist; each test file on one worker, in the order
# tests/conftest.py gives, so a file's shared fixtures are made once), each with one BLAS/torch thread
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder,)

.PHONY: setup setup-browser demo test test-slow test-sync test-nbs test-py test-nbs-slow test-py-slow docs clean

setup:
	@bash tools/setup-env.sh

# headless Chromium for the browser tests of the docs site and the report (Debian packages; root only)
setup-browser:
	@bash tools/setup-browser.sh

demo: setup
	$(BIN)/causal-llmrec demo --out runs/demo $(ARGS)

test: setup setup-browser test-sync test-nbs test-py

test-sync:
	@bash tools/check-sync.sh

# cells whose first line is `#| slow` are skipped here (settings.ini: tst_flags = notest slow); test-nbs-slow runs them
# every test process runs one BLAS/torch thread (ONE_THREAD): with torch's default, a thread per core, the many small
# L-BFGS steps of CausalBert's logistic start wait on each other's threads on a busy 2-core machine (the full default demo
# took over 30 min at load 10, 3.3 min with one thread); the notebooks run 2 at a time, the pytest workers PYTEST_WORKERS
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
test-nbs:
	$(ONE_THREAD) $(BIN)/nbdev_test --n_workers 2 --timing

test-py:
	$(ONE_THREAD) $(BIN)/python -m pytest tests -q -m "not slow" $(XDIST) $(PYTEST_ARGS)

test-slow: setup setup-browser test-nbs-slow test-py-slow

test-nbs-slow:
	$(ONE_THREAD) $(BIN)/nbdev_test --n_workers 2 --timing --flags slow

test-py-slow:
	$(ONE_THREAD) $(BIN)/python -m pytest tests -q -m slow $(PYTEST_ARGS)

# the docs site (MkDocs + Material from nbdev's processed notebooks, `mkdocs build --strict` + a link check of the HTML)
# into _site/, and README.md from nbs/index.ipynb; the builder is tools/docs/, not part of the package
docs: setup
	$(BIN)/python tools/docs/build.py --out _site --readme

clean:
	rm -rf _proc _site _docs .pytest_cache runs

"""Shared test setup: offline model hubs, the `slow` marker (run by `make test-slow`), and the session's expensive
fixtures, each made once per session and reused by every test module that needs it:

- `movielens`: the MovieLens tables;
- `quick_run`: the quick pipeline run (tiny BERT, 40 users) that test_pipeline.py, test_runner.py, test_cli.py,
  test_faults.py and test_report_browser.py read;
- `own_logs_run`: a run on own logs without a truth (example-data movielens, 40 users, tiny settings), for the reports'
  tests;
- `docs_site`: the docs site, built once with `mkdocs build --strict` (test_docsite.py);
- `browser`: one headless Chromium for every browser test (docs pages and reports), reset to a 1280x900 window
  before each test.

Under pytest-xdist (`make test` runs `-n 2 --dist loadfile`: each test file runs on one worker), the quick run is made
once for all workers (a file lock; each worker then works on its own copy of the folder); the docs site and the
own-logs run are each used by one file only, so one worker pays for each. The files that make the expensive fixtures
are handed out first (`FIRST`), so they do not end the run late."""
import os, shutil, sys, warnings
from pathlib import Path
# Byte-code caching on, for this process, the xdist workers and every subprocess a test starts: with PYTHONDONTWRITEBYTECODE
# set (as in many containers) and the environment installed with `pip --no-compile` (tools/setup-env.sh), every Python
# process compiled torch, transformers, pandas and scikit-learn from source again, about 6 s of one core each; the cached
# .pyc files (in .venv and the repository's __pycache__ folders, both git-ignored) are read even where writing is off.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from docs.browser import find_chromium  # noqa: E402

NO_CHROMIUM = "headless Chromium not installed: `make setup-browser` (Debian packages chromium, chromium-driver)"
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason=NO_CHROMIUM)
WINDOW = (1280, 900)    # the `browser` fixture's window at the start of every test


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long (end-to-end demo and example runs, kills in every stage, "
                                       "retraining); excluded from the default tier (-m 'not slow'), run by `make test-slow`")


# the test files that pay for the session's expensive fixtures (the docs site; the quick run; the own-logs run) and the
# longest ones: collected first, so pytest-xdist's `--dist loadfile --no-loadscope-reorder` starts them first
# (test_bert.py third: the worker done with the docs site takes it while the other is still making the quick run, which
# test_report_browser.py and test_faults.py then find made, instead of waiting on its lock)
FIRST = ("test_docsite.py", "test_pipeline.py", "test_bert.py", "test_report_browser.py", "test_faults.py", "test_files.py",
         "test_baselines.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda it: rank.get(it.path.name, len(FIRST)))   # stable: the order within a file is kept


@pytest.fixture(scope="session")
def movielens():
    from causal_llmrec.data import load_movielens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_movielens()


def _shared_root(tmp_path_factory):
    "The folder every xdist worker of this session sees (the session's base temp without xdist)."
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(tmp_path_factory):
    """The session's quick run (tiny BERT, 40 users; `PipelineConfig.quick()`): whichever test asks first pays for it.
    Under xdist one worker makes it (the others wait on a file lock) and each worker reads and writes its own copy of
    the folder, so the run folder's own writer lock never sees two workers; every worker gets the maker's RunResult."""
    import dataclasses, pickle
    from filelock import FileLock
    from causal_llmrec.pipeline import PipelineConfig, run_pipeline
    master = _shared_root(tmp_path_factory) / "quick-run"
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return master, run_pipeline(out=master, config=PipelineConfig.quick(), progress=False)
    made = Path(str(master) + ".result.pkl")     # beside the run folder, not in it (a run folder never holds a pickle)
    with FileLock(str(master) + ".lock"):
        if not made.exists(): made.write_bytes(pickle.dumps(run_pipeline(out=master, config=PipelineConfig.quick(), progress=False)))
    out = tmp_path_factory.getbasetemp() / "quick-run"
    if not out.exists(): shutil.copytree(master, out)
    return out, dataclasses.replace(pickle.loads(made.read_bytes()), out=out)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    "(run folder, RunResult) of the session's quick run; tests that change a run work on a copy of the folder."
    return shared_run(tmp_path_factory)


# a run on own logs without a truth: tiny settings, so the whole pipeline runs in well under a minute; the encoder frozen
# (the default: encoder_steps 0; fine-tuning inside a run is the quick run's, encoder_steps 10), which spares the train stage
# a second cross-validation of its logistic start
TINY = {"discover": {"max_rows": 500}, "train": {"encoder": "tiny", "max_length": 32, "encoder_steps": 0, "head_epochs": 5, "cross_fit_folds": 2},
        "evaluate": {"baselines": ["popularity", "click_gb"]}, "report": {"n_example_users": 2}}
CLI_ENV = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def own_logs_run(tmp_path_factory):
    """A run on own logs without a truth, made with the command line's own `main` (in this process; test_examples.py's
    slow tier runs the same two commands as subprocesses): `example-data movielens --users 40`, then `demo --data` with
    tiny settings."""
    import contextlib, io, yaml
    from causal_llmrec.cli import main
    tmp = tmp_path_factory.mktemp("own-logs")
    data, run = tmp / "data", tmp / "run"
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    for args in (["example-data", "movielens", data, "--users", 40],
                 ["demo", "--data", data, "--config", tmp / "tiny.yaml", "--out", run, "--no-progress"]):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
        assert rc == 0, f"{args[0]}: status {rc}\n{err.getvalue()[-3000:]}"
    return run


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory):
    "The docs site, built once (`mkdocs build --strict` from nbdev's processed notebooks, then the HTML's link check)."
    from docs import build as B
    return B.build_site(tmp_path_factory.mktemp("docs") / "_site", ROOT, n_workers=2)


@pytest.fixture(scope="session")
def _chromium():
    if find_chromium() is None: pytest.skip(NO_CHROMIUM)
    from docs.browser import Browser
    with Browser(size=WINDOW) as b:
        yield b


@pytest.fixture
def browser(_chromium):
    "The session's headless Chromium (`tools/docs/browser.py`'s `Browser`), on a blank page in a 1280x900 window."
    _chromium.resize(WINDOW).block([])
    _chromium.send("Page.navigate", url="about:blank")
    return _chromium

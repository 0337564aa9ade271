"""Shared test setup: offline model hubs, the `slow` marker (run by `make test-slow`), and the session's fixtures: the
MovieLens tables and the quick pipeline run that test_pipeline.py, test_runner.py, test_cli.py, test_faults.py and
test_report_browser.py read (made once per session, in one folder)."""
import os, warnings
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long (end-to-end demo and example runs, kills in every stage, "
                                       "retraining); excluded from the default tier (-m 'not slow'), run by `make test-slow`")

@pytest.fixture(scope="session")
def movielens():
    from causal_llmrec.data import load_movielens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_movielens()


def shared_run(tmp_path_factory):
    """The session's quick run (tiny BERT, 40 users; `PipelineConfig.quick()`) in one folder under the session's base
    temp: whichever test asks first pays for it, later calls reuse every stage."""
    from causal_llmrec.pipeline import PipelineConfig, run_pipeline
    out = tmp_path_factory.getbasetemp() / "quick-run"
    res = run_pipeline(out=out, config=PipelineConfig.quick(), progress=False)
    return out, res


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    "(run folder, RunResult) of the session's quick run; tests that change a run work on a copy of the folder."
    return shared_run(tmp_path_factory)

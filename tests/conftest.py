import os, warnings
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; excluded from the default run (-m 'not slow')")

@pytest.fixture(scope="session")
def movielens():
    from causal_llmrec.data import load_movielens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_movielens()

"""The compute setting: validation, the memory check that refuses a too-large log before reading it, and the engine's map on both paths."""
import numpy as np, pandas as pd, pytest
from causal_llmrec.compute import (ComputeConfig, ComputeError, Engine, LogTooLargeError, check_fits, estimate_memory,
                                   machine_resources, parse_bytes, engine)

@pytest.fixture(scope='module')
def log(tmp_path_factory):
    t = tmp_path_factory.mktemp('log'); rng = np.random.default_rng(0)
    for day in ('2026-01-01', '2026-01-02', '2026-01-03'):
        (t/f'day={day}').mkdir()
        pd.DataFrame({'user_id': rng.integers(0, 100, 20_000), 'exposure': rng.integers(0, 2, 20_000).astype(np.int8),
                      'outcome': rng.random(20_000), 'title': [f'item {i}' for i in rng.integers(0, 500, 20_000)]}).to_parquet(t/f'day={day}'/'part-0.parquet')
    return t

@pytest.mark.parametrize('kw, words', [
    (dict(engine='ray'), 'engine must be one of'), (dict(engine='local', address='tcp://h:1'), "needs engine='dask'"),
    (dict(engine='dask', n_workers=0), 'n_workers must be an integer >= 1'), (dict(engine='dask', threads_per_worker=True), 'threads_per_worker'),
    (dict(engine='dask', memory_limit='many'), "cannot read 'many'"), (dict(memory_fraction=1.5), 'memory_fraction'),
    (dict(engine='dask', address=''), 'address must be'),
])
def test_bad_settings_are_named(kw, words):
    with pytest.raises(ComputeError, match=None) as e: ComputeConfig(**kw)
    assert words in str(e.value)

def test_parse_bytes():
    assert parse_bytes('2GB') == 2_000_000_000 and parse_bytes('1GiB') == 2**30 and parse_bytes(512) == 512
    with pytest.raises(ComputeError): parse_bytes('-1GB')

def test_estimate_is_close_to_the_real_frame(log):
    est = estimate_memory(log)
    df = pd.concat([pd.read_parquet(p) for p in sorted(log.rglob('*.parquet'))])
    real = df.memory_usage(index=False, deep=True).sum() + 3 * 20_000 * 8          # the partition key becomes a column too
    assert est['rows'] == 60_000 and est['parts'] == 3 and 0.7 * real < est['bytes'] < 1.5 * real
    assert set(est['columns']) == {'user_id', 'exposure', 'outcome', 'title', 'day'}
    assert estimate_memory(log, ['exposure'])['bytes'] < est['bytes'] / 5        # column pruning counts

def test_too_large_is_refused_before_reading(log):
    with pytest.raises(LogTooLargeError) as e: check_fits(log, available=1_000_000)
    msg = str(e.value)
    assert '60,000 rows in 3 Parquet part(s)' in msg and 'engine: dask' in msg
    assert isinstance(e.value, MemoryError)
    assert check_fits(log, available=machine_resources()['memory_total'])['rows'] == 60_000

def _n(path): return len(pd.read_parquet(path, columns=['exposure']))

def test_local_and_dask_map_agree(log):
    parts = sorted(str(p) for p in log.rglob('*.parquet'))
    with Engine() as loc: a = loc.map(_n, parts)
    with Engine(dict(engine='dask', n_workers=2), verbose=False) as eng:
        assert eng.n_workers == 2 and 'dashboard' in eng.describe() and eng.dashboard_link.endswith('/status')
        b = eng.map(_n, parts)
        h = eng.submit(_n, parts); assert eng.gather(eng.pick(eng.submit(divmod, h, 7), 1)) == [20_000 % 7] * 3
        assert engine(eng) is eng
    assert a == b == [20_000] * 3

def test_unreachable_cluster_is_a_clear_error(monkeypatch):
    import causal_llmrec.compute as C
    monkeypatch.setattr(C, '_CONNECT_TIMEOUT', '1s')       # nothing listens there: no need to wait the full 10 s
    with pytest.raises(ComputeError, match='cannot reach the Dask scheduler'): Engine(dict(engine='dask', address='tcp://127.0.0.1:9'))

def test_in_process_workers(log):
    "processes=False: the embedded cluster's workers are threads of this process (quick to start, for small logs and tests)."
    parts = sorted(str(p) for p in log.rglob('*.parquet'))
    with Engine(dict(engine='dask', n_workers=1, processes=False), verbose=False) as eng:
        assert eng.cluster is not None and eng.n_workers == 1 and eng.map(_n, parts) == [20_000] * 3
    with pytest.raises(ComputeError, match='processes must be true or false'): ComputeConfig(processes='no')
    with pytest.raises(LogTooLargeError, match=r'more than 1e-05% of the'): check_fits(log, config=ComputeConfig(memory_fraction=1e-7))

"""The pipeline's `compute` setting: the estimate stage on Dask over a Parquet log's parts gives the in-memory stage's
matching and IPW estimates (to 1e-9), AIPW with its own folds and the same balance before adjustment; bad settings and a
log too large for the in-memory path are refused before any data are read; `--compute dask` and `--compute-address` set the setting from the command line."""
import json, warnings
from pathlib import Path

import numpy as np, pandas as pd, pytest, yaml

from causal_llmrec.compute import ComputeConfig, LogTooLargeError, _dataset
from causal_llmrec.pipeline import DASK_AIPW_FOLDS, PipelineConfig, check_compute, run_pipeline
from causal_llmrec.scale import aipw_in_memory, simulate_log
from causal_llmrec.settings import ConfigError

DASK = dict(engine='dask', n_workers=1, processes=False)    # one in-process worker: starts in about a second


def write_log(folder:Path, n_rows=20_000, seed=3)->Path:
    """A files dataset: the simulated impression log as 4 hive-partitioned Parquet parts (one row per (user, item) pair),
    users.parquet and items.parquet holding the covariates the log's rows get by their ids."""
    simulate_log(folder/'interactions', n_rows=n_rows, n_parts=4, days=2, n_users=3_000, n_items=400, seed=seed)
    full = _dataset(folder/'interactions').to_table().to_pandas()
    keep = ~full.duplicated(['user_id', 'item_id']).to_numpy(); at = 0
    for p in _dataset(folder/'interactions').files:              # the dataset's reading order
        d = pd.read_parquet(p); k = keep[at:at + len(d)]; at += len(d)
        d[k].drop(columns=['user_age', 'user_activity', 'item_popularity', 'item_age', 'mu0', 'mu1']).to_parquet(p, index=False)
    full = full[keep]
    full.groupby('user_id')[['user_age', 'user_activity']].first().rename(columns=lambda c: c[5:]).reset_index().to_parquet(folder/'users.parquet', index=False)
    full.groupby('item_id')[['item_popularity', 'item_age']].first().rename(columns=lambda c: c[5:]).reset_index().to_parquet(folder/'items.parquet', index=False)
    return folder


def settings(log, **compute):
    return PipelineConfig.from_dict(dict(data={'source': 'files', 'path': str(log)}, discover={'max_rows': 500},
                                         estimate={'adjustment': 'all'}, compute=compute))


@pytest.fixture(scope='module')
def log(tmp_path_factory):
    return write_log(tmp_path_factory.mktemp('cp')/'log')


@pytest.fixture(scope='module')
def runs(log, tmp_path_factory):
    "The estimate stage on the same log, in memory and on Dask: (folder, RunResult) of each."
    t = tmp_path_factory.mktemp('runs'); out = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, comp in (('local', {}), ('dask', DASK)):
            out[name] = t/name, run_pipeline(out=t/name, config=settings(log, **comp), until='estimate', progress=False)
    return out


def effects(folder): return pd.read_csv(Path(folder)/'estimate'/'effects.csv').set_index('method')


def test_dask_estimate_equals_local(runs):
    (dl, rl), (dd, rd) = runs['local'], runs['dask']
    L, D = effects(dl), effects(dd)
    assert list(D.index) == ['matching', 'IPW', 'AIPW', 'IPW (logged propensities)']
    for m in ('matching', 'IPW', 'IPW (logged propensities)'):        # deterministic estimators: the same to rounding
        assert abs(L.estimate[m] - D.estimate[m]) < 1e-9 and abs(L.se[m] - D.se[m]) < 1e-9, (m, L.estimate[m], D.estimate[m], L.se[m], D.se[m])
        assert (L.n_treated[m], L.n_control[m]) == (D.n_treated[m], D.n_control[m])
    assert L.n_discarded['matching'] == D.n_discarded['matching'] > 0          # the caliper (0.2 SD) drops the same units
    assert 'caliper 0.2' in D.method_detail['matching'] and 'over 4 Parquet parts' in D.method_detail['IPW']
    # the stage's key covers the compute setting; the stages before it are shared
    keys = {n: r.stages.set_index('stage').key for n, (_, r) in runs.items()}
    assert keys['local']['estimate'] != keys['dask']['estimate'] and keys['local']['data'] != keys['dask']['data']   # the data stage differs too: on Dask it never reads the log whole
    s = json.loads((dd/'estimate'/'summary.json').read_text())
    assert s['compute']['engine'] == 'dask' and s['compute']['workers'] == 1 and s['compute']['parts'] == 4
    assert s['compute']['dashboard'].endswith('/status') and 'effects by segment' in s['compute']['in_memory_only']
    assert yaml.safe_load((dd/'config.yaml').read_text())['compute']['engine'] == 'dask'
    # balance before adjustment is the same table on both paths (after: matching in memory, inverse-propensity weighting on Dask)
    bl, bd = (pd.read_csv(f/'estimate'/'balance.csv', index_col=0) for f in (dl, dd))
    cols = ['mean_treated', 'mean_control', 'smd_before', 'var_ratio_before']
    assert (bl[cols] - bd.loc[bl.index, cols]).abs().max().max() < 1e-9 and (dd/'estimate'/'overlap.png').exists()
    assert abs(s['max_abs_smd_before'] - json.loads((dl/'estimate'/'summary.json').read_text())['max_abs_smd_before']) < 1e-9


def test_dask_aipw_is_its_in_memory_reference(runs):
    "AIPW on Dask cross-fits on `fold_ids` of the row positions: equal to `aipw_in_memory` with those folds, and close to the in-memory stage's."
    (dl, _), (dd, _) = runs['local'], runs['dask']
    frame = pd.read_parquet(dd/'data'/'frame.parquet').reset_index(drop=True)
    adj = json.loads((dd/'estimate'/'summary.json').read_text())['adjustment_set']
    assert adj == ['user_age', 'user_activity', 'item_popularity', 'item_age']
    ref = aipw_in_memory(frame, 'exposure', 'outcome', adj, estimand='ATT', n_folds=DASK_AIPW_FOLDS, seed=0)
    D, L = effects(dd), effects(dl)
    assert abs(D.estimate['AIPW'] - ref[0]) < 1e-9 and abs(D.se['AIPW'] - ref[1]) < 1e-9
    assert abs(D.estimate['AIPW'] - L.estimate['AIPW']) < 0.25 * L.se['AIPW']     # other folds, the same effect


@pytest.mark.parametrize('bad, words', [
    ({'compute': {'engine': 'spark'}}, "setting compute.engine must be one of 'local', 'dask', got 'spark'"),
    ({'compute': {'engine': 'dask'}}, "needs data.source 'files'"),
    ({'compute': {'address': 'tcp://10.0.0.5:8786'}}, "setting compute: address='tcp://10.0.0.5:8786' needs engine='dask'"),
    ({'compute': {'engine': 'dask', 'n_workers': 0}}, "setting compute.n_workers must be in [1, 100000], got 0"),
    ({'compute': {'memory_limit': '4 lots'}}, "cannot read '4 lots' as a memory size"),
    ({'compute': {'processes': 'no'}}, "setting compute.processes must be true or false"),
    ({'compute': {'engin': 'dask'}}, "unknown setting compute.engin (did you mean 'engine'?)"),
])
def test_bad_compute_settings_are_named(bad, words):
    with pytest.raises(ConfigError) as e: PipelineConfig.from_dict(bad)
    assert words in str(e.value)


def test_the_settings_are_compute_config():
    cfg = PipelineConfig()
    assert isinstance(cfg.compute, ComputeConfig) and cfg.compute == ComputeConfig() and cfg.compute.engine == 'local'
    text = cfg.to_yaml()
    assert 'compute:  # Where the work runs' in text and "  engine: local  # 'local': in memory" in text and '  address: null' in text
    c = PipelineConfig.from_dict({'data': {'source': 'files', 'path': 'x'}, 'compute': {'engine': 'dask', 'address': 'tcp://h:8786', 'memory_limit': '4GB'}})
    assert PipelineConfig.from_dict(yaml.safe_load(c.to_yaml())) == c and c.diff(PipelineConfig()) [0] == "compute.address: None -> 'tcp://h:8786'"


def test_logs_the_dask_path_cannot_read_are_refused(log, tmp_path):
    csv = tmp_path/'csvlog'; csv.mkdir()
    pd.read_parquet(log/'interactions').drop(columns='day').to_csv(csv/'interactions.csv', index=False)
    with pytest.raises(ConfigError, match="'interactions.csv', not Parquet"): check_compute(settings(csv, **DASK))
    (tmp_path/'spec.yaml').write_text(f"interactions: {log/'interactions'}\ntreatment: position\n")
    with pytest.raises(ConfigError, match="treatment 'position' is built from the whole log"): check_compute(settings(tmp_path/'spec.yaml', **DASK))
    assert check_compute(settings(log))['rows'] == len(pd.read_parquet(log/'interactions'))


def test_too_large_log_is_refused_before_reading(log, tmp_path):
    with pytest.raises(LogTooLargeError) as e:
        run_pipeline(out=tmp_path/'run', config=settings(log, memory_fraction=1e-7), progress=False)
    assert 'compute.engine: dask' in str(e.value) and '4 Parquet part(s)' in str(e.value)
    assert not (tmp_path/'run').exists()                    # nothing read, nothing written
    assert check_compute(settings(log, **DASK, memory_fraction=1e-7))['rows'] == len(pd.read_parquet(log/'interactions'))   # on Dask: read part by part, no limit


def test_cli_compute_flags(log, runs, tmp_path, capsys):
    from causal_llmrec.cli import _config, _parser, main
    a = _parser().parse_args(['estimate', '--data', str(log), '--compute', 'dask', '--compute-address', 'tcp://10.0.0.5:8786'])
    c = _config(a).compute
    assert (c.engine, c.address) == ('dask', 'tcp://10.0.0.5:8786')
    assert _config(_parser().parse_args(['demo', '--data', str(log), '--compute-address', 'tcp://h:1'])).compute.engine == 'dask'
    assert _config(_parser().parse_args(['demo', '--data', str(log)])).compute.engine == 'local'
    with pytest.raises(SystemExit): _parser().parse_args(['demo', '--compute', 'spark'])
    capsys.readouterr()
    assert main(['estimate', '--out', str(tmp_path/'q'), '--quick', '--compute', 'dask']) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: setting compute.engine 'dask'") and err.count('\n') == 1
    # the flag on top of a settings file (one in-process worker), end to end: the Dask run's estimates
    (tmp_path/'c.yaml').write_text(yaml.safe_dump({'discover': {'max_rows': 500}, 'estimate': {'adjustment': 'all'},
                                                   'compute': {'n_workers': 1, 'processes': False}}))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rc = main(['estimate', '--out', str(tmp_path/'cli'), '--data', str(log), '--config', str(tmp_path/'c.yaml'), '--compute', 'dask', '--no-progress'])
    assert rc == 0, capsys.readouterr().err
    pd.testing.assert_frame_equal(effects(tmp_path/'cli')[['estimate', 'se']], effects(runs['dask'][0])[['estimate', 'se']], rtol=0, atol=1e-12)


def test_the_pipelines_working_set_is_refused(log, tmp_path, monkeypatch):
    """The in-memory path counts the pipeline's working set (PIPELINE_MEMORY_BASE + PIPELINE_MEMORY_FACTOR x the log's role
    columns), not the columns alone: a log that fits as read but not as the pipeline holds it is refused, within a second, naming dask."""
    import time
    import causal_llmrec.compute as C
    from causal_llmrec.pipeline import PIPELINE_MEMORY_BASE, PIPELINE_MEMORY_FACTOR
    est = check_compute(settings(log))
    need = PIPELINE_MEMORY_BASE + PIPELINE_MEMORY_FACTOR * est['bytes']
    assert est['needed'] == int(need) and est['bytes'] == 26 * est['rows']        # ids 8 + 8, exposure 1, outcome 1, propensity 8 bytes a row
    avail = int(1.2 * need)                                 # 60% of it holds the log many times over, but not the pipeline's working set
    assert est['bytes'] < 0.6 * avail < need
    monkeypatch.setattr(C, 'machine_resources', lambda: dict(cpus=2, memory_available=avail, memory_total=avail))
    t = time.perf_counter()
    with pytest.raises(LogTooLargeError) as e: run_pipeline(out=tmp_path/'run', config=settings(log), progress=False)
    assert time.perf_counter() - t < 5 and not (tmp_path/'run').exists()
    msg = str(e.value)
    assert 'the in-memory pipeline about' in msg and f"{PIPELINE_MEMORY_FACTOR:g} x the log" in msg and 'compute.engine: dask' in msg
    assert check_compute(settings(log, memory_fraction=1.0))['needed'] == int(need)       # a larger share of memory: it fits
    assert check_compute(settings(log, **DASK))['engine'] == 'dask'                      # on Dask: no limit on the log's size

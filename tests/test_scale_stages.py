"""The pipeline's stages on Dask without the log in memory: the data stage's sums over parts and its stratified sample
(the rule: exposure x outcome strata keep max(1, round(n N_s / N)) rows, by a position hash), balance and overlap equal to
`matching.balance_table` and `np.histogram` in memory, top-k by uplift over the catalogue in blocks equal to ranking all
pairs at once, and the pipeline from data to recommend on Dask with the whole-log reader switched off."""
import json, warnings
from pathlib import Path

import numpy as np, pandas as pd, pytest

from causal_llmrec import pipeline as PL, scale as SC
from causal_llmrec.compute import Engine, _dataset
from causal_llmrec.matching import balance_table
from causal_llmrec.runner import PipelineError
from causal_llmrec.weighting import _weights

DASK = dict(engine='dask', n_workers=1, processes=False)
COVS = SC.SIM_COVARIATES


@pytest.fixture(scope='module')
def ds(tmp_path_factory):
    "A files dataset: 20,000 impressions in 4 parts (distinct pairs, ids only) with users.parquet and items.parquet."
    root = tmp_path_factory.mktemp('ds')/'ds'
    SC.simulate_log(root, n_rows=20_000, n_parts=4, n_users=3_000, n_items=400, seed=3, tables=True)
    return root


@pytest.fixture(scope='module')
def tabs(ds):
    users = pd.read_parquet(ds/'users.parquet').set_index('user_id').add_prefix('user_')
    items = pd.read_parquet(ds/'items.parquet').set_index('item_id').add_prefix('item_')
    full = _dataset(ds/'interactions').to_table().to_pandas().drop(columns='day')
    return users, items, full, full.join(users, on='user_id').join(items, on='item_id')


def test_tables_dataset(ds, tabs):
    users, items, full, _ = tabs
    assert len(full) == 20_000 and not full.duplicated(['user_id', 'item_id']).any()
    assert list(full.columns) == ['user_id', 'item_id', 'exposure', 'outcome', 'propensity']
    assert list(users.columns) == ['user_age', 'user_activity'] and len(users) == 3_000 and len(items) == 400
    with pytest.raises(ValueError, match='raise n_users or n_items'): SC.simulate_log(ds.parent/'small', n_rows=10_000, n_parts=2, n_users=4, n_items=10, tables=True)


def test_log_summary_is_the_sums_in_memory(ds, tabs):
    users, items, full, J = tabs
    s = SC.log_summary(ds/'interactions', 'exposure', 'outcome', COVS, features={'user_id': users, 'item_id': items})
    assert s['rows'] == 20_000 and s['parts'] == 4 and s['binary_outcome']
    assert s['exposed'] == full.exposure.mean() and abs(s['outcome_mean'] - full.outcome.mean()) < 1e-15
    assert s['strata'].rows.tolist() == full.groupby(['exposure', 'outcome']).size().tolist()
    cv = s['covariates']
    assert np.allclose(cv.min_treated, J[J.exposure == 1][COVS].min()) and np.allclose(cv.max_control, J[J.exposure == 0][COVS].max())


@pytest.mark.parametrize('n', [500, 37])
def test_stratified_sample_rule(ds, tabs, n):
    "Each exposure x outcome stratum keeps max(1, round(n * N_s / N)) rows, as the in-memory discover stage's rule; the rows are the log's."
    full = tabs[2]
    smp = SC.stratified_sample(ds/'interactions', 'exposure', 'outcome', n, seed=0)
    rule = full.groupby(['exposure', 'outcome']).size().map(lambda g: max(1, int(round(n / len(full) * g))))
    assert (smp.groupby(['exposure', 'outcome']).size() == rule).all() and len(smp) == rule.sum()
    assert smp.pos.is_monotonic_increasing
    pd.testing.assert_frame_equal(full.iloc[smp.pos].reset_index(drop=True), smp.drop(columns='pos'), check_dtype=False)


def test_stratified_sample_does_not_depend_on_parts_or_workers(ds, tabs, tmp_path):
    "The key is a hash of the global position: the same rows from one file, from four parts, locally or on a Dask worker."
    one = tmp_path/'one.parquet'; tabs[2].to_parquet(one, index=False)
    a = SC.stratified_sample(ds/'interactions', 'exposure', 'outcome', 300, seed=5)
    b = SC.stratified_sample(one, 'exposure', 'outcome', 300, seed=5)
    with Engine(DASK, verbose=False) as eng: c = SC.stratified_sample(ds/'interactions', 'exposure', 'outcome', 300, seed=5, compute=eng)
    assert a.pos.tolist() == b.pos.tolist() == c.pos.tolist()
    assert SC.stratified_sample(ds/'interactions', 'exposure', 'outcome', 300, seed=6).pos.tolist() != a.pos.tolist()
    assert len(SC.stratified_sample(ds/'interactions', 'exposure', 'outcome', 10**6)) == 20_000        # n >= N: every row
    with pytest.raises(ValueError, match='n_rows must be a positive integer'): SC.stratified_sample(one, 'exposure', 'outcome', 0)


@pytest.mark.parametrize('estimand', ['ATT', 'ATE'])
def test_balance_and_overlap_equal_in_memory(ds, tabs, estimand):
    users, items, _, J = tabs
    feats = {'user_id': users, 'item_id': items}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        lp = SC.fit_logistic(ds/'interactions', 'exposure', COVS, features=feats)
        with Engine(DASK, verbose=False) as eng:
            d = SC.diagnostics_scale(ds/'interactions', 'exposure', COVS, propensity=lp, estimand=estimand, features=feats, compute=eng)
    ps = lp.predict_proba(J[COVS].to_numpy())[:, 1]
    ref = balance_table(J, 'exposure', COVS, weights=_weights(np.clip(ps, 1e-3, 1 - 1e-3), J.exposure.to_numpy(), estimand), estimand=estimand)
    assert list(d['balance'].columns) == list(ref.columns) and list(d['balance'].index) == COVS
    assert (d['balance'] - ref).abs().max().max() < 1e-9
    for k in ('ess_treated', 'ess_control'): assert abs(d['balance'].attrs[k] - ref.attrs[k]) < 1e-6 * ref.attrs[k]
    edges = np.linspace(0, 1, 41); t = J.exposure.to_numpy() == 1
    assert d['overlap'].treated.tolist() == np.histogram(ps[t], edges)[0].tolist()
    assert d['overlap'].control.tolist() == np.histogram(ps[~t], edges)[0].tolist()
    assert abs(d['balance'].smd_after).max() < abs(d['balance'].smd_before).max()       # weighting balances
    d2 = SC.diagnostics_scale(ds/'interactions', 'exposure', COVS, score='propensity', features=feats)     # a score column: no model
    assert d2['overlap'][['treated', 'control']].to_numpy().sum() == 20_000


def test_topk_uplift_equals_ranking_all_pairs(ds, tabs):
    users, items, _, _ = tabs
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m0, m1 = SC.fit_logistic(ds/'interactions', 'outcome', COVS, features={'user_id': users, 'item_id': items},
                                 subsets=[dict(target='outcome', arm=g, treatment='exposure') for g in (0, 1)])
    allp = pd.MultiIndex.from_product([users.index, items.index], names=['user_id', 'item_id']).to_frame(index=False)
    X = allp.join(users, on='user_id').join(items, on='item_id')[COVS].to_numpy()
    allp = allp.assign(q1=m1.predict_proba(X)[:, 1], q0=m0.predict_proba(X)[:, 1]); allp['tau'] = allp.q1 - allp.q0
    with Engine(DASK, verbose=False) as eng:
        top = SC.topk_uplift(users, items, {0: m0, 1: m1}, COVS, k=7, by=['uplift', 'outcome'], block_users=450, compute=eng)
    for by, col in (('uplift', 'tau'), ('outcome', 'q1')):
        ref = allp.sort_values(['user_id', col, 'item_id'], ascending=[True, False, True], kind='mergesort').groupby('user_id').head(7)
        got = top[top.by == by]
        assert got[['user_id', 'item_id']].to_numpy().tolist() == ref[['user_id', 'item_id']].to_numpy().tolist()
        assert np.abs(got.score.to_numpy() - ref[col].to_numpy()).max() < 1e-12 and got['rank'].tolist() == list(range(1, 8)) * len(users)
    local = SC.topk_uplift(users, items, {0: m0, 1: m1}, COVS, k=7, block_users=3_000)          # one block, in this process
    pd.testing.assert_frame_equal(local, top[top.by == 'uplift'].drop(columns='by').reset_index(drop=True))
    with pytest.raises(ValueError, match=r"covariate\(s\) \['nope'\]"): SC.topk_uplift(users, items, {0: m0, 1: m1}, COVS[:3] + ['nope'])
    with pytest.raises(ValueError, match="by must be"): SC.topk_uplift(users, items, {0: m0, 1: m1}, COVS, by='blend')


def test_ties_go_to_the_item_listed_first():
    from causal_llmrec.weighting import LogisticPropensity
    u = pd.DataFrame({'u': [0.0, 1.0]}, index=[10, 11]); it = pd.DataFrame({'i': [1.0, 2.0, 2.0, 0.0]}, index=[5, 6, 7, 8])
    m = {}
    for g, c in ((0, [0.0, 0.0]), (1, [0.1, 0.5])): m[g] = LogisticPropensity(); m[g].coef_ = np.array(c); m[g].intercept_ = 0.0
    top = SC.topk_uplift(u, it, m, ['u', 'i'], k=2)
    assert top.item_id.tolist() == [6, 7, 6, 7]


def test_pipeline_on_dask_never_reads_the_log_whole(ds, tabs, tmp_path, monkeypatch):
    "data -> discover -> estimate -> train -> recommend on Dask with `load_data` (the whole-log reader) switched off."
    import causal_llmrec.files as F
    def refuse(*a, **k): raise AssertionError('load_data read the whole log')
    monkeypatch.setattr(F, 'load_data', refuse)
    monkeypatch.setattr(PL, 'DASK_SAMPLE_ROWS', 2_000)
    users, items, full, J = tabs
    cfg = PL.PipelineConfig.from_dict(dict(data={'source': 'files', 'path': str(ds)}, discover={'max_rows': 500}, estimate={'adjustment': 'all'}, compute=DASK))
    out = tmp_path/'run'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        PL.run_pipeline(out=out, config=cfg, until='estimate', progress=False)
        PL.run_pipeline(out=out, config=cfg, until='recommend', progress=False)
    s = json.loads((out/'data'/'summary.json').read_text())
    assert s['n_pairs'] == 20_000 and s['covariates'] == COVS and s['compute']['parts'] == 4 and abs(s['exposure_rate'] - full.exposure.mean()) < 1e-12
    frame = pd.read_parquet(out/'data'/'frame.parquet')
    rule = full.groupby(['exposure', 'outcome']).size().map(lambda g: max(1, int(round(2_000 / 20_000 * g))))
    assert (frame.groupby(['exposure', 'outcome']).size() == rule).all() and COVS[0] in frame
    st = pd.read_csv(out/'data'/'strata.csv'); assert st.rows.tolist() == full.groupby(['exposure', 'outcome']).size().tolist() and st.sampled.tolist() == rule.tolist()
    assert 'stratified by exposure x outcome' in json.loads((out/'discover'/'summary.json').read_text())['sample_of_log']
    e = json.loads((out/'estimate'/'summary.json').read_text())
    assert e['max_abs_smd_before'] > 0.1 and 'balance table' not in ' '.join(e['compute']['in_memory_only'])
    bal = pd.read_csv(out/'estimate'/'balance.csv', index_col=0)
    ref = balance_table(J, 'exposure', COVS)
    assert (bal[['smd_before', 'var_ratio_before']] - ref[['smd_before', 'var_ratio_before']]).abs().max().max() < 1e-9
    m = json.loads((out/'train'/'uplift_model.json').read_text())
    rec = pd.read_csv(out/'recommend'/'recommendations.csv')
    assert rec.user_id.nunique() == 3_000 and (rec.groupby('user_id').size() == 10).all()
    exp = SC.topk_uplift(users, items, PL._uplift_models(m), m['covariates'], k=10)
    assert rec[['user_id', 'item_id']].to_numpy().tolist() == exp[['user_id', 'item_id']].to_numpy().tolist()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); PL.run_pipeline(out=out, config=cfg, until='evaluate', progress=False)    # the off-policy stage on Dask
    pv = pd.read_csv(out/'evaluate'/'policy_values.csv')
    assert set(pv.policy) == {'top-10 by uplift', 'top-10 by click probability (baseline)', 'logged'} and set(pv.estimator) == {'IPS', 'SNIPS', 'DM', 'DR', 'on-policy mean'}
    got = pv[pv.policy == 'top-10 by uplift'].set_index('estimator').value
    ref = _ope_in_memory(J, rec[rec['rank'] <= 10], PL._uplift_models(m), m['covariates'])
    assert (got - ref[got.index]).abs().max() < 1e-12
    assert abs(pv[pv.policy == 'logged'].value.iloc[0] - full.outcome.mean()) < 1e-15
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); PL.run_pipeline(out=out, config=cfg, until='report', progress=False)     # the report of what ran
    assert (out/'report'/'report.html').stat().st_size > 10_000


def _ope_in_memory(J, chosen, models, covs):
    "IPS, SNIPS, DM, DR of the policy 'show the chosen pairs' by `ope.off_policy_value` on the whole log in memory (actions: not shown, shown)."
    from causal_llmrec.ope import off_policy_value
    T = J.exposure.to_numpy(); X = J[covs].to_numpy()
    lg = J.assign(p_logged=np.where(T == 1, J.propensity, 1 - J.propensity))
    pi = pd.MultiIndex.from_frame(J[['user_id', 'item_id']]).isin(pd.MultiIndex.from_frame(chosen[['user_id', 'item_id']])).astype(float)
    acts = list(pd.unique(lg.exposure))
    Q = np.column_stack([models[a].predict_proba(X)[:, 1] for a in acts])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = off_policy_value(lg, pd.DataFrame({1: pi, 0: 1 - pi}), action='exposure', propensity='p_logged', position=None, reward_model=Q, n_boot=2)
    return r.estimates.value


def test_policy_values_equal_in_memory_and_cover_the_truth(ds, tabs):
    "IPS/SNIPS/DM/DR over the parts (on a Dask worker) equal `ope.off_policy_value` on the log in memory; string ids take the MultiIndex path."
    users, items, full, J = tabs
    feats = {'user_id': users, 'item_id': items}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m0, m1 = SC.fit_logistic(ds/'interactions', 'outcome', COVS, features=feats, subsets=[dict(target='outcome', arm=g, treatment='exposure') for g in (0, 1)])
    top = SC.topk_uplift(users, items, {0: m0, 1: m1}, COVS, k=40)
    rnd = J.sample(3_000, random_state=1)[['user_id', 'item_id']]            # a policy that shows many logged pairs
    with Engine(DASK, verbose=False) as eng:
        pv = SC.policy_value_scale(ds/'interactions', 'exposure', 'outcome', {'top-40': top, 'random': rnd}, covariates=COVS,
                                   models={0: m0, 1: m1}, features=feats, compute=eng)
    for name, ch in (('top-40', top), ('random', rnd)):
        got = pv[pv.policy == name].set_index('estimator')
        ref = _ope_in_memory(J, ch, {0: m0, 1: m1}, COVS)
        assert (got.value - ref[got.index]).abs().max() < 1e-12, name
    g = pv[pv.policy == 'random'].set_index('estimator')
    assert g.shown.iloc[0] == 3_000 and round(g.loc['IPS', 'value'], 4) == 0.2048 and 0 < g.loc['SNIPS', 'se'] < g.loc['IPS', 'se']
    truth = SC.sim_policy_truth(ds, {'random': rnd})
    assert round(truth['random'], 4) == 0.1998 and round(truth['logged'], 4) == 0.2347
    assert g.loc['DR', 'ci_low'] <= truth['random'] <= g.loc['DR', 'ci_high']
    # string ids: the same values through the MultiIndex lookup
    sfull = ds.parent/'str_ids'
    if not sfull.exists():
        sfull.mkdir(); full.assign(user_id=full.user_id.map(lambda u: f"u{u}"), item_id=full.item_id.map(lambda i: f"i{i}")).to_parquet(sfull/'log.parquet', index=False)
    sf = {'user_id': users.set_axis(users.index.map(lambda u: f"u{u}")), 'item_id': items.set_axis(items.index.map(lambda i: f"i{i}"))}
    srnd = rnd.assign(user_id=rnd.user_id.map(lambda u: f"u{u}"), item_id=rnd.item_id.map(lambda i: f"i{i}"))
    ps = SC.policy_value_scale(sfull/'log.parquet', 'exposure', 'outcome', {'random': srnd}, covariates=COVS, models={0: m0, 1: m1}, features=sf)
    assert np.allclose(ps[ps.policy == 'random'].value.to_numpy(), g.value.to_numpy(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="'logged' names the logging policy"): SC.policy_value_scale(ds/'interactions', 'exposure', 'outcome', {'logged': rnd})


def test_progress_over_parts_and_the_dashboard_link(ds, tmp_path, capsys, monkeypatch):
    "With progress on, the data and estimate stages on Dask show a bar over the tasks of each pass over the parts, and each stage's cluster prints its dashboard link once."
    import re
    monkeypatch.setattr(PL, 'DASK_SAMPLE_ROWS', 2_000)
    cfg = PL.PipelineConfig.from_dict(dict(data={'source': 'files', 'path': str(ds)}, discover={'max_rows': 500}, estimate={'adjustment': 'all', 'aipw': False}, compute=DASK))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); PL.run_pipeline(out=tmp_path/'run', config=cfg, until='estimate', progress=True)
    err = capsys.readouterr().err
    bars = re.findall(r'\r([\w-]+): +(\d+)%\|[^\r]*\| (\d+)/(\d+)', err)
    names = {b[0] for b in bars}
    assert {'summary', 'sample', 'units_stats', 'halo', 'range_var', 'diag'} <= names, sorted(names)      # data: sums, the sample; estimate: matching's units, halos, ranges; balance
    assert all(int(t) == 4 for n, _, _, t in bars if n in ('summary', 'sample', 'diag'))   # one task per Parquet part
    for st in ('data', 'estimate'): assert len(re.findall(rf'\[{st}\] compute: dask.*dashboard http://\S+/status', err)) == 1

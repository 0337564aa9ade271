"""Estimation over Parquet parts equals the in-memory estimators on the same rows: propensity fit, IPW, cross-fitted AIPW
(to 1e-9) and nearest-neighbour matching by score range (identical pairs), locally and on a 2-worker Dask cluster."""
import warnings
import numpy as np, pandas as pd, pytest
from causal_llmrec.compute import Engine, _dataset
from causal_llmrec.neighbours import MatchingError
from causal_llmrec.weighting import LogisticPropensity, ipw
from causal_llmrec.matching import match
from causal_llmrec.scale import (SIM_COVARIATES, simulate_log, log_parts, fold_ids, fit_logistic, ipw_scale, aipw_scale,
                                 aipw_in_memory, match_scale)

@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    t = tmp_path_factory.mktemp('scale')
    truth = simulate_log(t/'log', n_rows=12_000, n_parts=5, days=3, n_users=1_500, n_items=200, seed=7)
    return t/'log', truth, _dataset(t/'log').to_table().to_pandas()

@pytest.fixture(scope='module')
def cluster():
    with Engine(dict(engine='dask', n_workers=2), verbose=False) as eng: yield eng

@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); yield

def test_simulated_truth(sim):
    path, truth, df = sim
    assert truth['rows'] == len(df) == 12_000 and truth['parts'] == 5 == len(log_parts(path))
    assert abs(truth['ate'] - (df.mu1 - df.mu0).mean()) < 1e-12 and abs(truth['att'] - (df.mu1 - df.mu0)[df.exposure == 1].mean()) < 1e-12
    assert list(log_parts(path).offset) == list(np.r_[0, np.cumsum(log_parts(path).rows)[:-1]])
    f = fold_ids(np.arange(10_000), 3, seed=1); assert set(f) == {0, 1, 2} and abs(np.bincount(f) / 10_000 - 1 / 3).max() < 0.02
    assert not np.array_equal(f, fold_ids(np.arange(10_000), 3, seed=2))

def test_logistic_over_parts_equals_memory(sim, cluster):
    path, _, df = sim
    ref = LogisticPropensity().fit(df[SIM_COVARIATES], df.exposure)
    for c, cache in ((None, True), (cluster, True), (cluster, False)):
        lp = fit_logistic(path, 'exposure', SIM_COVARIATES, compute=c, cache=cache)
        assert np.abs(np.r_[lp.intercept_, lp.coef_] - np.r_[ref.intercept_, ref.coef_]).max() < 1e-9

@pytest.mark.parametrize('estimand', ['ATE', 'ATT', 'ATC'])
def test_ipw_equals_memory(sim, estimand):
    path, _, df = sim
    a = ipw_scale(path, 'exposure', 'outcome', SIM_COVARIATES, estimand=estimand)
    b = ipw(df, 'exposure', 'outcome', SIM_COVARIATES, estimand=estimand)
    assert abs(a.estimate - b.estimate) < 1e-9 and abs(a.se - b.se) < 1e-9
    c = ipw_scale(path, 'exposure', 'outcome', score='propensity', estimand=estimand, clip=0.02)
    d = ipw(df, 'exposure', 'outcome', SIM_COVARIATES, estimand=estimand, propensity=df.propensity, clip=0.02)
    assert abs(c.estimate - d.estimate) < 1e-9 and abs(c.se - d.se) < 1e-9

@pytest.mark.parametrize('estimand, folds', [('ATE', 2), ('ATT', 3), ('ATC', 2)])
def test_aipw_equals_memory(sim, cluster, estimand, folds):
    path, truth, df = sim
    b = aipw_in_memory(df, 'exposure', 'outcome', SIM_COVARIATES, estimand=estimand, n_folds=folds, seed=4)
    a = aipw_scale(path, 'exposure', 'outcome', SIM_COVARIATES, estimand=estimand, n_folds=folds, seed=4, compute=cluster if estimand == 'ATT' else None)
    assert abs(a.estimate - b[0]) < 1e-9 and abs(a.se - b[1]) < 1e-9
    if estimand == 'ATE': assert abs(a.estimate - truth['ate']) < 4 * a.se      # and it finds the simulated truth

@pytest.mark.parametrize('estimand, k, J, ranges', [('ATT', 1, 4, 7), ('ATE', 2, 1, 3), ('ATC', 1, 0, 5), ('ATT', 3, 2, 1)])
def test_matching_by_score_range_equals_match(sim, estimand, k, J, ranges):
    path, _, df = sim
    a = match_scale(path, 'exposure', 'outcome', score='propensity', estimand=estimand, k=k, var_matches=J, n_ranges=ranges, return_pairs=True)
    b = match(df, 'exposure', 'outcome', SIM_COVARIATES, propensity=df.propensity, estimand=estimand, k=k, var_matches=J)
    pa, pb = a.details['pairs'], b.pairs.reset_index(drop=True)
    assert pa[['unit', 'match', 'weight']].equals(pb[['unit', 'match', 'weight']])
    assert np.allclose(pa.distance, pb.distance, rtol=1e-9, atol=1e-12)
    assert abs(a.estimate - b.estimate) < 1e-9 and abs(a.se - b.se) < 1e-9 and a.n_treated == b.n_treated

def test_matching_on_a_fitted_score_and_on_a_cluster(sim, cluster):
    path, _, df = sim
    a = match_scale(path, 'exposure', 'outcome', covariates=SIM_COVARIATES, return_pairs=True, compute=cluster)
    b = match(df, 'exposure', 'outcome', SIM_COVARIATES, ps_variance='ai2006')
    assert a.details['ranges'] == 8 and a.details['pairs'][['unit', 'match', 'weight']].equals(b.pairs[['unit', 'match', 'weight']].reset_index(drop=True))
    assert abs(a.estimate - b.estimate) < 1e-9 and abs(a.se - b.se) < 1e-9

def test_bad_input_is_named(sim, tmp_path):
    path, _, _ = sim
    with pytest.raises(MatchingError, match='pass covariates'): ipw_scale(path, 'exposure', 'outcome')
    with pytest.raises(MatchingError, match=r"no column\(s\) \['clicked'\]"): match_scale(path, 'exposure', 'clicked', score='propensity')
    with pytest.raises(MatchingError, match='estimand'): aipw_scale(path, 'exposure', 'outcome', SIM_COVARIATES, estimand='LATE')
    with pytest.raises(MatchingError, match='k must be'): match_scale(path, 'exposure', 'outcome', score='propensity', k=0)
    with pytest.raises(FileExistsError): simulate_log(path, n_rows=100)
    with pytest.raises(FileNotFoundError): log_parts(tmp_path/'nothing')

def test_covariates_joined_from_users_and_items_tables(sim, cluster):
    "A log of ids: the covariates come from the users and items tables, joined in the tasks; the same numbers as the widened frame."
    path, _, df = sim
    users = df.groupby('user_id')[['user_age', 'user_activity']].first().add_prefix('u_')
    items = df.groupby('item_id')[['item_popularity', 'item_age']].first().add_prefix('i_')
    feats = {'user_id': users, 'item_id': items}; covs = list(users.columns) + list(items.columns)
    a = aipw_scale(path, 'exposure', 'outcome', covs, n_folds=2, compute=cluster, features=feats)
    b = aipw_in_memory(df, 'exposure', 'outcome', SIM_COVARIATES, n_folds=2)
    assert abs(a.estimate - b[0]) < 1e-9 and abs(a.se - b[1]) < 1e-9
    m = match_scale(path, 'exposure', 'outcome', covariates=covs, features=feats, return_pairs=True)
    r = match(df, 'exposure', 'outcome', SIM_COVARIATES, ps_variance='ai2006')
    assert m.details['pairs'][['unit', 'match']].equals(r.pairs[['unit', 'match']].reset_index(drop=True)) and abs(m.estimate - r.estimate) < 1e-9
    with pytest.raises(MatchingError, match='duplicate ids'): ipw_scale(path, 'exposure', 'outcome', covs, features={'user_id': pd.concat([users, users.iloc[:1]]), 'item_id': items})
    with pytest.raises(MatchingError, match=r"no column\(s\) \['u_height'\]"): ipw_scale(path, 'exposure', 'outcome', ['u_height'], features=feats)

@pytest.mark.parametrize('estimand, caliper, J, ranges', [('ATT', 0.01, 4, 4), ('ATE', 0.005, 1, 3), ('ATC', 0.02, 0, 5)])
def test_matching_with_a_caliper_equals_match(sim, estimand, caliper, J, ranges):
    "A caliper bounds both searches as in `match`: the same units discarded, the same pairs, estimate and se."
    path, _, df = sim
    a = match_scale(path, 'exposure', 'outcome', score='propensity', estimand=estimand, caliper=caliper, var_matches=J, n_ranges=ranges, return_pairs=True)
    b = match(df, 'exposure', 'outcome', SIM_COVARIATES, propensity=df.propensity, estimand=estimand, caliper=caliper, var_matches=J)
    assert a.n_discarded == b.n_discarded and a.n_discarded['caliper'] > 0
    assert a.details['pairs'][['unit', 'match', 'weight']].equals(b.pairs[['unit', 'match', 'weight']].reset_index(drop=True))
    assert abs(a.estimate - b.estimate) < 1e-9 and abs(a.se - b.se) < 1e-9 and f'caliper {caliper}' in a.method
    with pytest.raises(MatchingError, match='caliper must be a positive number'): match_scale(path, 'exposure', 'outcome', score='propensity', caliper=0)

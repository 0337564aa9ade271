"Off-policy evaluation (causal_llmrec.ope): estimators against known truth, bootstrap intervals that refit the reward model, and the value table of a learned top-k policy (fast: synthetic data only)."
import numpy as np
import pandas as pd
import pytest

from causal_llmrec.evaluate import EvaluationInputError, EvaluationWarning
from causal_llmrec.ope import (off_policy_value, uniform_policy, bernoulli_ts_action_dist, ranking_policy,
                               policy_value_table, plot_policy_values, OPE_ESTIMATORS)


def bandit_logs(n=2000, A=4, seed=0):
    rng = np.random.default_rng(seed)
    pb = np.array([.4, .3, .2, .1]); a = rng.choice(A, n, p=pb)
    q = np.array([.1, .2, .3, .4]); r = (rng.random(n) < q[a]).astype(float)
    return pd.DataFrame(dict(item_id=a, outcome=r, propensity=pb[a])), q


def test_unlogged_actions_warn_with_share():
    lg, _ = bandit_logs()
    with pytest.warns(EvaluationWarning, match=r"25\.0% of its mass on 1 action"):
        off_policy_value(lg[lg.item_id != 3], uniform_policy(range(4)), position=None, n_boot=10)


def test_clipping_is_reported():
    lg, _ = bandit_logs()
    with pytest.warns(EvaluationWarning, match=r"exceeded clip=1"):
        res = off_policy_value(lg, uniform_policy(range(4)), position=None, clip=1.0, n_boot=10)
    assert res.n_clipped == int((lg.propensity < .25).sum()) and res.max_weight == pytest.approx(2.5)
    assert 'clipped at 1' in repr(res)


def test_ips_exact_on_policy_and_unbiased_off_policy():
    lg, q = bandit_logs(n=4000)
    # target == behaviour: all weights 1, IPS = SNIPS = mean reward
    same = pd.DataFrame(dict(item_id=range(4), prob=[.4, .3, .2, .1]))
    e = off_policy_value(lg, same, position=None, n_boot=20).estimates
    assert e.loc['IPS', 'value'] == pytest.approx(lg.outcome.mean()) and e.loc['SNIPS', 'value'] == pytest.approx(lg.outcome.mean())
    # off-policy: IPS, SNIPS and DR average close to the truth; DM's 'mean' model shrinks towards the overall mean (small bias)
    tgt = pd.DataFrame(dict(item_id=range(4), prob=[.1, .1, .2, .6])); truth = float((tgt.prob * q).sum())
    ests = np.array([off_policy_value(bandit_logs(2000, seed=s)[0], tgt, position=None, n_boot=10, seed=s).estimates.value.values
                     for s in range(40)])
    assert np.abs(ests.mean(0)[[0, 1, 3]] - truth).max() < 0.01 and abs(ests.mean(0)[2] - truth) < 0.03


def test_dr_with_true_reward_model_has_smaller_variance():
    tgt = pd.DataFrame(dict(item_id=range(4), prob=[.1, .1, .2, .6])); q = np.array([.1, .2, .3, .4])
    ips, dr = [], []
    for s in range(30):
        lg, _ = bandit_logs(1000, seed=s)
        e = off_policy_value(lg, tgt, position=None, reward_model=np.tile(q, (len(lg), 1)), n_boot=10, seed=s).estimates
        ips.append(e.loc['IPS', 'value']); dr.append(e.loc['DR', 'value'])
    assert np.std(dr) < np.std(ips)


def test_relative_error_ci_contains_point():
    lg, _ = bandit_logs()
    res = off_policy_value(lg, uniform_policy(range(4)), position=None, n_boot=200)
    re = res.relative_error(np.random.default_rng(0).random(3000) < .25)
    assert (re.ci_low <= re.ci_high).all() and (re.relative_error >= 0).all()
    with pytest.raises(EvaluationInputError, match="relative error is undefined"): res.relative_error(np.zeros(10))


def test_bts_action_dist_is_a_distribution_and_favours_strong_arms():
    d = bernoulli_ts_action_dist([50, 1, 1, 1], [50, 100, 100, 100], len_list=2, n_sim=2000, seed=0)
    assert np.allclose(d.groupby('position').prob.sum(), 1)
    assert d[(d.item_id == 0) & (d.position == 1)].prob.item() > 0.99


def test_ranking_policy_is_the_slot_by_slot_ranking():

    sc = pd.DataFrame({'user_id': [1, 1, 1, 2, 2, 2], 'item_id': [10, 11, 12, 10, 11, 12], 'score': [.9, .5, .1, .2, .8, .3]})
    W = ranking_policy(sc, pd.DataFrame({'user_id': [1, 1, 2, 2], 'position': [1, 3, 1, 2]}))
    assert W.to_numpy().argmax(1).tolist() == [0, 2, 1, 2] and (W.sum(1) == 1).all()
    assert ranking_policy(sc, pd.DataFrame({'user_id': [2]}), position=None).to_numpy().argmax(1).tolist() == [1]
    with pytest.raises(EvaluationInputError, match='too few items'): ranking_policy(sc, pd.DataFrame({'user_id': [1], 'position': [4]}))
    with pytest.raises(EvaluationInputError, match='too few items'): ranking_policy(sc, pd.DataFrame({'user_id': [3], 'position': [1]}))
    # with the logs of a uniform policy, IPS of the ranking policy is unbiased for its value
    rng = np.random.default_rng(0); n = 20000
    logs = pd.DataFrame({'user_id': rng.integers(1, 3, n), 'item_id': rng.choice([10, 11, 12], n), 'position': 1, 'propensity': 1/3})
    best = {1: 10, 2: 11}
    logs['outcome'] = (rng.random(n) < np.where(logs.item_id == logs.user_id.map(best), 0.3, 0.05)).astype(float)
    r = off_policy_value(logs, ranking_policy(sc, logs), n_boot=50)
    assert abs(r.estimates.loc['IPS', 'value'] - 0.3) < 0.02

# ---------------------------------------------------------------- the reward model is refitted in every bootstrap draw
def test_refit_widens_dm_interval_and_keeps_estimates_and_draws():
    lg, _ = bandit_logs(3000, seed=1)
    tgt = pd.DataFrame(dict(item_id=range(4), prob=[.1, .1, .2, .6]))
    fixed = off_policy_value(lg, tgt, position=None, n_boot=100, seed=2, refit=False)
    refit = off_policy_value(lg, tgt, position=None, n_boot=100, seed=2)
    assert refit.refit and not fixed.refit and 'refitted in each' in repr(refit) and 'held fixed' in repr(fixed)
    assert np.allclose(fixed.estimates.value, refit.estimates.value)                     # same point estimates
    assert np.allclose(fixed.boot[['IPS', 'SNIPS']], refit.boot[['IPS', 'SNIPS']])     # the same bootstrap draws
    # a context-free target's DM value depends only on the reward model: held fixed, its draws barely move (only the
    # share of rows in each cross-fitting fold changes), refitted they carry the model's estimation error
    assert fixed.estimates.loc['DM', 'se'] < 0.001 and refit.estimates.loc['DM', 'se'] > 50 * fixed.estimates.loc['DM', 'se']


def test_refit_bootstrap_matches_the_sampling_spread_of_dm():
    "The refitted DM standard error is close to the spread of DM over independent logs (the fixed one is 0)."
    tgt = pd.DataFrame(dict(item_id=range(4), prob=[.1, .1, .2, .6]))
    dms = [off_policy_value(bandit_logs(1000, seed=s)[0], tgt, position=None, n_boot=2, seed=s).estimates.loc['DM', 'value'] for s in range(60)]
    se = off_policy_value(bandit_logs(1000, seed=99)[0], tgt, position=None, n_boot=200, seed=0).estimates.loc['DM', 'se']
    assert 0.6 < se / np.std(dms, ddof=1) < 1.6


def test_logistic_reward_model_refits_with_context():
    rng = np.random.default_rng(0); n = 3000
    x = rng.integers(0, 3, n); a = rng.integers(0, 4, n)
    y = (rng.random(n) < 0.1 + 0.1 * a + 0.05 * x).astype(float)
    lg = pd.DataFrame(dict(item_id=a, outcome=y, propensity=0.25, x=x))
    tgt = pd.DataFrame(dict(item_id=range(4), prob=[0, 0, 0, 1.]))
    fixed = off_policy_value(lg, tgt, position=None, context=['x'], reward_model='logistic', n_boot=30, refit=False)
    refit = off_policy_value(lg, tgt, position=None, context=['x'], reward_model='logistic', n_boot=30)
    assert abs(refit.estimates.loc['DM', 'value'] - 0.45) < 0.04                         # truth: 0.1 + 0.3 + 0.05 * E[x]
    assert refit.estimates.loc['DM', 'se'] > 3 * fixed.estimates.loc['DM', 'se']
    assert refit.estimates.loc['DM', 'ci_low'] < 0.45 < refit.estimates.loc['DM', 'ci_high']


def test_given_reward_array_is_held_fixed():
    lg, q = bandit_logs(1000)
    r = off_policy_value(lg, uniform_policy(range(4)), position=None, reward_model=np.tile(q, (len(lg), 1)), n_boot=20)
    assert not r.refit and r.estimates.loc['DM', 'value'] == pytest.approx(q.mean())


# ---------------------------------------------------------------- the learned top-k policy against the logged policy
def slate_logs(n_users=40, n_items=6, rounds=300, seed=0):
    "Uniform logging over 6 items in 2 slots; item i clicks with probability 0.05 + 0.05 i, whatever the slot."
    rng = np.random.default_rng(seed); n = rounds * 2
    lg = pd.DataFrame(dict(user_id=rng.integers(0, n_users, n), item_id=rng.integers(0, n_items, n),
                           position=np.tile([1, 2], rounds), propensity=1 / n_items))
    lg['outcome'] = (rng.random(n) < 0.05 + 0.05 * lg.item_id).astype(float)
    grid = pd.MultiIndex.from_product([range(n_users), range(n_items)], names=['user_id', 'item_id']).to_frame(index=False)
    return lg, grid


def test_policy_value_table_shape_and_logged_row():
    lg, grid = slate_logs()
    t = policy_value_table(grid.assign(score=grid.item_id), lg, k=2, n_boot=50)
    assert list(t.columns) == ['policy', 'estimator', 'value', 'se', 'ci_low', 'ci_high', 'n_impressions', 'ess']
    assert t.estimator.tolist() == ['IPS', 'SNIPS', 'DR', 'on-policy mean'] and t.policy.tolist()[:3] == ['top-2, epsilon 0'] * 3
    logged = t.iloc[-1]
    assert logged.policy == 'logged' and logged.value == pytest.approx(lg.outcome.mean()) and logged.n_impressions == len(lg)
    assert logged.se == pytest.approx(lg.outcome.std(ddof=1) / np.sqrt(len(lg)))
    assert (t.ci_low <= t.value).all() and (t.value <= t.ci_high).all()


def test_policy_value_table_recovers_the_value_of_the_best_list():
    "Scores ranking items 5, 4 in slots 1, 2: the true value is (0.30 + 0.25) / 2; the worst list's (0.05 + 0.10) / 2."
    lg, grid = slate_logs(rounds=3000)
    best = policy_value_table(grid.assign(score=grid.item_id), lg, k=2, n_boot=100).set_index('estimator')
    worst = policy_value_table(grid.assign(score=-grid.item_id), lg, k=2, n_boot=100).set_index('estimator')
    for e in ('IPS', 'SNIPS', 'DR'):
        assert best.loc[e, 'ci_low'] < 0.275 < best.loc[e, 'ci_high'], e
        assert worst.loc[e, 'ci_low'] < 0.075 < worst.loc[e, 'ci_high'], e
    assert best.loc['IPS', 'ess'] == pytest.approx(len(lg) / 6, rel=0.2)               # each list matches 1 in 6 logged rows
    # epsilon = 1 is the uniform policy: the logging policy itself, weights 1
    uni = policy_value_table(grid.assign(score=grid.item_id), lg, k=2, epsilon=1.0, n_boot=20).set_index('estimator')
    assert uni.loc['IPS', 'value'] == pytest.approx(lg.outcome.mean()) and uni.loc['IPS', 'ess'] == pytest.approx(len(lg))


def test_policy_value_table_drops_positions_beyond_k():
    lg, grid = slate_logs()
    with pytest.warns(EvaluationWarning, match=r"300 of 600 logged impressions are at positions > k=1"):
        t = policy_value_table(grid.assign(score=grid.item_id), lg, k=1, n_boot=20)
    assert (t.n_impressions == 300).all() and t.iloc[-1].value == pytest.approx(lg[lg.position == 1].outcome.mean())


@pytest.mark.parametrize("kw,match", [
    (dict(k=0), "`k` must be a positive integer"),
    (dict(k=True), "`k` must be a positive integer"),
    (dict(estimators=['DM', 'IPW']), "chosen from"),
    (dict(logs=lambda lg: lg.assign(position=0)), "slot numbers 1, 2"),
    (dict(logs=lambda lg: lg.drop(columns='outcome')), "lacks column(s) ['outcome']"),
    (dict(logs=lambda lg: lg.assign(position=lg.position + 5)), "no logged impression is at a position <= k=2"),
    (dict(scores=lambda g: g[g.user_id != 0]), "score every user of the logs"),
    (dict(logs=lambda lg: lg.assign(propensity=0.0)), "must lie in (0, 1]"),
])
def test_policy_value_table_bad_input(kw, match):
    lg, grid = slate_logs()
    args = dict(scores=grid.assign(score=grid.item_id), logs=lg, k=2, n_boot=5)
    for key in ('logs', 'scores'):
        if callable(kw.get(key)): kw = dict(kw, **{key: kw[key](args[key])})
    with pytest.raises(EvaluationInputError) as e: policy_value_table(**{**args, **kw})
    assert match in str(e.value), str(e.value)


def test_plot_policy_values_draws_every_row():
    import matplotlib; matplotlib.use('Agg')
    lg, grid = slate_logs()
    t = policy_value_table(grid.assign(score=grid.item_id), lg, k=2, n_boot=20)
    ax = plot_policy_values(t)
    assert [tick.get_text() for tick in ax.get_yticklabels()] == [f"{p}: {e}  (ESS {v:,.0f})" for p, e, v in zip(t.policy, t.estimator, t.ess)]
    assert plot_policy_values(t.drop(columns='ess')).get_yticklabels()[0].get_text() == 'top-2, epsilon 0: IPS'
    with pytest.raises(EvaluationInputError, match="lacks column"): plot_policy_values(t.drop(columns='ci_low'))


def test_moved_names_still_import_from_evaluate():
    import causal_llmrec.evaluate as E, causal_llmrec.ope as O, causal_llmrec.schnabel as S
    assert E.off_policy_value is O.off_policy_value and E.OPE_ESTIMATORS is OPE_ESTIMATORS and E.schnabel_learning is S.schnabel_learning
    with pytest.raises(AttributeError, match="no attribute 'nope'"): E.nope


def test_policy_that_never_matches_the_log_has_no_weight_and_no_runtime_warning():
    import warnings
    lg, grid = slate_logs(n_items=3, rounds=40)
    lg = lg.assign(item_id=0)                                    # the log only ever shows item 0
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning); warnings.simplefilter('ignore', EvaluationWarning)
        t = policy_value_table(grid.assign(score=grid.item_id), lg, k=2, n_boot=20).set_index('estimator')
    assert t.loc['IPS', 'value'] == 0 and t.loc['IPS', 'ess'] == 0 and np.isnan(t.loc['SNIPS', 'value'])

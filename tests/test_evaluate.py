"Bad-input matrix, invariants and properties of causal_llmrec.evaluate (fast: synthetic data only); the bad-input matrix also covers ope and schnabel."

import numpy as np
import pandas as pd
import pytest

from causal_llmrec.evaluate import (EvaluationInputError, EvaluationWarning, auc, top_k, ranking_metrics, gini,
                                    uplift_curve, auuc, qini_coefficient, uplift_at_k, true_uplift_at_k,
                                    simulate_ab_test, offline_lift)
from causal_llmrec.ope import off_policy_value, uniform_policy, bernoulli_ts_action_dist, obd_bts_prior
from causal_llmrec.schnabel import MatrixFactorization, schnabel_propensities, schnabel_deltas, mnar_estimates


def scores_frame(n_users=20, n_items=15, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(dict(user_id=np.repeat(np.arange(n_users), n_items), item_id=np.tile(np.arange(n_items), n_users),
                             score=rng.random(n_users * n_items)))


def bandit_logs(n=2000, A=4, seed=0):
    rng = np.random.default_rng(seed)
    pb = np.array([.4, .3, .2, .1]); a = rng.choice(A, n, p=pb)
    q = np.array([.1, .2, .3, .4]); r = (rng.random(n) < q[a]).astype(float)
    return pd.DataFrame(dict(item_id=a, outcome=r, propensity=pb[a])), q


# ---------------------------------------------------------------- bad input: clear errors with numbers
@pytest.mark.parametrize("call,match", [
    (lambda: auc([0, 1, 1], [.1, .2]), "lengths differ: labels=3, scores=2"),
    (lambda: auc([], []), "empty input"),
    (lambda: auc([0, 2], [.1, .2]), "must be 0/1"),
    (lambda: auc([1, 1], [.1, .2]), "2 positives and 0 negatives"),
    (lambda: auc([0, 1], [np.nan, .2]), "NaN/inf"),
    (lambda: top_k(scores_frame(), k=16), "`k`=16 is larger than the item set (15 items)"),
    (lambda: top_k(scores_frame(), k=0), "positive integer"),
    (lambda: top_k(scores_frame().drop(columns='score'), k=3), "lacks column(s) ['score']"),
    (lambda: ranking_metrics(pd.DataFrame(dict(user_id=[1], item_id=[1], rank=[1])), pd.DataFrame(dict(user_id=[1], item_id=[1])),
                             k=20, n_items=10), "larger than the item set (10 items)"),
    (lambda: ranking_metrics(pd.DataFrame(columns=['user_id', 'item_id', 'rank']), pd.DataFrame(dict(user_id=[1], item_id=[1]))), "empty"),
    (lambda: off_policy_value(bandit_logs()[0].assign(propensity=0.0), uniform_policy(range(4)), position=None), "must lie in (0, 1]: 2000 of 2000"),
    (lambda: off_policy_value(bandit_logs()[0].assign(propensity=1.5), uniform_policy(range(4)), position=None), "max=1.5"),
    (lambda: off_policy_value(bandit_logs()[0].iloc[:0], uniform_policy(range(4)), position=None), "empty"),
    (lambda: off_policy_value(bandit_logs()[0], uniform_policy(range(4)).assign(prob=.5), position=None), "sum to"),
    (lambda: off_policy_value(bandit_logs()[0], uniform_policy(range(4)), position=None, clip=0), "`clip` must be positive"),
    (lambda: off_policy_value(bandit_logs()[0], uniform_policy(range(4)), position=None, reward_model='forest'), "reward_model"),
    (lambda: off_policy_value(bandit_logs()[0].drop(columns='propensity'), uniform_policy(range(4)), position=None), "lacks column(s) ['propensity']"),
    (lambda: uplift_curve([1, 2, 3], [0, 1], [1, 0, 1]), "lengths differ"),
    (lambda: uplift_at_k([1, 2, 3, 4], [0, 1, 0, 1], [1, 0, 1, 1], k=5), "selects 5 of 4 units"),
    (lambda: uplift_at_k([1, 2, 3, 4], [1, 1, 1, 1], [1, 0, 1, 1]), "4 treated of 4"),
    (lambda: bernoulli_ts_action_dist([1, 1], [1, 1], len_list=3), "larger than the item set (2 items)"),
    (lambda: obd_bts_prior('kids'), "'all', 'men' or 'women'"),
    (lambda: schnabel_propensities(np.ones((3, 3)), obs_rate=0.5, alpha=0.25), "needs k="),
    (lambda: schnabel_deltas(np.ones((2, 3)), np.ones((2, 3)), k=4), "larger than the item set (3 items)"),
    (lambda: mnar_estimates(np.ones((2, 2)), np.ones((2, 2), bool), np.full((2, 2), 2.)), "(0, 1]"),
    (lambda: MatrixFactorization().fit([0, 1], [0], [3., 4.]), "lengths differ"),
])
def test_bad_input(call, match):
    with pytest.raises((EvaluationInputError, TypeError)) as e: call()
    assert match in str(e.value), str(e.value)


def test_bad_input_is_valueerror():
    assert issubclass(EvaluationInputError, ValueError)


# ---------------------------------------------------------------- warnings with counts
def test_missing_lists_warn():
    recs = pd.DataFrame(dict(user_id=[1], item_id=[1], rank=[1]))
    with pytest.warns(EvaluationWarning, match="1 of 2 users"):
        r = ranking_metrics(recs, pd.DataFrame(dict(user_id=[1, 2], item_id=[1, 5])), k=1)
    assert r.per_user.loc[2, 'ndcg'] == 0 and r.per_user.loc[1, 'ndcg'] == 1


# ---------------------------------------------------------------- properties
@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_and_is_rank_invariant(seed):
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(seed); y = rng.integers(0, 2, 300); s = rng.normal(size=300) + y
    s = np.round(s, 1)  # ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert auc(y, np.exp(s)) == pytest.approx(auc(y, s))
    assert auc(y, -s) == pytest.approx(1 - auc(y, s))


def test_ranking_metrics_bounds_and_perfect_lists():
    sc = scores_frame()
    recs = top_k(sc, k=5)
    truth = recs[recs['rank'] <= 2][['user_id', 'item_id']]        # the top 2 are exactly the relevant items
    r = ranking_metrics(recs, truth, k=5, n_items=15)
    assert np.allclose(r.per_user.ndcg, 1) and np.allclose(r.per_user.recall, 1) and np.allclose(r.per_user.precision, .4)
    f = r.to_frame()
    assert ((f.value >= 0) & (f.value <= 1)).loc[['ndcg@5', 'recall@5', 'hr@5', 'precision@5', 'coverage', 'gini']].all()


def test_top_k_excludes_and_is_deterministic():
    sc = scores_frame(); ex = sc[sc.item_id < 3][['user_id', 'item_id']]
    a, b = top_k(sc, 4, exclude=ex, seed=3), top_k(sc, 4, exclude=ex, seed=3)
    assert a.equals(b) and (a.item_id >= 3).all() and a.groupby('user_id')['rank'].apply(list).map(lambda l: l == [1, 2, 3, 4]).all()


def test_gini_bounds():
    assert gini([5, 5, 5]) == pytest.approx(0) and 0 < gini([1, 2, 10]) < 1 and gini([]) == 0


def test_uplift_curve_properties():
    rng = np.random.default_rng(0); n = 4000
    x = rng.normal(size=n); t = rng.integers(0, 2, n); y = (rng.random(n) < .2 + .2 * (x > 0) * t).astype(float)
    c = uplift_curve(x, t, y)
    assert c.fraction.iloc[0] == 0 and c.fraction.iloc[-1] == 1 and c.fraction.is_monotonic_increasing
    assert c.uplift.iloc[-1] == pytest.approx(y[t == 1].mean() - y[t == 0].mean())
    assert auuc(x, t, y) > 0 > auuc(-x, t, y) and qini_coefficient(x, t, y) > 0
    # invariant to monotone transforms of the score, and to the order of the rows
    p = rng.permutation(n)
    assert auuc(np.exp(x), t, y) == pytest.approx(auuc(x, t, y)) and auuc(x[p], t[p], y[p]) == pytest.approx(auuc(x, t, y))
    assert uplift_at_k(x, t, y, .5) > uplift_at_k(-x, t, y, .5)


def test_true_uplift_oracle_and_errors():
    rng = np.random.default_rng(0)
    eff = pd.DataFrame(dict(user_id=np.repeat(range(10), 8), item_id=np.tile(range(8), 10), tau=rng.normal(size=80)))
    out = true_uplift_at_k(eff.assign(score=eff.tau), eff, k=3)
    assert out.model == pytest.approx(out.oracle) and out.share_of_oracle == pytest.approx(1)
    anti = true_uplift_at_k(eff.assign(score=-eff.tau), eff, k=3)
    assert anti.model < anti.random < anti.oracle
    with pytest.raises(EvaluationInputError, match="larger than the item set"): true_uplift_at_k(eff.assign(score=1.), eff, k=9)


def _toy_world(n_users=300, n_items=10, seed=0):
    rng = np.random.default_rng(seed)
    tr = pd.DataFrame(dict(user_id=np.repeat(range(n_users), n_items), item_id=np.tile(range(n_items), n_users)))
    tr['mu0'] = rng.uniform(.05, .3, len(tr)); tr['mu1'] = np.clip(tr.mu0 + rng.normal(.1, .1, len(tr)), 0, 1)
    tr['tau'] = tr.mu1 - tr.mu0
    return tr


def test_ab_test_truth_and_offline_agree():
    tr = _toy_world(seed=1); rng = np.random.default_rng(1)
    A = tr.sort_values('mu0', ascending=False).groupby('user_id').head(2)
    B = tr.sort_values('tau', ascending=False).groupby('user_id').head(2)
    ab = simulate_ab_test(tr, A, B, seed=0)
    exp_true = (tr.set_index(['user_id', 'item_id']).tau.loc[pd.MultiIndex.from_frame(B[['user_id', 'item_id']])].sum()
                - tr.set_index(['user_id', 'item_id']).tau.loc[pd.MultiIndex.from_frame(A[['user_id', 'item_id']])].sum()) / 300
    assert ab.true_lift == pytest.approx(exp_true) and ab.n_a + ab.n_b == 300
    e = rng.uniform(.2, .8, len(tr)); t = (rng.random(len(tr)) < e).astype(int)
    y = (rng.random(len(tr)) < np.where(t == 1, tr.mu1, tr.mu0)).astype(float)
    off = offline_lift(tr.assign(exposure=t, outcome=y, propensity=e), A, B)
    assert off.loc['offline IPW', 'ci_low'] < exp_true < off.loc['offline IPW', 'ci_high']
    assert 'truth (expected)' in ab.to_frame().index and 'ABTestResult' in repr(ab)


def test_ab_test_rejects_pairs_outside_world():
    tr = _toy_world(20)
    bad = pd.DataFrame(dict(user_id=[0], item_id=[99]))
    with pytest.raises(EvaluationInputError, match="1 pairs of `recs_b` are not in `truth`"): simulate_ab_test(tr, bad.iloc[:0].pipe(lambda d: tr.head(1)), bad)


# ---------------------------------------------------------------- causal ranking metrics (Sato et al.): CP@k, CDCG
import re
from causal_llmrec.evaluate import causal_ranking_metrics


def _crm_toy():
    # user 1 ranks items 10 > 11 > 12 (tau .3, -.1, .2); user 2 ranks 21 (tau .4) > 20 (tau 0)
    return pd.DataFrame(dict(user_id=[1, 1, 1, 2, 2], item_id=[10, 11, 12, 20, 21], score=[3., 2., 1., 1., 2.],
                             tau=[.3, -.1, .2, 0., .4]))


def test_causal_ranking_metrics_hand_computed():
    toy = _crm_toy()
    r = causal_ranking_metrics(toy, toy, k=[1, 2])
    assert r['CP@1'] == pytest.approx(.35)                                   # (.3 + .4) / 2
    assert r['CP@2'] == pytest.approx(.15)                                   # ((.3 - .1)/2 + (.4 + 0)/2) / 2
    assert r['CDCG@1'] == pytest.approx(.35)
    assert r['CDCG@2'] == pytest.approx((.3 - .1/np.log2(3) + .4)/2)         # 0.318454
    assert r['CDCG'] == pytest.approx((.3 - .1/np.log2(3) + .2/2 + .4)/2)    # 0.368454
    assert r['users'] == 2
    pu = causal_ranking_metrics(toy, toy, k=2, per_user=True)
    assert pu.loc[1, 'CDCG@2'] == pytest.approx(.3 - .1/np.log2(3)) and pu.loc[2, 'CP@2'] == pytest.approx(.2)
    assert list(pu.n_candidates) == [3, 2]


def test_causal_ranking_metrics_short_lists_exclude_and_no_full():
    toy = _crm_toy()
    with pytest.warns(EvaluationWarning, match="1 of 2 users have fewer than k=3"):
        r = causal_ranking_metrics(toy, toy, k=3, full=False)
    assert 'CDCG' not in r.index
    assert r['CP@3'] == pytest.approx((.4/3 + .2)/2)                         # user 2: mean over its 2 items
    # excluding user 1's top item promotes item 11 (tau -.1) to rank 1
    r = causal_ranking_metrics(toy, toy, k=1, exclude=pd.DataFrame(dict(user_id=[1], item_id=[10])))
    assert r['CP@1'] == pytest.approx((-.1 + .4)/2)
    assert r['CDCG'] == pytest.approx(((-.1 + .2/np.log2(3)) + .4)/2)


def test_causal_ranking_metrics_ties_and_agreement_with_true_uplift():
    s = scores_frame(n_users=30, n_items=12, seed=1)
    s['score'] = np.round(s.score, 1)                                         # many ties
    eff = s[['user_id', 'item_id']].assign(tau=np.random.default_rng(2).normal(size=len(s)))
    a = causal_ranking_metrics(s, eff, k=5, seed=7); b = causal_ranking_metrics(s, eff, k=5, seed=7)
    assert a.equals(b)
    tu = true_uplift_at_k(s, eff, k=5, seed=7)
    assert 5*a['CP@5'] == pytest.approx(tu['model'])                         # same ranking as top_k
    oracle = causal_ranking_metrics(eff.assign(score=eff.tau), eff, k=5)
    assert 5*oracle['CP@5'] == pytest.approx(tu['oracle'])
    assert oracle['CDCG'] >= a['CDCG'] and oracle['CDCG@5'] >= a['CDCG@5']   # sorting by tau maximises both
    # the full-list CDCG is the same for every ranking when all effects are equal
    flat = eff.assign(tau=.1)
    assert causal_ranking_metrics(s, flat, k=5)['CDCG'] == pytest.approx(.1*(1/np.log2(np.arange(2, 14))).sum())


@pytest.mark.parametrize("kw,match", [
    (dict(k=0), "positive integer"), (dict(k=[10, -1]), "positive integer"), (dict(k=True), "positive integer"),
    (dict(effects=_crm_toy().iloc[:3]), "2 scored pairs have no true effect"),
    (dict(effects=_crm_toy().drop(columns='tau')), "lacks column(s) ['tau']"),
    (dict(scores=_crm_toy().assign(score=[1., np.nan, 2., 3., 4.])), "1 NaN/inf values"),
    (dict(scores=pd.concat([_crm_toy(), _crm_toy().head(1)])), "1 duplicated (user_id, item_id) pairs"),
    (dict(exclude=_crm_toy()[['user_id', 'item_id']]), "no candidate pairs are left"),
])
def test_causal_ranking_metrics_bad_input(kw, match):
    args = dict(scores=_crm_toy(), effects=_crm_toy()); args.update(kw)
    with pytest.raises(EvaluationInputError, match=re.escape(match)):
        causal_ranking_metrics(**args)


def test_true_uplift_at_k_short_candidate_lists():
    "A user with fewer than k candidates: a random list holds all of them, as the model's and the oracle's do."
    from causal_llmrec.evaluate import true_uplift_at_k
    tau2 = np.linspace(0, 1.1, 12)
    eff = pd.DataFrame(dict(user_id=[1]*3 + [2]*12, item_id=[1, 2, 3] + list(range(1, 13)), tau=[0.1, 0.2, 0.4] + list(tau2)))
    with pytest.warns(EvaluationWarning, match='fewer than k=10'):
        r = true_uplift_at_k(eff[['user_id', 'item_id']].assign(score=eff.tau), eff, k=10)
    assert np.isclose(r['random'], (0.7 + tau2.mean()*10)/2)
    assert np.isclose(r['model'], r['oracle']) and np.isclose(r['oracle'], (0.7 + np.sort(tau2)[-10:].sum())/2)


# ---- judged without truth: refutations and sanity checks (issue 13)
from causal_llmrec.evaluate import refute, sanity_checks

def _confounded(n=3000, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n); t = (rng.random(n) < 1/(1 + np.exp(-x))).astype(int)
    return pd.DataFrame(dict(x=x, t=t, y=0.5*t + x + rng.standard_normal(n)))

def test_refute_passes_a_sound_estimate_and_fails_a_stale_one():
    from causal_llmrec.weighting import aipw
    df = _confounded()
    r = refute(aipw, df, 't', 'y', ['x'], seed=3)
    assert r.passed and abs(r.estimate - 0.5) < 0.12 and list(r.table.test) == ['placebo', 'random_common_cause', 'subset']
    t0 = df.t.to_numpy()
    stale = lambda d, treatment, outcome, covariates, **k: aipw(d.assign(**{treatment: t0[d.index]}), treatment, outcome, covariates, **k)
    bad = refute(stale, df, 't', 'y', ['x'], tests=('placebo',), seed=3)
    assert not bad.passed and 'finds effects in noise' in bad.table.reading[0]
    # a tuple-returning estimator works too; bad arguments are refused by name
    diff = lambda d, treatment, outcome, covariates: (d[d[treatment] == 1][outcome].mean() - d[d[treatment] == 0][outcome].mean(), 0.05)
    assert refute(diff, df, 't', 'y', [], tests=('subset',)).table.shape[0] == 1
    for kw, msg in [(dict(tests=('nope',)), 'unknown refutation'), (dict(subset_frac=1.5), 'subset_frac'), (dict(n_placebo=1), 'n_placebo')]:
        with pytest.raises(ValueError, match=msg): refute(aipw, df, 't', 'y', ['x'], **kw)
    with pytest.raises(ValueError, match='empty'): refute(aipw, df.iloc[:0], 't', 'y', ['x'])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['z'\]"): refute(aipw, df, 't', 'y', ['z'])

def test_sanity_checks_say_what_is_wrong():
    w = sanity_checks(auc_value=0.45)
    assert len(w) == 1 and 'worse than chance' in w[0]
    assert 'negative' in sanity_checks(effects=pd.DataFrame({'tau': [-1., -2.]}))[0]
    assert 'covers zero' in sanity_checks(estimate=0.1, ci=(-0.1, 0.3))[0]
    assert 'too few' in sanity_checks(treatment=[1]*5 + [0]*100)[0]
    assert 'barely overlap' in sanity_checks(propensity=[0.001]*5 + [0.5]*5)[0]
    assert sanity_checks(auc_value=0.8, effects=pd.DataFrame({'tau': [0.1, -0.1]}), estimate=0.1, ci=(0.05, 0.2)) == []

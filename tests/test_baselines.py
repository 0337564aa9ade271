"Baselines (causal_llmrec.baselines and causal_llmrec.recommenders): one interface, real numbers on a simulated world, bad input, cold-start fallbacks, tuning."
import numpy as np, pandas as pd, pytest, torch
from causal_llmrec.baselines import (Baseline, BaselineInputError, LogisticTLearner, DRLearnerGB, check_log, estimate_propensity,
                                     tune)
from causal_llmrec.recommenders import BASELINES, Popularity, BPR, ULBPR, DLCE, CausE, CUBN, CIBN
from causal_llmrec.data import simulate, SIM_COVARIATES
from causal_llmrec.matching import nearest_neighbours, MatchingError

torch.set_num_threads(1)

def _share(df, s, k=10):
    from causal_llmrec.evaluate import true_uplift_at_k
    return true_uplift_at_k(df[['user_id', 'item_id']].assign(score=s), df[['user_id', 'item_id', 'tau']], k=k)['share_of_oracle']

@pytest.fixture(scope='module')
def split():
    w = simulate(n_users=200, confounding=1.0, seed=0)
    log = w.frame().assign(propensity=w.truth.propensity.values, tau=w.truth.tau.values)
    held = np.random.default_rng(0).choice(log.user_id.unique(), 50, replace=False)
    return log[~log.user_id.isin(held)], log[log.user_id.isin(held)]

@pytest.fixture(scope='module')
def fitted(split):
    train, _ = split
    return {n: c().fit(train.drop(columns='tau'), covariates=SIM_COVARIATES, seed=0) for n, c in BASELINES.items()}

def test_every_baseline_scores_finite_and_is_seeded(split, fitted):
    train, test = split
    for name, m in fitted.items():
        s = m.score(test)
        assert s.shape == (len(test),) and np.isfinite(s).all(), name
        assert m.score_kind in ('uplift', 'uplift_rank', 'click'), name
    for name in ('bpr', 'ulbpr', 'dlce', 'cause', 'dr_learner_gb', 'cubn'):
        a = BASELINES[name]().fit(train, covariates=SIM_COVARIATES, seed=3).score(test)
        b = BASELINES[name]().fit(train, covariates=SIM_COVARIATES, seed=3).score(test)
        assert np.array_equal(a, b), name

def test_real_numbers_on_confounded_world(split, fitted):
    train, test = split
    held = {n: _share(test, m.score(test)) for n, m in fitted.items()}
    warm = {n: _share(train, m.score(train)) for n, m in fitted.items()}
    assert held['logistic_t'] > 0.9 and held['logistic_t'] > held['random'] + 0.5
    for n in ('logistic_t', 't_learner_gb', 'x_learner_gb', 'dr_learner_gb'):
        assert held[n] > held['click_gb'] + 0.1, (n, held[n], held['click_gb'])
    for n in ('ulbpr', 'ulrmf', 'dlce', 'cubn', 'cibn', 'bpr', 'popularity'):
        assert warm[n] > warm['random'] + 0.05, (n, warm[n])
    assert abs(held['random']) < 0.15

def test_estimates_in_probability_units(split, fitted):
    train, _ = split
    for n in ('logistic_t', 'x_learner_gb', 'dr_learner_gb'):
        tau = fitted[n].score(train)
        assert abs(tau.mean() - train.tau.mean()) < 0.06, (n, tau.mean(), train.tau.mean())
    assert np.all(np.abs(fitted['cause'].score(train)) <= 1)

TOY = pd.DataFrame(dict(user_id=[1, 1, 2, 2, 3, 3], item_id=[10, 11, 10, 12, 11, 12], exposure=[1, 0, 1, 0, 0, 1],
                        outcome=[1, 0, 0, 1, 0, 1], x=[0.1, 0.5, 0.3, 0.2, 0.9, 0.4]))

@pytest.mark.parametrize('bad, match', [
    (TOY.drop(columns='exposure'), "lacks column(s) ['exposure']"),
    (TOY.drop(columns='user_id'), "lacks column(s) ['user_id']"),
    (TOY.assign(exposure=[1, 2, 0, 0, 1, 0]), "'exposure' must be binary 0/1"),
    (TOY.assign(outcome=[1, np.nan, 0, 0, 1, 0]), "'outcome' has 1 missing"),
    (TOY.assign(user_id=[1, None, 2, 2, 3, 3]), "'user_id' has 1 missing ids"),
    (TOY.iloc[:0], "train is empty"),
    (TOY.assign(propensity=[0.5, 0.5, 0.0, 0.5, 0.5, 0.5]), "strictly in (0, 1)"),
    ([1, 2, 3], "pandas DataFrame"),
])
def test_bad_log_is_named(bad, match):
    for cls in (Popularity, BPR, CUBN):
        with pytest.raises(BaselineInputError) as e: cls().fit(bad)
        assert match in str(e.value)

def test_bad_covariates_and_params():
    with pytest.raises(BaselineInputError, match="pass covariates"): LogisticTLearner().fit(TOY)
    with pytest.raises(BaselineInputError, match=r"\['x'\].*NaN"): LogisticTLearner().fit(TOY.assign(x=np.nan), covariates=['x'])
    with pytest.raises(BaselineInputError, match="not numeric"): LogisticTLearner().fit(TOY.assign(x='a'), covariates=['x'])
    with pytest.raises(BaselineInputError, match="string"): LogisticTLearner().fit(TOY, covariates='x')
    with pytest.raises(BaselineInputError, match="not covariates"): LogisticTLearner().fit(TOY, covariates=['exposure'])
    with pytest.raises(BaselineInputError, match="only 1s"): LogisticTLearner().fit(TOY.assign(exposure=1), covariates=['x'])
    with pytest.raises(BaselineInputError, match="only 0s"): CausE().fit(TOY.assign(exposure=0))
    with pytest.raises(BaselineInputError, match="alpha"): ULBPR(alpha=2)
    with pytest.raises(BaselineInputError, match="cap"): DLCE(cap=0.7)
    with pytest.raises(BaselineInputError, match="by must be"): Popularity(by='clicks')
    with pytest.raises(BaselineInputError, match="not fitted"): BPR().score(TOY)
    m = LogisticTLearner().fit(TOY, covariates=['x'])
    with pytest.raises(BaselineInputError, match=r"lacks column\(s\) \['x'\]"): m.score(TOY.drop(columns='x'))
    with pytest.raises(BaselineInputError, match="pairs is empty"): m.score(TOY.iloc[:0])

def test_cold_start_fallbacks():
    new = pd.DataFrame(dict(user_id=[99, 1, 99], item_id=[10, 999, 999], x=[0.2, 0.2, 0.2]))
    pop = Popularity(prior=2.0).fit(TOY)
    assert np.allclose(pop.score(new), [(1 + 2*0.5)/(2 + 2), 0.5, 0.5])
    mf = ULBPR(epochs=3).fit(TOY, seed=0); T = mf.tables_
    s = mf.score(new)
    assert np.isclose(s[0], T['P'].mean(0) @ T['Q'][mf.items_.get_loc(10)] + T['bi'][mf.items_.get_loc(10)])
    assert np.isclose(s[2], T['P'].mean(0) @ T['Q'].mean(0) + T['bi'].mean())
    assert CUBN().fit(TOY).score(new).tolist()[1:] == [0.0, 0.0]          # unseen item: no evidence -> 0
    assert CIBN().fit(TOY).score(new)[1:].tolist() == [0.0, 0.0]
    for cls in BASELINES.values():
        m = cls().fit(TOY, covariates=['x'], seed=0)
        assert np.isfinite(m.score(new)).all(), cls.__name__

def test_cubn_cold_user_uses_covariate_neighbours(split):
    train, test = split
    m = CUBN(k=20).fit(train, covariates=SIM_COVARIATES, seed=0)
    assert m.side_ == ['user_age', 'user_female', 'user_activity']
    s = m.score(test)
    assert (s != 0).mean() > 0.02                                    # held-out users borrow their covariate neighbours' evidence
    s_nocov = CUBN(k=20).fit(train, seed=0).score(test)
    assert (s_nocov == 0).all()                                      # without covariates a new user has no neighbours

def test_cubn_matches_hand_computation():
    m = CUBN(k=2, shrink=1.0).fit(TOY)
    # user 3's exposure set {12} shares nothing with users 1, 2 ({10}): no neighbours -> 0
    assert m.score(pd.DataFrame(dict(user_id=[3], item_id=[10]))).tolist() == [0.0]
    # user 2's only neighbour is user 1 (cosine 1): exposed to 10 and clicked -> 2*0.5*1/(1+1)
    assert m.score(pd.DataFrame(dict(user_id=[2], item_id=[10]))).tolist() == [0.5]

def test_dlce_propensity_source(split):
    train, _ = split
    assert DLCE(epochs=2).fit(train).propensity_source_ == 'logged'
    assert DLCE(epochs=2).fit(train.drop(columns='propensity')).propensity_source_ == 'estimated'
    e = estimate_propensity(train.drop(columns='propensity'), SIM_COVARIATES)
    assert np.corrcoef(e, train.propensity)[0, 1] > 0.9

def test_tune_same_budget(split):
    train, _ = split
    users = train.user_id.unique(); val = train[train.user_id.isin(users[:30])]; tr = train[~train.user_id.isin(users[:30])]
    r = tune(ULBPR, tr, val, lambda v, s: _share(v, s), budget=3, seed=0)
    assert len(r.table) == 3 and r.table.metric.max() == r.best_score and isinstance(r.model, ULBPR)
    assert r.table.alpha.isna().iloc[0]                              # the defaults come first
    r2 = tune(ULBPR, tr, val, lambda v, s: _share(v, s), budget=3, seed=0)
    assert r.table.drop(columns="fit_seconds").equals(r2.table.drop(columns="fit_seconds"))
    with pytest.raises(BaselineInputError, match="budget"): tune(ULBPR, tr, val, lambda v, s: 0.0, budget=0)

def test_nearest_neighbours_wrapper_matches_brute_force():
    rng = np.random.default_rng(0)
    for p in (1, 3, 8):
        Zq, Zr = rng.normal(size=(50, p)), rng.normal(size=(200, p))
        ptr, idx, dist = nearest_neighbours(Zq, Zr, k=3)
        D = np.sqrt(((Zq[:, None] - Zr[None]) ** 2).sum(-1))
        for q in range(50):
            assert sorted(idx[ptr[q]:ptr[q + 1]].tolist()) == sorted(np.argsort(D[q])[:3].tolist())
    with pytest.raises(MatchingError, match="columns"): nearest_neighbours(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(MatchingError, match="NaN"): nearest_neighbours(np.array([np.nan]), np.zeros(3))


def test_one_registry_across_both_modules():
    "BASELINES (defined in recommenders) holds the classes of both modules and stays importable from baselines."
    import causal_llmrec.baselines as BL, causal_llmrec.recommenders as R
    assert BL.BASELINES is R.BASELINES and BL.BPR is R.BPR and BL.Popularity is Popularity
    assert list(BASELINES) == ['random', 'popularity', 'click_gb', 'bpr', 'logistic_t', 't_learner_gb', 'x_learner_gb',
                               'dr_learner_gb', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn']
    mods = {n: c.__module__ for n, c in BASELINES.items()}
    assert {n for n, m in mods.items() if m == 'causal_llmrec.baselines'} == {'random', 'click_gb', 'logistic_t', 't_learner_gb', 'x_learner_gb', 'dr_learner_gb'}
    assert {n for n, m in mods.items() if m == 'causal_llmrec.recommenders'} == {'popularity', 'bpr', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn'}
    assert all(issubclass(c, Baseline) for c in BASELINES.values())
    with pytest.raises(AttributeError, match="no attribute 'Nope'"): BL.Nope

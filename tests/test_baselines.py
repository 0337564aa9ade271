"Baselines (causal_llmrec.baselines and causal_llmrec.recommenders): one interface, real numbers on a simulated world, bad input, cold-start fallbacks, tuning."
import numpy as np, pandas as pd, pytest, torch
from causal_llmrec.baselines import (Baseline, BaselineInputError, LogisticTLearner, DRLearnerGB, check_log, estimate_propensity,
                                     tune, ips_uplift_at_k)
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
    return {n: c(covariates=SIM_COVARIATES, random_state=0).fit(train.drop(columns='tau')) for n, c in BASELINES.items() if not c.needs_text}

def test_every_baseline_scores_finite_and_is_seeded(split, fitted):
    train, test = split
    for name, m in fitted.items():
        s = m.predict(test)
        assert s.shape == (len(test),) and np.isfinite(s).all(), name
        assert m.score_kind in ('uplift', 'uplift_rank', 'click'), name
    for name in ('bpr', 'ulbpr', 'dlce', 'cause', 'dr_learner_gb', 'cubn'):
        a = BASELINES[name](covariates=SIM_COVARIATES, random_state=3).fit(train).predict(test)
        b = BASELINES[name](covariates=SIM_COVARIATES, random_state=3).fit(train).predict(test)
        assert np.array_equal(a, b), name

def test_real_numbers_on_confounded_world(split, fitted):
    train, test = split
    held = {n: _share(test, m.predict(test)) for n, m in fitted.items()}
    warm = {n: _share(train, m.predict(train)) for n, m in fitted.items()}
    assert held['logistic_t'] > 0.9 and held['logistic_t'] > held['random'] + 0.5
    for n in ('logistic_t', 't_learner_gb', 'x_learner_gb', 'dr_learner_gb'):
        assert held[n] > held['click_gb'] + 0.1, (n, held[n], held['click_gb'])
    for n in ('ulbpr', 'ulrmf', 'dlce', 'cubn', 'cibn', 'bpr', 'popularity'):
        assert warm[n] > warm['random'] + 0.05, (n, warm[n])
    assert abs(held['random']) < 0.15

def test_estimates_in_probability_units(split, fitted):
    train, _ = split
    for n in ('logistic_t', 'x_learner_gb', 'dr_learner_gb'):
        tau = fitted[n].predict(train)
        assert abs(tau.mean() - train.tau.mean()) < 0.06, (n, tau.mean(), train.tau.mean())
    assert np.all(np.abs(fitted['cause'].predict(train)) <= 1)

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
    with pytest.raises(BaselineInputError, match=r"\['x'\].*NaN"): LogisticTLearner(covariates=['x']).fit(TOY.assign(x=np.nan))
    with pytest.raises(BaselineInputError, match="not numeric"): LogisticTLearner(covariates=['x']).fit(TOY.assign(x='a'))
    with pytest.raises(BaselineInputError, match=r"use \['x'\]"): LogisticTLearner(covariates='x').fit(TOY)
    with pytest.raises(BaselineInputError, match="not covariates"): LogisticTLearner(covariates=['exposure']).fit(TOY)
    with pytest.raises(BaselineInputError, match="only 1s"): LogisticTLearner(covariates=['x']).fit(TOY.assign(exposure=1))
    with pytest.raises(BaselineInputError, match="only 0s"): CausE().fit(TOY.assign(exposure=0))
    bad = [("alpha must be", ULBPR(alpha=2)), ("cap must be", DLCE(cap=0.7)), ("by must be", Popularity(by='clicks')),
           ("C must be", LogisticTLearner(C=-1, covariates=['x'])), ("n_folds must be", DRLearnerGB(n_folds=1, covariates=['x'])),
           ("k must be", CUBN(k=0)), ("random_state must be", BPR(random_state=-3)), ("dim must be", BPR(dim=0))]
    for what, m in bad:                                              # scikit-learn's rule: constructors store, fit checks
        with pytest.raises(BaselineInputError, match=what): m.fit(TOY)
    with pytest.raises(BaselineInputError, match="not fitted"): BPR().predict(TOY)
    m = LogisticTLearner(covariates=['x']).fit(TOY)
    with pytest.raises(BaselineInputError, match=r"lacks column\(s\) \['x'\]"): m.predict(TOY.drop(columns='x'))
    with pytest.raises(BaselineInputError, match="pairs is empty"): m.predict(TOY.iloc[:0])
    with pytest.raises(BaselineInputError, match="one outcome per row"): m.fit(TOY, y=[1, 0])

def test_cold_start_fallbacks():
    new = pd.DataFrame(dict(user_id=[99, 1, 99], item_id=[10, 999, 999], x=[0.2, 0.2, 0.2]))
    pop = Popularity(prior=2.0).fit(TOY)
    assert np.allclose(pop.predict(new), [(1 + 2*0.5)/(2 + 2), 0.5, 0.5])
    mf = ULBPR(epochs=3, random_state=0).fit(TOY); T = mf.tables_
    s = mf.predict(new)
    assert np.isclose(s[0], T['P'].mean(0) @ T['Q'][mf.items_.get_loc(10)] + T['bi'][mf.items_.get_loc(10)])
    assert np.isclose(s[2], T['P'].mean(0) @ T['Q'].mean(0) + T['bi'].mean())
    assert CUBN().fit(TOY).predict(new).tolist()[1:] == [0.0, 0.0]          # unseen item: no evidence -> 0
    assert CIBN().fit(TOY).predict(new)[1:].tolist() == [0.0, 0.0]
    for cls in BASELINES.values():
        if cls.needs_text: continue                                  # cold start of the text learners: tests below
        m = cls(covariates=['x'], random_state=0).fit(TOY)
        assert np.isfinite(m.predict(new)).all(), cls.__name__

def test_cubn_cold_user_uses_covariate_neighbours(split):
    train, test = split
    m = CUBN(k=20, covariates=SIM_COVARIATES).fit(train)
    assert m.side_ == ['user_age', 'user_female', 'user_activity']
    s = m.predict(test)
    assert (s != 0).mean() > 0.02                                    # held-out users borrow their covariate neighbours' evidence
    s_nocov = CUBN(k=20).fit(train).predict(test)
    assert (s_nocov == 0).all()                                      # without covariates a new user has no neighbours

def test_cubn_matches_hand_computation():
    m = CUBN(k=2, shrink=1.0).fit(TOY)
    # user 3's exposure set {12} shares nothing with users 1, 2 ({10}): no neighbours -> 0
    assert m.predict(pd.DataFrame(dict(user_id=[3], item_id=[10]))).tolist() == [0.0]
    # user 2's only neighbour is user 1 (cosine 1): exposed to 10 and clicked -> 2*0.5*1/(1+1)
    assert m.predict(pd.DataFrame(dict(user_id=[2], item_id=[10]))).tolist() == [0.5]

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
    with pytest.warns(DeprecationWarning, match="moved to causal_llmrec.recommenders"):
        assert BL.BASELINES is R.BASELINES and BL.BPR is R.BPR and BL.Popularity is Popularity
    assert list(BASELINES) == ['random', 'popularity', 'click_gb', 'bpr', 'logistic_t', 't_learner_gb', 'x_learner_gb',
                               'dr_learner_gb', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn',
                               'tfidf_t', 'embed_t', 'embed_t_gb', 'embed_dr_gb']
    mods = {n: c.__module__ for n, c in BASELINES.items()}
    assert {n for n, m in mods.items() if m == 'causal_llmrec.baselines'} == {'random', 'click_gb', 'logistic_t', 't_learner_gb', 'x_learner_gb', 'dr_learner_gb',
                                                                               'tfidf_t', 'embed_t', 'embed_t_gb', 'embed_dr_gb'}
    assert {n for n, c in BASELINES.items() if c.needs_text} == {'tfidf_t', 'embed_t', 'embed_t_gb', 'embed_dr_gb'}
    assert {n for n, m in mods.items() if m == 'causal_llmrec.recommenders'} == {'popularity', 'bpr', 'ulbpr', 'ulrmf', 'dlce', 'cause', 'cubn', 'cibn'}
    assert all(issubclass(c, Baseline) for c in BASELINES.values())
    with pytest.raises(AttributeError, match="no attribute 'Nope'"): BL.Nope


# ---- scikit-learn conventions (issue 25) ----------------------------------------------------------------------------

from causal_llmrec.baselines import (TfidfTLearner, EmbeddingTLearner, EmbeddingTLearnerGB, EmbeddingDRLearnerGB, _toy_text_log,
                                     _embed, _EMB_CACHE)

@pytest.fixture(scope='module')
def text_log():
    "A tiny text log on which every registered baseline can fit: covariates, 'u:'/'i:' text columns, logged propensities."
    return _toy_text_log(n_users=16, n_items=10, seed=0).drop(columns='tau')

TEXT_COVS = ['user_age', 'item_popularity']

def test_every_estimator_follows_sklearn_conventions(text_log):
    from sklearn.base import clone
    for name, cls in BASELINES.items():
        m = cls(covariates=TEXT_COVS, random_state=1)
        p = m.get_params()
        assert p['covariates'] is TEXT_COVS and p['random_state'] == 1, name          # stored unchanged
        assert m.set_params(random_state=2) is m and m.random_state == 2, name
        assert m.fit(text_log) is m, name                                             # fit returns self
        assert m.get_params() == dict(p, random_state=2), name                        # fit leaves the parameters alone
        s = m.predict(text_log)
        assert s.shape == (len(text_log),) and np.isfinite(s).all(), name
        v = m.score(text_log)
        assert isinstance(v, float) and np.isfinite(v), name                          # one number
        c = clone(m)
        assert c.get_params() == m.get_params() and not hasattr(c, 'fit_seconds_'), name
        assert np.array_equal(c.fit(text_log).predict(text_log), s), name            # same parameters, same seed -> same scores

def test_grid_search_runs_on_every_baseline(text_log):
    "A scorer-free GridSearchCV (it uses .score) over folds of users, for every registered class."
    import warnings
    from sklearn.model_selection import GridSearchCV, GroupKFold
    for name, cls in BASELINES.items():
        k, vals = next(iter(cls.param_grid.items())) if cls.param_grid else ('random_state', [0, 1])
        with warnings.catch_warnings():
            warnings.simplefilter('error', DeprecationWarning)                        # the new call forms raise no deprecation
            gs = GridSearchCV(cls(covariates=TEXT_COVS), {k: vals[:2]}, cv=GroupKFold(2), error_score='raise')
            gs.fit(text_log, groups=text_log.user_id)
        assert np.isfinite(gs.cv_results_['mean_test_score']).all() and gs.best_params_[k] in vals[:2], name
        assert gs.predict(text_log).shape == (len(text_log),), name

def test_sklearn_estimator_checks_that_apply():
    import sklearn.utils.estimator_checks as EC
    for c in ('check_parameters_default_constructible', 'check_no_attributes_set_in_init', 'check_get_params_invariance',
              'check_set_params', 'check_estimator_cloneable', 'check_estimator_repr', 'check_do_not_raise_errors_in_init_or_set_params'):
        for name, cls in BASELINES.items(): getattr(EC, c)(name, cls())

def test_deprecated_call_forms_still_work(split):
    train, test = split
    new = LogisticTLearner(covariates=SIM_COVARIATES, random_state=0).fit(train)
    with pytest.warns(DeprecationWarning, match=r"LogisticTLearner\(covariates=\.\.\., random_state=\.\.\.\)\.fit\(train\)"):
        old = LogisticTLearner().fit(train, covariates=SIM_COVARIATES, seed=0)
    assert old.get_params() == new.get_params()
    with pytest.warns(DeprecationWarning):
        pos = LogisticTLearner().fit(train, SIM_COVARIATES)                          # old positional form
    assert pos.covariates == SIM_COVARIATES
    cands = test[['user_id', 'item_id'] + SIM_COVARIATES]                             # candidates without a log: the old score(pairs)
    with pytest.warns(DeprecationWarning, match=r"use \.predict\(pairs\)"):
        s = old.score(cands)
    assert np.array_equal(s, new.predict(cands))
    v = new.score(test)                                                               # a log: one number, the documented metric
    assert v == ips_uplift_at_k(test, new.predict(test), k=10)

def test_ips_uplift_at_k_by_hand_and_against_truth():
    lg = pd.DataFrame(dict(user_id=[1, 1, 1, 2, 2], exposure=[1, 0, 1, 1, 0], outcome=[1, 1, 0, 1, 0], propensity=[0.5, 0.5, 0.25, 0.8, 0.5]))
    assert np.isclose(ips_uplift_at_k(lg, [3, 2, 1, 1, 2], k=2), (0 + 0.625)/2)
    assert np.isclose(ips_uplift_at_k(lg, [3, 2, 1, 1, 2], k=1), (2 + 0)/2)
    with pytest.raises(BaselineInputError, match="one value per row"): ips_uplift_at_k(lg, [1, 2])
    with pytest.raises(BaselineInputError, match="k must be"): ips_uplift_at_k(lg, np.zeros(5), k=0)
    with pytest.raises(BaselineInputError, match="propensity"): ips_uplift_at_k(lg.drop(columns='propensity'), np.zeros(5))
    # on three confounded worlds the metric orders a causal model above random scores, as the true uplift of their lists does
    est = []
    for seed in (0, 1, 2):
        w = simulate(n_users=200, confounding=1.0, seed=seed)
        log = w.frame().assign(propensity=w.truth.propensity.values)
        held = np.random.default_rng(0).choice(log.user_id.unique(), 50, replace=False)
        tr, te = log[~log.user_id.isin(held)], log[log.user_id.isin(held)]
        lt = LogisticTLearner(covariates=SIM_COVARIATES).fit(tr); rs = BASELINES['random']().fit(tr)
        assert lt.score(te) > rs.score(te) + 0.1, seed                               # logged propensities
        est.append(lt.score(te.drop(columns='propensity')) - rs.score(te.drop(columns='propensity')))
    assert np.mean(est) > 0.1 and min(est) > 0, est                                  # estimated propensities: noisier, same order

# ---- text baselines (issue 23) ----------------------------------------------------------------------------------------

def _gain(df, s): return _share(df, s, k=5)

def test_text_learners_beat_tabular_on_a_text_world():
    "The effect lives in the text only: over two worlds, the frozen-embedding T-learner's ranking beats the tabular one by far."
    for seed in (0, 1):
        lg = _toy_text_log(n_users=60, n_items=40, seed=seed)
        held = np.random.default_rng(seed).choice(60, 20, replace=False)
        tr, te = lg[~lg.user_id.isin(held)].drop(columns='tau'), lg[lg.user_id.isin(held)]
        tab = _gain(te, LogisticTLearner(covariates=TEXT_COVS).fit(tr).predict(te))
        emb = _gain(te, EmbeddingTLearnerGB(covariates=TEXT_COVS, random_state=seed).fit(tr).predict(te))
        emb_lin = _gain(te, EmbeddingTLearner(covariates=TEXT_COVS, whole_text=True).fit(tr).predict(te))
        bow = _gain(te, TfidfTLearner(covariates=TEXT_COVS, random_state=seed).fit(tr).predict(te))
        bow_main = _gain(te, TfidfTLearner(covariates=TEXT_COVS, interaction='none').fit(tr).predict(te))
        assert abs(tab) < 0.15 and emb > tab + 0.4 and emb_lin > tab + 0.3 and bow > tab + 0.2, (seed, tab, emb, emb_lin, bow)
        assert bow > bow_main + 0.15, (seed, bow, bow_main)                         # the outer products carry the match

def test_tfidf_handles_unseen_words(text_log):
    m = TfidfTLearner(covariates=TEXT_COVS).fit(text_log)
    one = text_log.iloc[:3]
    unseen = m.predict(one.assign(**{'i:description': 'zzyzx qwerty florp'}))
    empty = m.predict(one.assign(**{'i:description': ''}))
    assert np.isfinite(unseen).all() and np.allclose(unseen, empty)                 # unseen words are ignored, not an error
    vec = m.vectorizers_['u:taste']                                                  # fitted on the distinct texts of the training pairs
    from sklearn.feature_extraction.text import TfidfVectorizer
    ref = TfidfVectorizer(sublinear_tf=True).fit(pd.unique(text_log['u:taste']))
    assert np.allclose(vec.idf_, ref.idf_)

def test_text_learners_score_a_catalogue_in_blocks(text_log, monkeypatch):
    "A whole catalogue is scored in blocks of _SCORE_BLOCK pairs (its features would not fit in memory at once): the same scores."
    import causal_llmrec.baselines as BLM
    for cls in (TfidfTLearner, EmbeddingTLearner, EmbeddingDRLearnerGB):
        m = cls(covariates=TEXT_COVS).fit(text_log)
        whole = m.predict(text_log)
        monkeypatch.setattr(BLM, '_SCORE_BLOCK', 7)
        assert len(text_log) > 7*3 and np.allclose(m.predict(text_log), whole, atol=1e-6), cls.__name__
        monkeypatch.undo()

def test_text_inputs_fail_clearly(text_log):
    m = EmbeddingTLearner()
    with pytest.raises(BaselineInputError, match=r"no user text column: text baselines read columns named 'u:<field>'"):
        m.fit(text_log.drop(columns=['u:taste', 'u:profile']))
    with pytest.raises(BaselineInputError, match="no item text column"): TfidfTLearner().fit(text_log.drop(columns=['i:title', 'i:description']))
    with pytest.raises(BaselineInputError, match=r"'u:taste' of train has 1 missing"):
        TfidfTLearner().fit(text_log.assign(**{'u:taste': [None] + list(text_log['u:taste'].iloc[1:])}))
    with pytest.raises(BaselineInputError, match=r"lacks column\(s\) \['i:plot'\]"): TfidfTLearner(item_fields=['plot']).fit(text_log)
    with pytest.raises(BaselineInputError, match="interaction must be"): TfidfTLearner(interaction='hashed').fit(text_log)
    with pytest.raises(BaselineInputError, match="n_components must be"): EmbeddingTLearnerGB(n_components=0).fit(text_log)
    f = TfidfTLearner(user_fields=['taste'], item_fields=['description']).fit(text_log)
    assert (f.user_columns_, f.item_columns_) == (['u:taste'], ['i:description'])
    with pytest.raises(BaselineInputError, match=r"pairs lacks column\(s\) \['i:description'\]"): f.predict(text_log.drop(columns='i:description'))
    with pytest.raises(BaselineInputError, match="pairs lacks the covariates"):
        TfidfTLearner(covariates=TEXT_COVS).fit(text_log).predict(text_log.drop(columns=TEXT_COVS))

def test_embeddings_once_per_distinct_text(text_log):
    E = _embed(['a gentle love story', '', 'a gentle love story'])
    assert E.shape == (3, 384) and np.array_equal(E[0], E[2]) and not E[1].any()   # an empty text: zero vector
    assert 'a gentle love story' in _EMB_CACHE and '' not in _EMB_CACHE
    m = EmbeddingDRLearnerGB(covariates=TEXT_COVS, n_components=4).fit(text_log)
    assert m.pca_.n_components_ == 4
    texts = pd.unique(pd.concat([text_log[c] for c in ('u:profile', 'u:taste', 'i:title', 'i:description')]))
    assert all(t in _EMB_CACHE for t in texts)
    w = EmbeddingTLearner(whole_text=True).fit(text_log)
    assert w.user_columns_ == ['u:profile', 'u:taste'] and any(t.startswith('profile: ') and '. taste: ' in t for t in _EMB_CACHE)

def test_errors_share_the_package_base():
    from causal_llmrec.errors import CausalLLMRecError, InputError
    assert issubclass(BaselineInputError, InputError) and issubclass(BaselineInputError, CausalLLMRecError)
    assert issubclass(BaselineInputError, ValueError)                                # callers that catch ValueError keep working
    with pytest.raises(CausalLLMRecError, match="not fitted"): BPR().predict(TOY)

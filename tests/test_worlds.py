"Sato et al. world (truth, parameters, reproducibility, bad input), cold-start splits and text worlds for causal_llmrec.worlds."
import re
import numpy as np, pandas as pd, pytest
from causal_llmrec.data import RecData, DataError, simulate
from causal_llmrec import worlds
from causal_llmrec.worlds import (sato_world, sato_propensity, cold_start_split, fit_rating_mf, fit_watch_mf,
                                  SatoWorld, ColdStartSplit, SATO_COVARIATES, SPLITS, SLICES)

@pytest.fixture(scope='module')
def full(movielens):
    return sato_world(movielens, seed=0)

@pytest.fixture(scope='module')
def small(movielens, full):          # after `full`: the factorisations come from the cache
    return sato_world(movielens, n_users=60, seed=0)

# ---- the world ---------------------------------------------------------------------------------------------------

def test_full_world_numbers(full):
    it, tr = full.data.interactions, full.truth
    assert (full.n_users, full.n_items, len(it)) == (943, 1682, 1_586_126)
    assert list(tr.columns) == ['propensity', 'mu0', 'mu1', 'tau', 'y0', 'y1', 'rank']
    assert tr.mu0.dtype == tr.mu1.dtype == tr.tau.dtype == tr.propensity.dtype == np.float32
    assert tr.y0.dtype == tr.y1.dtype == np.int8
    # the published numbers of this notebook (seed 0)
    assert full.ate == pytest.approx(0.0638, abs=0.003)
    assert full.att == pytest.approx(-0.0199, abs=0.005)
    assert full.naive == pytest.approx(0.1648, abs=0.005)
    assert tr.mu0.mean() == pytest.approx(0.0631, abs=0.001)     # the real watch rate 100,000 / 1,586,126
    assert full.info['rating_rmse'] < 0.75

def test_truth_is_consistent(full):
    it, tr = full.data.interactions, full.truth
    np.testing.assert_allclose(tr.tau, tr.mu1 - tr.mu0, atol=1e-6)
    assert np.array_equal(it.outcome, np.where(it.exposure == 1, tr.y1, tr.y0))
    assert np.array_equal(it.propensity, tr.propensity)
    # mean number of recommendations per user: expected exactly num_rec, drawn close to it
    np.testing.assert_allclose(full.matrix('propensity').sum(1), 100, atol=0.01)
    assert abs(full.recs_per_user - 100) < 1
    # capped, and the top rank of every user always recommended
    assert tr.propensity.min() >= np.float32(1e-6) and tr.propensity.max() <= np.float32(1 - 1e-6)
    assert (full.matrix('propensity')[full.matrix('rank') == 1] > 0.99).all()
    # the rank is a permutation per user
    assert (np.sort(full.matrix('rank'), 1) == np.arange(1, 1683)).all()
    # the logging favours what users watch anyway
    assert full.att < 0 < full.ate < full.naive

def test_mu_follow_the_formulas(movielens):
    a = sato_world(movielens, n_users=30, seed=0)
    b = sato_world(movielens, n_users=30, seed=0, offset=4.0, steepness=2.0, outcome_power=2.0)
    logit = lambda p: np.log(p/(1 - p))
    # mu1 = sigmoid(s (r - eps)):  logit_b = 2 (r - 4) = 2 (logit_a + 5 - 4)
    np.testing.assert_allclose(logit(b.truth.mu1.astype(float)), 2*(logit(a.truth.mu1.astype(float)) + 1), atol=2e-3)
    np.testing.assert_allclose(b.truth.mu0, a.truth.mu0.astype(float)**2, rtol=1e-4, atol=1e-7)

def test_small_world_is_rows_of_the_full_world(full, small):
    rows = np.flatnonzero(full.data.interactions.user_id.isin(small.data.users.index).to_numpy())
    assert len(rows) == 60*1682
    for c in ('propensity', 'mu0', 'mu1', 'tau', 'rank'):
        assert np.array_equal(small.truth[c].to_numpy(), full.truth[c].to_numpy()[rows])
    assert set(small.data.history.user_id) <= set(small.data.users.index)

# small factorisations (the same ALS and Adam code as the default 20 factors, 15 sweeps, 300 steps, in a seventh of the time):
# what is checked is that the seed fixes every draw, the factorisations' initialisations included
SMALL_MF = dict(rating_factors=5, rating_iter=3, watch_factors=5, watch_iter=30)

def test_reproducible_with_a_seed(movielens):
    kept = dict(worlds._MF_CACHE)      # the default factorisations (seed 0) the other tests of this file reuse, put back at the end
    try:
        worlds._MF_CACHE.clear()
        a = sato_world(movielens, n_users=40, seed=1, **SMALL_MF)
        worlds._MF_CACHE.clear()
        b = sato_world(movielens, n_users=40, seed=1, **SMALL_MF)
        pd.testing.assert_frame_equal(a.truth, b.truth)
        pd.testing.assert_frame_equal(a.data.interactions, b.data.interactions)
        c = sato_world(movielens, n_users=40, seed=2, **SMALL_MF)
        assert not c.data.users.index.equals(a.data.users.index)
        # redraw: same probabilities, new draws; own seed reproduces
        r = a.redraw(7)
        assert np.array_equal(r.truth.mu0, a.truth.mu0) and r.params['seed'] == 7
        assert not np.array_equal(r.data.interactions.exposure, a.data.interactions.exposure)
        pd.testing.assert_frame_equal(a.redraw(1).data.interactions, a.data.interactions)
    finally:
        worlds._MF_CACHE.clear(); worlds._MF_CACHE.update(kept)

def test_draws_match_probabilities(full):
    tr = full.truth
    assert abs(tr.y1.mean() - tr.mu1.mean()) < 2e-3 and abs(tr.y0.mean() - tr.mu0.mean()) < 2e-3
    assert abs(full.data.interactions.exposure.mean() - tr.propensity.mean()) < 1e-3

def test_shared_noise(movielens, full):
    w = sato_world(movielens, n_users=40, seed=0, shared_noise=True)
    tr = w.truth
    assert ((tr.y1 >= tr.y0) | (tr.tau < 0)).all() and ((tr.y1 <= tr.y0) | (tr.tau > 0)).all()

def test_parameter_effects(movielens, full):
    kw = dict(n_users=200, seed=0)
    base = sato_world(movielens, **kw)
    hi_off, lo_off = sato_world(movielens, offset=6.0, **kw), sato_world(movielens, offset=4.0, **kw)
    assert lo_off.ate > base.ate > hi_off.ate
    assert sato_world(movielens, outcome_power=2.0, **kw).ate > base.ate
    bias = {b: (lambda w: w.naive - w.ate)(sato_world(movielens, propensity_power=b, **kw)) for b in (0.5, 1.0, 2.0)}
    assert bias[2.0] > bias[1.0] > bias[0.5] > 0.03
    uni = sato_world(movielens, propensity_mode='uniform', **kw)
    assert np.allclose(uni.truth.propensity, 100/1682) and abs(uni.naive - uni.ate) < 0.01
    lr = sato_world(movielens, propensity_mode='logrank', **kw)
    assert 0.5 < lr.truth.propensity.max() < 0.6 and 0 < lr.naive - lr.ate < bias[1.0]
    few = sato_world(movielens, num_rec=20, **kw)
    np.testing.assert_allclose(few.matrix('propensity').sum(1), 20, atol=0.01)
    cap = sato_world(movielens, capping=0.05, **kw)
    assert cap.truth.propensity.min() == np.float32(0.05) and cap.truth.propensity.max() == np.float32(0.95)

def test_frame_and_repr(small):
    f = small.frame()
    assert list(f.columns) == ['user_id', 'item_id'] + SATO_COVARIATES + ['exposure', 'outcome'] and len(f) == len(small.data)
    assert f.user_female.isin([0, 1]).all() and f.item_year.between(1900, 2000).all()
    r = repr(small)
    assert r.startswith("SatoWorld(offset=5.0") and '100,920 pairs = 60 users x 1682 items' in r and 'naive difference' in r
    with pytest.raises(KeyError, match="no column 'nope'"): small.matrix('nope')

def test_texts_reveal_history(small):
    from causal_llmrec.text import texts
    ut, it = texts(small.data, n_history=3, max_tokens=None)
    assert ut.index.equals(small.data.users.index) and 'watched' in ut.iloc[0] and len(it) == 1682

BAD = [
    (dict(num_rec=0), ValueError, 'num_rec must be in (0, 1682)'),
    (dict(num_rec=1682), ValueError, 'num_rec must be in (0, 1682)'),
    (dict(propensity_mode='topk'), ValueError, "propensity_mode must be one of ('rank', 'logrank', 'uniform')"),
    (dict(propensity_power=-1), ValueError, 'propensity_power must be a finite number >= 0'),
    (dict(capping=0.5), ValueError, 'capping must be in [0, 0.5)'),
    (dict(steepness=0), ValueError, 'steepness must be > 0'),
    (dict(outcome_power=-2), ValueError, 'outcome_power must be > 0'),
    (dict(offset=np.nan), ValueError, 'offset must be a finite number'),
    (dict(n_users=0), ValueError, 'n_users must be an integer in [1, 943]'),
    (dict(n_users=2.5), ValueError, 'n_users must be an integer'),
    (dict(seed=-3), ValueError, 'seed must be a non-negative integer'),
    (dict(rating_factors=0), ValueError, 'factors must be an integer >= 1'),
]

@pytest.mark.parametrize('kw,exc,msg', BAD, ids=[str(b[0]) for b in BAD])
def test_bad_settings(movielens, kw, exc, msg):
    with pytest.raises(exc) as e: sato_world(movielens, **kw)
    assert msg in str(e.value)

def test_bad_base(movielens):
    m = movielens
    with pytest.raises(DataError, match='needs base.history'): sato_world(RecData(m.users, m.items, m.interactions))
    with pytest.raises(DataError, match="needs ratings in base.history: a numeric 'outcome' or 'rating'"):
        sato_world(RecData(m.users, m.items, m.interactions, history=m.history[['user_id', 'item_id']]))
    with pytest.raises(TypeError, match='base must be a RecData'): sato_world(m.interactions)

# ---- building blocks ---------------------------------------------------------------------------------------------

def test_sato_propensity_curves():
    S = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.2, 0.8, 0.6]])
    e, rank = sato_propensity(S, mode='rank', power=1.0, num_rec=2, capping=0)
    assert rank.tolist() == [[4, 1, 2, 3], [3, 4, 1, 2]]
    # sum_k min(1, a/k) = 2 over k=1..4: a + a/2 + a/3 + a/4 = 2 -> a = 24/25 (< 1, no capping at 1)
    np.testing.assert_allclose(e[0, [1, 2, 3, 0]], np.array([1, 1/2, 1/3, 1/4])*24/25, rtol=1e-5)
    u, _ = sato_propensity(S, mode='uniform', num_rec=1)
    np.testing.assert_allclose(u, 0.25)
    z, _ = sato_propensity(S, mode='rank', power=0.0, num_rec=1)   # b = 0 is uniform
    np.testing.assert_allclose(z, 0.25)
    lg, _ = sato_propensity(S, mode='logrank', power=1.0, num_rec=2, capping=0)
    f = 1/np.log2(np.arange(2, 6)); np.testing.assert_allclose(np.sort(lg[0])[::-1], f*2/f.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match='score must be a users x items matrix'): sato_propensity(np.ones(4))

def test_mf_fits_recover_structure():
    rng = np.random.default_rng(0)
    full = rng.normal(1, .4, (50, 2)) @ rng.normal(1, .4, (70, 2)).T
    obs = rng.random(full.shape) < .35
    u, i = np.nonzero(obs)
    P, Q = fit_rating_mf(u, i, full[obs], 50, 70, factors=2, l2=1e-3, n_iter=30)
    assert np.abs(P @ Q.T - full)[~obs].mean() < 0.05
    W = (rng.random(full.shape) < 1/(1 + np.exp(-3*(full - 2.5)))).astype(float)
    Wh = fit_watch_mf(W, factors=2, n_iter=200, seed=1)
    assert Wh.dtype == np.float32 and Wh[W == 1].mean() - Wh[W == 0].mean() > 0.3
    np.testing.assert_array_equal(Wh, fit_watch_mf(W, factors=2, n_iter=200, seed=1))
    with pytest.raises(ValueError, match='both watched'): fit_watch_mf(np.ones((3, 4)))

# ---- cold-start splits -------------------------------------------------------------------------------------------

def _check_split(sp:ColdStartSplit, src:pd.DataFrame):
    P = sp.pairs
    assert len(P) == len(src) and P.split.notna().all()
    assert np.array_equal(P.user_id, src.user_id) and np.array_equal(P.item_id, src.item_id)
    parts = [sp.rows(s) for s in SPLITS]
    assert sum(map(len, parts)) == len(P) and len(np.unique(np.concatenate(parts))) == len(P)   # disjoint, complete
    tr = P[P.split == 'train']
    assert not set(sp.cold_users) & set(tr.user_id) and not set(sp.cold_items) & set(tr.item_id)
    assert (P.cold_user == ~P.user_id.isin(set(tr.user_id))).all()
    assert (P.cold_item == ~P.item_id.isin(set(tr.item_id))).all()
    assert not tr.cold_user.any() and not tr.cold_item.any()
    sl = np.select([P.cold_user & P.cold_item, P.cold_user, P.cold_item], ['cold both', 'cold user', 'cold item'], 'warm')
    assert (P.slice.astype(str).to_numpy() == sl).all()

def test_cold_start_split_on_sato_world(small):
    sp = cold_start_split(small, seed=0)
    _check_split(sp, small.data.interactions)
    assert len(sp.cold_users) == 12 and len(sp.cold_items) == round(0.2*1682)
    s = sp.summary().to_frame()
    assert list(s.index) == list(SPLITS) and list(s.columns) == list(SLICES) and s.values.sum() == len(small.data)
    assert (s.loc['train', ['cold user', 'cold item', 'cold both']] == 0).all() and (s.loc['test'] > 0).all()
    warm = sp.pairs[~(sp.pairs.user_id.isin(sp.cold_users) | sp.pairs.item_id.isin(sp.cold_items))]
    assert abs((warm.split == 'val').mean() - 0.1) < 0.01 and abs((warm.split == 'test').mean() - 0.2) < 0.01
    # positions index the truth
    te = sp.rows('test', 'cold')
    assert (sp.pairs.slice.to_numpy()[te] != 'warm').all() and len(small.truth.tau.to_numpy()[te]) == len(te)
    assert 'ColdStartSplit(item_frac=0.2' in repr(sp) and 'held out of training' in repr(sp)

def test_cold_start_split_on_simworld_recdata_and_frame():
    sim = simulate(n_users=200, seed=0)
    a = cold_start_split(sim, item_frac=0.1, user_frac=0.15, seed=3)
    b = cold_start_split(sim.data, item_frac=0.1, user_frac=0.15, seed=3)
    c = cold_start_split(sim.data.interactions[['user_id', 'item_id']], item_frac=0.1, user_frac=0.15, seed=3)
    _check_split(a, sim.data.interactions)
    assert a.pairs.equals(b.pairs) and a.pairs.equals(c.pairs) and len(a.cold_users) == 30
    t = a.test
    assert {'exposure', 'outcome', 'propensity', 'affinity', 'cold_user', 'cold_item', 'slice'} <= set(t.columns)
    assert len(a.train) + len(a.val) + len(t) == len(sim.data)
    assert not cold_start_split(sim, seed=4).pairs.equals(cold_start_split(sim, seed=3).pairs)

def test_cold_start_split_without_held_out_entities(small):
    sp = cold_start_split(small, item_frac=0, user_frac=0, val_frac=0, test_frac=0.25, seed=1)
    assert len(sp.cold_users) == len(sp.cold_items) == 0 and (sp.pairs.slice == 'warm').all()
    assert abs((sp.pairs.split == 'test').mean() - 0.25) < 0.01 and (sp.pairs.split != 'val').all()

@pytest.mark.parametrize('kw,exc,msg', [
    (dict(item_frac=1.0), ValueError, 'item_frac must be a fraction in [0, 1)'),
    (dict(user_frac=-0.1), ValueError, 'user_frac must be a fraction in [0, 1)'),
    (dict(test_frac=0), ValueError, 'test_frac must be > 0'),
    (dict(val_frac=0.4, test_frac=0.6), ValueError, 'val_frac + test_frac must be < 1'),
    (dict(seed=1.5), ValueError, 'seed must be a non-negative integer'),
])
def test_cold_start_split_bad_settings(small, kw, exc, msg):
    with pytest.raises(exc) as e: cold_start_split(small, **kw)
    assert msg in str(e.value)

def test_cold_start_split_bad_input(small):
    with pytest.raises(TypeError, match='takes a SatoWorld, a SimWorld, a RecData or a DataFrame'): cold_start_split({'a': 1})
    with pytest.raises(DataError, match=r"lack column\(s\) \['item_id'\]"): cold_start_split(pd.DataFrame({'user_id': [1]}))
    with pytest.raises(DataError, match='no pairs to split'): cold_start_split(pd.DataFrame({'user_id': [], 'item_id': []}))
    sp = cold_start_split(small)
    with pytest.raises(ValueError, match='slice must be one of'): sp.rows('test', 'lukewarm')

# ---- text worlds ---------------------------------------------------------------------------------------------------

from causal_llmrec.worlds import (text_world, text_world_family, TextWorld, TEXT_WORLD_VOCAB, TEXT_WORLD_MECHANISMS,
                                  TEXT_COVARIATES, TEXT_FILLER_WORDS, TEXT_FAMILY_GRID)

def _agree(w:TextWorld, pairs:pd.DataFrame)->np.ndarray:
    return worlds._agreement(w.hidden['t'].reindex(pairs.user_id).to_numpy(), w.hidden['m'].reindex(pairs.item_id).to_numpy(),
                             w.params['attribute'], w.params['n_levels'])

@pytest.fixture(scope='module')
def tworld(movielens):
    return text_world(movielens, seed=0)

def test_text_world_is_fast_and_consistent(movielens, tworld):
    import time
    t0 = time.perf_counter(); w = text_world(movielens, seed=5); assert time.perf_counter() - t0 < 5
    it, tr = tworld.data.interactions, tworld.truth
    assert isinstance(tworld, TextWorld) and len(it) == len(tr) == 300*40 and tworld.data.n_items == 1682
    assert list(tr.columns) == ['propensity', 'mu0', 'mu1', 'tau', 'y0', 'y1']
    assert np.allclose(tr.tau, tr.mu1 - tr.mu0) and np.array_equal(it.outcome, np.where(it.exposure == 1, tr.y1, tr.y0))
    assert np.array_equal(it.propensity, tr.propensity) and tr.propensity.between(0.02, 0.98).all()
    assert abs(tr.propensity.mean() - 0.3) < 1e-3 and abs(tr.mu0.mean() - 0.15) < 1e-3
    assert ((tr.y1 >= tr.y0) | (tr.mu1 < tr.mu0)).all()                  # one shared uniform per pair
    assert tworld.data.name.startswith('text-movielens(') and tworld.data.info['text_columns'] == {'users': ['taste'], 'items': ['description']}
    assert 'TextWorld(' in repr(tworld) and 'naive difference' in repr(tworld)
    assert set(tworld.true_graph().nodes) == set(TEXT_COVARIATES + ['exposure', 'outcome'])
    assert ('agreement', 'exposure') in tworld.true_graph(latent=True).edges

def test_text_world_potential_outcomes_match_truth(tworld):
    it = tworld.data.interactions
    po = tworld.potential_outcomes(it.sample(frac=1, random_state=0)[['user_id', 'item_id']]).set_axis(it.sample(frac=1, random_state=0).index)
    for c in ('propensity', 'mu0', 'mu1', 'tau'): np.testing.assert_allclose(po[c].sort_index(), tworld.truth[c], atol=1e-12)
    pd.testing.assert_frame_equal(tworld.pair_features(it), tworld.frame()[TEXT_COVARIATES])

def test_text_world_is_deterministic(movielens, tworld):
    again = text_world(movielens, seed=0)
    pd.testing.assert_frame_equal(again.data.interactions, tworld.data.interactions)
    pd.testing.assert_frame_equal(again.truth, tworld.truth)
    pd.testing.assert_frame_equal(again.data.users, tworld.data.users); pd.testing.assert_frame_equal(again.data.items, tworld.data.items)
    other = text_world(movielens, seed=1)
    assert not other.data.users.index.equals(tworld.data.users.index) and not other.data.items.description.equals(tworld.data.items.description)
    # the same seed with other knobs: the same users, texts and candidates, other probabilities
    g2 = text_world(movielens, seed=0, confounding=2.0, modification=0.0)
    pd.testing.assert_frame_equal(g2.data.interactions[['user_id', 'item_id']], tworld.data.interactions[['user_id', 'item_id']])
    assert g2.data.users.taste.equals(tworld.data.users.taste) and not np.allclose(g2.truth.tau, tworld.truth.tau)

def test_text_world_latent_never_in_the_tables(tworld):
    fr, it = tworld.frame(), tworld.data.interactions
    assert list(fr.columns) == ['user_id', 'item_id'] + TEXT_COVARIATES + ['exposure', 'outcome']
    a = _agree(tworld, it)
    for c in fr.columns: assert not np.array_equal(fr[c].to_numpy(float), a)
    t, m, lab = tworld.hidden['t'], tworld.hidden['m'], tworld.hidden['labels']
    for df, lv in ((tworld.data.users, t), (tworld.data.items, m)):
        names = lv.map(lambda x: lab[x])
        for c in df.columns:
            col = df[c].reindex(lv.index)
            assert not col.astype(str).equals(lv.astype(str)) and not col.astype(str).equals(names)
            if pd.api.types.is_numeric_dtype(col):      # no tabular column is (nearly) a function of the latent level
                assert col.groupby(lv.to_numpy()).mean().std() < 0.5*col.std() + 1e-12
    lat = tworld.latent()
    assert set(lat.kind) == {'user', 'item'} and lat[lat.kind == 'item'].new.sum() == len(tworld.new_items)

def test_text_world_texts_state_the_level(tworld):
    items, t, m = tworld.data.items, tworld.hidden['t'], tworld.hidden['m']
    vocab = TEXT_WORLD_VOCAB['topic']
    for i in items.index[:200]:
        words = worlds._words(items.description[i]) - TEXT_FILLER_WORDS
        own = set(vocab[m[i]][2] if i in tworld.new_items else vocab[m[i]][1])
        assert words and words <= own, (items.description[i], m[i])
    for u in tworld.data.users.index[:100]:
        words = worlds._words(tworld.data.users.taste[u]) - TEXT_FILLER_WORDS
        assert words and words <= set(vocab[t[u]][1])
    # many phrasings per level
    assert items.description.groupby(m).nunique().min() > 100 and tworld.data.users.taste.nunique() > 250

def test_text_world_confounding_zero_leaves_propensity_tabular(movielens):
    w0 = text_world(movielens, confounding=0.0, modification=1.0, seed=2)
    w1 = text_world(movielens, confounding=1.0, modification=1.0, seed=2)
    def resid(w):
        f, e = w.frame(), w.truth.propensity.to_numpy(); keep = (e > 0.0201) & (e < 0.9799)
        X = np.c_[np.ones(keep.sum()), f.loc[keep, ['item_popularity', 'user_activity', 'user_age']].to_numpy(float)]
        y = np.log(e[keep]/(1 - e[keep])); return np.abs(y - X @ np.linalg.lstsq(X, y, rcond=None)[0]).max()
    assert resid(w0) < 1e-9 and resid(w1) > 0.5
    a0 = _agree(w0, w0.data.interactions) == 1
    assert abs(w0.truth.propensity[a0].mean() - w0.truth.propensity[~a0].mean()) < 0.03
    a1 = _agree(w1, w1.data.interactions) == 1
    assert w1.truth.propensity[a1].mean() > w1.truth.propensity[~a1].mean() + 0.15
    # modification 0: the effect's logit ignores the agreement (at confounding 0, tau does too)
    w00 = text_world(movielens, confounding=0.0, modification=0.0, seed=2)
    lg = lambda p: np.log(p/(1 - p))
    eff = lg(w00.truth.mu1.to_numpy()) - lg(w00.truth.mu0.to_numpy())
    X = np.c_[np.ones(len(eff)), w00.frame().item_popularity.to_numpy()]
    assert np.abs(eff - X @ np.linalg.lstsq(X, eff, rcond=None)[0]).max() < 1e-9

def test_text_world_naive_bias_grows_with_confounding(movielens):
    bias = {g: np.mean([(lambda w: w.naive - w.att)(text_world(movielens, n_users=150, confounding=g, seed=s)) for s in range(3)])
            for g in (0.0, 1.0, 2.0)}
    assert bias[0.0] < bias[1.0] < bias[2.0] and bias[2.0] - bias[0.0] > 0.05

def test_text_world_new_items_use_held_out_words(tworld):
    new, items = tworld.new_items, tworld.data.items
    assert len(new) == round(0.1*1682)
    it = tworld.data.interactions
    assert not it.item_id.isin(new).any() and not tworld.data.history.item_id.isin(new).any()
    logged = items.index[items.index.isin(it.item_id)]
    logged_words = set().union(*map(worlds._words, items.description[logged]))
    content = set().union(*map(worlds._words, items.description[new])) - TEXT_FILLER_WORDS
    assert content and not content & logged_words
    assert not content & set().union(*map(worlds._words, items.description.drop(new)), *map(worlds._words, tworld.data.users.taste))
    assert text_world(n_users=20, new_item_frac=0.0, seed=0).new_items.empty

def test_text_world_catalogue(tworld):
    users = tworld.data.users.index[:10]
    cat = tworld.catalogue(users)
    assert list(cat.columns) == ['user_id', 'item_id'] + TEXT_COVARIATES + ['propensity', 'mu0', 'mu1', 'tau']
    rated = tworld.data.history[tworld.data.history.user_id.isin(users)]
    assert len(cat) == 10*1682 - len(rated) and cat.item_id.isin(tworld.new_items).sum() == 10*len(tworld.new_items)
    m = tworld.data.interactions.reset_index().merge(cat, on=['user_id', 'item_id'])
    assert len(m) == 400 and np.allclose(m.tau, tworld.truth.tau.to_numpy()[m['index']])
    with pytest.raises(DataError, match='not in this world'): tworld.catalogue([99_999])

@pytest.mark.parametrize('mechanism', ['history', 'both'])
def test_text_world_history_taste(movielens, mechanism):
    w = text_world(movielens, n_users=80, mechanism=mechanism, seed=3)
    assert ('taste' in w.data.users) == (mechanism == 'both') and w.data.info['text_columns']['users'] == (['taste'] if mechanism == 'both' else [])
    h = w.data.history.sort_values(['user_id', 'timestamp'], kind='mergesort').groupby('user_id').tail(10)
    for u, items in h.groupby('user_id').item_id:
        counts = w.hidden['m'].reindex(items).value_counts()
        assert counts.get(w.hidden['t'][u], 0) == counts.max()

def test_text_world_sentiment_graded(movielens):
    w = text_world(movielens, n_users=60, attribute='sentiment', n_levels=5, seed=0)
    a = _agree(w, w.data.interactions)
    assert set(np.round(np.unique(a), 6)) <= {0.0, 0.25, 0.5, 0.75, 1.0} and len(np.unique(a)) == 5
    assert [l for l, *_ in TEXT_WORLD_VOCAB['sentiment']] == list(w.hidden['labels'])

def test_text_world_write_and_load(tworld, tmp_path):
    from causal_llmrec.files import load_data, check_data
    rows = tworld.write(tmp_path/'tw')
    assert rows['interactions.csv'] == 12_000 and (tmp_path/'tw'/'data.yaml').exists()
    back = load_data(tmp_path/'tw')
    assert check_data(tmp_path/'tw').ok
    it = tworld.data.interactions
    assert back.interactions[['user_id', 'item_id', 'exposure']].equals(it[['user_id', 'item_id', 'exposure']])
    np.testing.assert_allclose(back.interactions.outcome, it.outcome); np.testing.assert_allclose(back.interactions.propensity, it.propensity)
    assert back.users.taste.equals(tworld.data.users.taste) and back.items.description.equals(tworld.data.items.description)
    assert back.history[['user_id', 'item_id']].equals(tworld.data.history[['user_id', 'item_id']])

def test_text_world_family(movielens):
    got = list(text_world_family({'confounding': [0.0, 1.0], 'mechanism': ['stated', 'history']}, seeds=[0, 1], n_users=30, base=movielens))
    assert [s for s, _ in got][:3] == [dict(confounding=0.0, mechanism='stated', seed=0), dict(confounding=0.0, mechanism='stated', seed=1),
                                      dict(confounding=0.0, mechanism='history', seed=0)]
    assert len(got) == 8 and all(w.params['n_users'] == 30 and w.params['confounding'] == s['confounding'] for s, w in got)
    lst = list(text_world_family([dict(modification=0.0)], seeds=[4], n_users=20, base=movielens))
    assert lst[0][1].params['modification'] == 0.0 and lst[0][1].params['seed'] == 4
    assert TEXT_FAMILY_GRID == dict(confounding=[0.0, 1.0, 2.0], modification=[0.0, 1.0], mechanism=list(TEXT_WORLD_MECHANISMS))

TBAD = [(dict(n_levels=1), ValueError, 'n_levels must be an integer in [2, 8]'),
        (dict(attribute='sentiment', n_levels=6), ValueError, 'n_levels must be an integer in [2, 5]'),
        (dict(new_item_frac=1.0), ValueError, 'new_item_frac must be a number in [0, 1)'),
        (dict(new_item_frac=-0.2), ValueError, 'new_item_frac must be a number in [0, 1)'),
        (dict(exposure_rate=0.0), ValueError, 'exposure_rate must be a number in (0, 1)'),
        (dict(base_rate=1.5), ValueError, 'base_rate must be a number in (0, 1)'),
        (dict(mechanism='reviews'), ValueError, 'mechanism must be one of'),
        (dict(attribute='genre'), ValueError, 'attribute must be one of'),
        (dict(confounding=-1.0), ValueError, 'confounding must be a number in [0, inf)'),
        (dict(modification=float('nan')), ValueError, 'modification must be a number'),
        (dict(n_candidates=0), ValueError, 'n_candidates must be an integer >= 1'),
        (dict(n_users=0), ValueError, 'n_users must be an integer in [1, 943]'),
        (dict(n_history=0), ValueError, 'n_history must be an integer >= 1'),
        (dict(seed=-3), ValueError, 'seed must be a non-negative integer'),
        (dict(base='ml-100k'), TypeError, 'base must be a RecData')]

@pytest.mark.parametrize('kw,exc,msg', TBAD, ids=[str(b[0]) for b in TBAD])
def test_text_world_bad_settings(movielens, kw, exc, msg):
    kw = {'base': movielens, **kw}
    with pytest.raises(exc, match=re.escape(msg)): text_world(**kw)

def test_text_world_family_bad_settings(movielens):
    with pytest.raises(ValueError, match=re.escape("unknown text_world parameter(s) ['gamma']")): next(text_world_family({'gamma': [1]}))
    with pytest.raises(ValueError, match='both varied in settings and fixed'): next(text_world_family({'confounding': [1.0]}, confounding=2.0))
    with pytest.raises(ValueError, match='must be a list of values'): next(text_world_family({'confounding': 1.0}))
    with pytest.raises(TypeError, match='settings must be a dict of lists'): next(text_world_family('strong'))
    with pytest.raises(ValueError, match='seeds is empty'): next(text_world_family(seeds=[]))
    with pytest.raises(DataError, match='needs base.history'):
        text_world(RecData(movielens.users, movielens.items, movielens.interactions))

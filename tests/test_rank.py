"""Ranking: seen items excluded, orders, grid == pairwise scoring, click models, bad input."""
import numpy as np, pandas as pd, pytest, torch
import networkx as nx
from causal_llmrec.bert import CausalBert, predict, toy_world
from causal_llmrec.bert_train import fit
from causal_llmrec.rank import rank, graph_context, explain

@pytest.fixture(scope='module')
def setup():
    pairs, ut, it, tau = toy_world(n_users=15, n_items=25, seed=2)
    m = CausalBert.tiny(seed=0)
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=3, progress=False)
    return m, pairs, ut, it

def test_excludes_seen_and_sorted(setup):
    m, pairs, ut, it = setup
    seen = pairs.sample(frac=0.5, random_state=1)[['user_id', 'item_id']]
    t = rank(m, ut, it, k=7, seen=seen, progress=False).to_frame()
    assert t.merge(seen, on=['user_id', 'item_id']).empty
    assert t.groupby('user_id').size().eq(7).all()
    assert t.groupby('user_id').score.apply(lambda s: s.is_monotonic_decreasing).all()
    assert t.groupby('user_id').item_id.apply(lambda s: s.is_unique).all()

def test_grid_equals_pairwise(setup):
    m, pairs, ut, it = setup
    for by in ('uplift', 'outcome', 'blend'):
        grid = rank(m, ut, it, k=5, by=by, progress=False).to_frame()
        cand = rank(m, ut, it, k=5, by=by, candidates=pairs, progress=False).to_frame()
        assert np.allclose(grid.score, cand.score, atol=1e-5)
        p = predict(m, grid[['user_id', 'item_id']], ut, it)
        assert np.allclose(p.tau, grid.tau, atol=1e-5)

def test_blend_limits(setup):
    m, pairs, ut, it = setup
    out = rank(m, ut, it, k=5, by='outcome', progress=False).to_frame()
    b0 = rank(m, ut, it, k=5, by='blend', lam=0.0, progress=False).to_frame()
    assert out.item_id.tolist() == b0.item_id.tolist()
    up = rank(m, ut, it, k=5, by='uplift', progress=False).to_frame()
    big = rank(m, ut, it, k=5, by='blend', lam=1e6, progress=False).to_frame()
    assert (up.item_id.to_numpy() == big.item_id.to_numpy()).mean() > 0.9

def test_user_who_saw_everything_gets_short_list(setup):
    m, pairs, ut, it = setup
    seen = pd.DataFrame({'user_id': 0, 'item_id': it.index[:-2]})
    t = rank(m, ut, it, k=5, seen=seen, progress=False).to_frame()
    assert (t.user_id == 0).sum() == 2

def test_explanations(setup):
    m, pairs, ut, it = setup
    g = nx.DiGraph([('pop', 'exposure'), ('pop', 'outcome'), ('age', 'outcome'), ('exposure', 'outcome')])
    t = rank(m, ut, it, k=2, graph=g, progress=False).to_frame()
    assert t.explanation.str.contains('adjusted for pop').all() and t.explanation.str.contains('age, pop').all()
    assert graph_context(None, adjusted_for=['a'], drivers=['b']) == (['a'], ['b'])
    with pytest.raises(ValueError, match='no node'): graph_context(nx.DiGraph([('a', 'b')]))

def test_click_model_ranks_by_outcome_only(setup):
    _, pairs, ut, it = setup
    c = CausalBert.tiny(objective='click')
    fit(c, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=1, progress=False)
    t = rank(c, ut, it, k=3, by='outcome', progress=False).to_frame()
    assert t.explanation.str.contains('non-causal').all()
    with pytest.raises(ValueError, match="objective='click'"): rank(c, ut, it, by='uplift', progress=False)

@pytest.mark.parametrize('kw,match', [(dict(by='ctr'), 'by must be'), (dict(k=0), 'k must'),
                                      (dict(users=[12345]), 'no text'), (dict(items=[12345]), 'no text'),
                                      (dict(seen=[1, 2]), 'seen must')])
def test_bad_requests(setup, kw, match):
    m, pairs, ut, it = setup
    with pytest.raises((ValueError, TypeError), match=match): rank(m, ut, it, progress=False, **kw)

@pytest.mark.parametrize('chunk_pairs', [32768, 100, 1])
def test_grid_matches_pairwise_at_minilm_size(chunk_pairs):
    "MiniLM's width (384), the default heads (256), three user and two item fields: the grid equals the per-pair forward within 1e-5."
    from causal_llmrec.bert import PairHeads
    torch.manual_seed(0)
    h = PairHeads(384, 256, 0.1, n_user_fields=3, n_item_fields=2).eval()
    with torch.no_grad():
        for p in h.parameters(): p.add_(0.02*torch.randn_like(p))
    U, V = torch.randn(7, 3*384)*0.3 + 0.1, torch.randn(40, 2*384)*0.3
    h.set_scaler(U, V)
    with torch.no_grad():
        new = h.grid(U, V, chunk_pairs=chunk_pairs)
        pair = h(U.repeat_interleave(40, 0), V.repeat(7, 1)).view(7, 40, 3)
    assert new.shape == (7, 40, 3) and new.abs().max() > 0.01 and (new - pair).abs().max() < 1e-5
    with pytest.raises(ValueError, match='chunk_pairs'): h.grid(U, V, chunk_pairs=0)

def test_rank_user_chunks_do_not_change_lists(setup):
    m, pairs, ut, it = setup
    a = rank(m, ut, it, k=4, progress=False).to_frame(); b = rank(m, ut, it, k=4, user_chunk=2, progress=False).to_frame()
    assert a.item_id.tolist() == b.item_id.tolist() and np.allclose(a.score, b.score, atol=1e-6)


@pytest.fixture(scope='module')
def xsetup():
    "A model whose heads read text and two covariates: one of the user, one of the (user, item) pair."
    pairs, ut, it, tau = toy_world(n_users=15, n_items=25, seed=2)
    feats = lambda p: pd.DataFrame({'u_feat': (p.user_id.to_numpy() % 3).astype(float),
                                    'pair_feat': np.cos(p.user_id.to_numpy() * 7.0 + p.item_id.to_numpy())})
    pairs = pd.concat([pairs, feats(pairs)], axis=1)
    m = CausalBert.tiny(seed=0, covariates=['u_feat', 'pair_feat'])
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=3, select='loss', progress=False)
    with torch.no_grad():   # move the zero-initialized deep part so that text, covariates and their interplay all count
        for p in m.heads.parameters(): p.add_(0.05*torch.randn_like(p))
    return m, pairs, ut, it, feats

def test_covariate_model_grid_equals_pairwise(xsetup):
    m, pairs, ut, it, feats = xsetup
    grid = rank(m, ut, it, k=6, features=feats, progress=False, user_chunk=4).to_frame()
    full = pd.DataFrame([(u, i) for u in ut.index for i in it.index], columns=['user_id', 'item_id'])
    p = predict(m, pd.concat([full, feats(full)], axis=1), ut, it)
    best = p.sort_values(['user_id', 'tau', 'item_id'], ascending=[True, False, True]).groupby('user_id').head(6)
    assert np.allclose(np.sort(grid.tau.to_numpy()), np.sort(best.tau.to_numpy()), atol=1e-5)
    cand = rank(m, ut, it, k=6, candidates=full, features=feats, progress=False).to_frame()   # features fill in the columns
    assert np.allclose(grid.score, cand.score, atol=1e-5)

def test_covariate_model_needs_features(xsetup):
    m, pairs, ut, it, feats = xsetup
    with pytest.raises(ValueError, match='needs features='): rank(m, ut, it, k=3, progress=False)
    with pytest.raises(ValueError, match='missing covariate'): rank(m, ut, it, k=3, candidates=pairs[['user_id', 'item_id']], progress=False)
    with pytest.raises(ValueError, match="lacks the model's covariate"):
        rank(m, ut, it, k=3, features=lambda p: feats(p).drop(columns='u_feat'), progress=False)
    with pytest.raises(ValueError, match='one row per pair'):
        rank(m, ut, it, k=3, features=lambda p: feats(p).iloc[:1], progress=False)

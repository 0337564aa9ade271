"Categorical variables as one node each (issue 13): dummy groups, bins, the grouped learners, and the hybrid engine."
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causal_llmrec.data import RecData
from causal_llmrec import discrete as DC
from causal_llmrec.discovery import (DiscoveryInputError, DummyGroups, KnowledgeError, adjustment_set, bootstrap_edges,
                                     dummy_groups, hybrid_search, learn_structure, quantile_bins, rec_knowledge,
                                     recdata_groups, state_codes)


def _world(n=3000, seed=0):
    "Users with a region (4 levels) that drives a segment (3 levels); items with a genre that drives popularity; both drive exposure and click."
    rng = np.random.default_rng(seed)
    nu, ni = 300, 40
    region = rng.choice(['north', 'south', 'east', 'west'], nu)
    segment = np.where(rng.random(nu) < 0.8, np.select([region == 'north', region == 'south'], ['a', 'b'], 'c'), rng.choice(['a', 'b', 'c'], nu))
    genre = rng.choice(['action', 'comedy', 'drama'], ni)
    pop = (genre == 'action') * 1.5 + rng.normal(size=ni)
    users = pd.DataFrame({'region': region, 'segment': segment}, index=pd.RangeIndex(nu, name='user_id'))
    items = pd.DataFrame({'genre': genre, 'popularity': pop}, index=pd.RangeIndex(ni, name='item_id'))
    u, i = rng.integers(0, nu, n), rng.integers(0, ni, n)
    lin = 1.2 * (segment[u] == 'a') + 0.8 * pop[i]
    exposure = (lin + rng.logistic(size=n) > 0.8).astype(int)
    outcome = (1.5 * exposure + 1.0 * (segment[u] == 'a') + rng.logistic(size=n) > 2.0).astype(float)
    inter = pd.DataFrame({'user_id': u, 'item_id': i, 'exposure': exposure, 'outcome': outcome})
    return RecData(users, items, inter, unique_pairs=False)


@pytest.fixture(scope='module')
def world():
    d = _world()
    flat = d.frame()
    return d, flat.drop(columns=['user_id', 'item_id'])


def test_groups_from_recdata_and_names_agree(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    assert g.variables == ['user_region', 'user_segment', 'item_genre']
    assert g.dummies['user_region'] == ['user_region_north', 'user_region_south', 'user_region_west']  # 'east' is the baseline
    assert g.levels['user_region'] == ['east', 'north', 'south', 'west'] and g.levels['item_genre'][0] == 'action'
    byname = dummy_groups(flat.columns, ['region', 'segment', 'genre'])
    assert byname.dummies == g.dummies and byname.levels['user_region'] == ['<baseline>', 'north', 'south', 'west']
    assert g.nodes(flat.columns) == ['user_region', 'user_segment', 'item_genre', 'item_popularity', 'exposure', 'outcome']


def test_collapse_is_exact_and_expand_inverts(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    V = g.collapse(flat)
    assert list(V.columns) == g.nodes(flat.columns) and len(V) == len(flat)
    users = d.users.reindex(d.interactions.user_id).reset_index(drop=True)
    assert (V['user_region'].astype(str).to_numpy() == users['region'].to_numpy()).all()  # the true level of every row
    assert (V['user_segment'].astype(str).to_numpy() == users['segment'].to_numpy()).all()
    assert V['item_popularity'].equals(flat['item_popularity'])
    assert g.expand(['user_region', 'exposure']) == g.dummies['user_region'] + ['exposure']


def test_longest_variable_name_wins():
    cols = ['item_genre_x', 'item_genre_y', 'item_genre_main_a', 'item_genre_main_b', 'item_year']
    g = dummy_groups(cols, ['genre', 'genre_main'], prefixes=['item_'])
    assert g.dummies == {'item_genre': ['item_genre_x', 'item_genre_y'], 'item_genre_main': ['item_genre_main_a', 'item_genre_main_b']}


def test_bad_groups_are_named(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    two = flat.copy(); two.loc[[3, 7], 'user_region_north'] = 1; two.loc[[3, 7], 'user_region_south'] = 1
    with pytest.raises(DiscoveryInputError, match="2 row.*'user_region'"): g.collapse(two)
    notdummy = flat.copy(); notdummy['user_region_west'] = notdummy['user_region_west'] * 2
    with pytest.raises(DiscoveryInputError, match="'user_region_west'.*other than 0/1"): g.collapse(notdummy)
    with pytest.raises(DiscoveryInputError, match='not in the frame'): g.collapse(flat.drop(columns='item_genre_drama'))
    with pytest.raises(DiscoveryInputError, match=r"\['colour'\]"): dummy_groups(flat.columns, ['genre', 'colour'])
    with pytest.raises(DiscoveryInputError, match='two variables'): DummyGroups({'a': ['x_1'], 'b': ['x_1']})
    with pytest.raises(DiscoveryInputError, match='no dummy columns'): DummyGroups({'a': []})
    with pytest.raises(TypeError, match='RecData'): recdata_groups(flat)


def test_quantile_bins():
    s = pd.DataFrame({'x': np.arange(100.0), 'y': np.r_[np.zeros(90), np.ones(10)], 'z': list('ab') * 50})
    b, edges = quantile_bins(s, ['x'], n_bins=4)
    assert b['x'].cat.ordered and b['x'].value_counts().tolist() == [25, 25, 25, 25]
    assert np.allclose(edges['x'], [0, 24.75, 49.5, 74.25, 99])
    b2, e2 = quantile_bins(s, ['y'], n_bins=5)  # two values: one state each
    assert list(b2['y'].cat.categories) == ['0', '1'] and (b2['y'].cat.codes == s['y']).all()
    heavy = pd.DataFrame({'w': np.r_[np.zeros(900), np.arange(1.0, 101)]})  # 90% zeros: the quantiles coincide
    b3, e3 = quantile_bins(heavy, ['w'], n_bins=4)
    assert b3['w'].nunique() >= 3 and (b3['w'].cat.codes[:900] == 0).all() and e3['w'][0] == 0 and e3['w'][-1] == 100
    with pytest.raises(DiscoveryInputError, match="'z'.*not numeric"): quantile_bins(s, ['z'])
    with pytest.raises(ValueError, match='n_bins=1'): quantile_bins(s, ['x'], n_bins=1)


def test_grouped_hybrid_learns_one_node_per_variable(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    kn = rec_knowledge(g.nodes(flat.columns))
    cg = learn_structure(flat, groups=g, n_bins=4, knowledge=kn, verbose=False)
    assert cg.method == 'hybrid' and sorted(cg.nodes) == sorted(g.nodes(flat.columns)) and set(cg.bins) == {'item_popularity'}
    E = set(cg.edges)
    assert ('exposure', 'outcome') in E and ('user_segment', 'exposure') in E and ('user_segment', 'outcome') in E
    assert {('user_region', 'user_segment'), ('user_segment', 'user_region')} & E  # the region drives the segment
    assert ('item_popularity', 'exposure') in E or ('item_genre', 'exposure') in E
    adj = adjustment_set(cg, 'exposure', 'outcome')
    assert 'user_segment' in adj and kn.violations(cg) == []
    assert cg.frame_columns(adj) == g.expand(adj) and set(g.dummies['user_segment']) <= set(cg.frame_columns(adj))
    assert cg.seconds < 30


def test_grouped_frame_equals_learning_on_the_categorical_columns(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    V = g.collapse(flat)
    a = learn_structure(flat, groups=g, n_bins=4, verbose=False)
    b = learn_structure(quantile_bins(V, ['item_popularity'], 4)[0], verbose=False)
    assert set(a.edges) == set(b.edges) and np.allclose(a.weights.to_numpy(), b.weights.to_numpy())


@pytest.mark.filterwarnings("ignore:.*removed to break cycles")
def test_grouped_notears_ties_siblings(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    cg = learn_structure(flat.iloc[:800], groups=g, method='notears', verbose=False, max_iter=30)
    assert cg.method == 'notears' and len(cg.nodes) == 6 and cg.groups is g
    assert cg.encoding.encoded['user_region'] == ['user_region=north', 'user_region=south', 'user_region=west']


def test_grouped_bootstrap_and_knowledge_check(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    kn = rec_knowledge(g.nodes(flat.columns))
    st = bootstrap_edges(flat, n_boot=3, groups=g, n_bins=4, knowledge=kn, progress=False)
    assert st.method == 'hybrid' and list(st.freq.index) == g.nodes(flat.columns) and st.freq.loc['exposure', 'outcome'] == 1.0
    with pytest.raises(KnowledgeError, match='groups.nodes'):
        learn_structure(flat, groups=g, n_bins=4, knowledge=rec_knowledge(flat.columns), verbose=False)
    with pytest.raises(DiscoveryInputError, match="'item_popularity'.*n_bins"):
        learn_structure(flat, groups=g, method='hybrid', verbose=False)


def test_hybrid_search_and_state_codes():
    rng = np.random.default_rng(1); z = rng.integers(0, 3, 3000)
    x = (z + (rng.random(3000) < 0.2)) % 3; y = (z + (rng.random(3000) < 0.2)) % 3
    C, k = state_codes(pd.DataFrame({'x': x, 'y': y, 'z': z}), {'x': [0, 1, 2], 'y': [0, 1, 2], 'z': [0, 1, 2]})
    W, info = hybrid_search(C, k, forbidden=[(0, 2), (1, 2)])
    assert set(zip(*np.nonzero(W))) == {(2, 0), (2, 1)} and (W[W > 0] > 0.1).all() and info['skeleton_pairs'] == 2
    with pytest.raises(DiscoveryInputError, match="'x'.*5"): state_codes(pd.DataFrame({'x': [0, 5]}), {'x': [0, 1, 2]})
    with pytest.raises(ValueError, match='alpha'): hybrid_search(C, k, alpha=1.5)


def test_module_chain_is_one_way():
    "discrete imports neither graphs nor discovery; graphs does not import discovery (no cycles)."
    import ast, inspect
    from causal_llmrec import graphs
    def siblings(mod):
        tree = ast.parse(inspect.getsource(mod))
        return {n.module.split('.')[-1] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                and (n.level == 1 or n.module.startswith('causal_llmrec'))}
    assert not siblings(DC) & {'graphs', 'discovery'}, siblings(DC)
    assert 'discrete' in siblings(graphs) and 'discovery' not in siblings(graphs)

def test_bootstrap_accepts_verbose(world):
    d, flat = world
    g = recdata_groups(d, flat.columns)
    st = bootstrap_edges(flat, n_boot=2, groups=g, n_bins=4, progress=False, verbose=False)  # as the pipeline calls it
    assert st.n_boot == 2 and st.freq.shape == (6, 6)

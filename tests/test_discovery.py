"Bad-input matrix, property tests and an end-to-end run for causal_llmrec.discovery (issue 3)."
import itertools
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from causal_llmrec.discovery import (DiscoveryInputError, DomainKnowledge, KnowledgeError, NoAdjustmentSetError,
                                     adjustment_set, bootstrap_edges, encode_frame, fit_bayesian_network,
                                     graph_metrics, is_valid_adjustment, learn_structure, random_dag, rec_knowledge,
                                     sample_linear_sem, select_threshold, threshold_path, backdoor_paths)


@pytest.fixture(scope='module')
def small():
    G = random_dag(5, expected_degree=2, seed=3)
    return G, sample_linear_sem(G, 400, seed=0)


# ---------------------------------------------------------------- bad input: each names the column or edge
BAD_FRAMES = [
    ('nan', lambda df: df.assign(x0=np.where(np.arange(len(df)) == 3, np.nan, df.x0)), DiscoveryInputError, ["'x0'", 'NaN']),
    ('inf', lambda df: df.assign(x1=np.where(np.arange(len(df)) == 0, np.inf, df.x1)), DiscoveryInputError, ["'x1'", 'infinite']),
    ('constant', lambda df: df.assign(k=7.0), DiscoveryInputError, ["'k'", 'constant']),
    ('single row', lambda df: df.iloc[:1], DiscoveryInputError, ['1 row']),
    ('empty', lambda df: df.iloc[:0], DiscoveryInputError, ['0 row']),
    ('free text', lambda df: df.assign(title=[f'movie {i}' for i in range(len(df))]), DiscoveryInputError, ["'title'", 'max_levels']),
    ('datetime', lambda df: df.assign(ts=pd.date_range('2020', periods=len(df), freq='h')), DiscoveryInputError, ["'ts'", 'dates']),
    ('objects', lambda df: df.assign(obj=[{'a': i % 3} for i in range(len(df))]), DiscoveryInputError, ["'obj'"]),
    ('mixed types', lambda df: df.assign(mix=[1 if i % 2 else 'a' for i in range(len(df))]), DiscoveryInputError, ["'mix'"]),
]


@pytest.mark.parametrize('name,make,exc,words', BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_raise_naming_the_column(small, name, make, exc, words):
    _, df = small
    for f in (lambda d: encode_frame(d), lambda d: learn_structure(d), lambda d: bootstrap_edges(d, n_boot=1, progress=False)):
        with pytest.raises(exc) as e:
            f(make(df))
        for w in words: assert w in str(e.value), (w, str(e.value))


def test_not_a_dataframe():
    with pytest.raises(TypeError, match='DataFrame'):
        learn_structure(np.zeros((10, 3)))


BAD_KNOWLEDGE = [
    ('required and forbidden', dict(forbidden=[('a', 'b')], required=[('a', 'b')]), ["('a', 'b')", 'forbidden']),
    ('required against tiers', dict(tiers=[['a'], ['b']], required=[('b', 'a')]), ["('b', 'a')", 'tier']),
    ('tiers form a cycle', dict(tiers=[['a', 'b'], ['c'], ['b']]), ["'b'", 'cycle']),
    ('required cycle', dict(required=[('a', 'b'), ('b', 'a')]), ["('a', 'b')"]),
    ('required 3-cycle', dict(required=[('a', 'b'), ('b', 'c'), ('c', 'a')]), ['cycle']),
    ('required into a root', dict(roots=['b'], required=[('a', 'b')]), ["('a', 'b')", 'root']),
    ('required out of a sink', dict(sinks=['a'], required=[('a', 'b')]), ["('a', 'b')", 'sink']),
    ('self loop', dict(forbidden=[('a', 'a')]), ["('a', 'a')", 'self-loop']),
    ('not a pair', dict(required=[('a', 'b', 'c')]), ['not a pair']),
    ('tier as string', dict(tiers=['abc']), ["'abc'"]),
]


@pytest.mark.parametrize('name,kw,words', BAD_KNOWLEDGE, ids=[b[0] for b in BAD_KNOWLEDGE])
def test_contradictory_knowledge(name, kw, words):
    with pytest.raises(KnowledgeError) as e:
        DomainKnowledge(**kw)
    for w in words: assert w in str(e.value), (w, str(e.value))


def test_knowledge_with_unknown_column(small):
    _, df = small
    with pytest.raises(KnowledgeError, match="'nope'"):
        learn_structure(df, knowledge=DomainKnowledge(forbidden=[('x0', 'nope')]))


def test_rec_knowledge_refuses_ids_and_missing_columns():
    with pytest.raises(KnowledgeError, match='user_id'):
        rec_knowledge(['user_id', 'user_age', 'exposure', 'outcome'])
    with pytest.raises(KnowledgeError, match="'click'"):
        rec_knowledge(['user_age', 'exposure', 'outcome'], outcome='click')


# ---------------------------------------------------------------- properties
@pytest.mark.parametrize('seed', range(4))
def test_knowledge_always_holds(seed):
    "Random knowledge consistent with a random order: the result is a DAG that keeps every rule."
    rng = np.random.default_rng(seed)
    G = random_dag(6, expected_degree=2, seed=seed)
    df = sample_linear_sem(G, 300, seed=seed)
    order = list(rng.permutation(list(G.nodes)))
    tiers = [order[:2], order[2:4], order[4:]]
    pairs = [(a, b) for a, b in itertools.permutations(G.nodes, 2)]
    forbidden = [pairs[i] for i in rng.choice(len(pairs), 4, replace=False)]
    required = [(order[0], order[5])] if (order[0], order[5]) not in forbidden else []
    k = DomainKnowledge(tiers=tiers, forbidden=forbidden, required=required, sinks=[order[5]], within_tiers=seed % 2 == 0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        cg = learn_structure(df, knowledge=k, threshold=0.05)
    assert nx.is_directed_acyclic_graph(cg.graph)
    assert k.violations(cg) == []
    for a, b in required: assert cg.graph[a][b]['origin'] == 'required'


def test_threshold_path_and_selection(small):
    G, df = small
    cg = learn_structure(df, standardize=False)
    tp = threshold_path(cg)
    assert tp['n_edges'].is_monotonic_decreasing and tp['is_dag'].iloc[-1]
    t = select_threshold(cg, 'dag')
    assert nx.is_directed_acyclic_graph(learn_structure(df, standardize=False, threshold=t).graph)
    with pytest.raises(ValueError, match='rule'):
        select_threshold(cg, 'median')


def test_graph_metrics_properties():
    T = random_dag(8, seed=1)
    m = graph_metrics(T, T)
    assert m.shd == 0 and m.precision == m.recall == m.f1 == 1
    R = nx.DiGraph(); R.add_nodes_from(T.nodes); R.add_edges_from((v, u) for u, v in T.edges)
    r = graph_metrics(R, T)  # every edge reversed: SHD = number of edges, skeleton perfect
    assert r.shd == T.number_of_edges() and r.skeleton_f1 == 1 and r.orientation_accuracy == 0 and r.tp == 0
    E = nx.DiGraph(); E.add_nodes_from(T.nodes)
    e = graph_metrics(E, T)
    assert e.shd == T.number_of_edges() and e.recall == 0
    with pytest.raises(ValueError, match='different nodes'):
        graph_metrics(nx.DiGraph([('a', 'b')]), nx.DiGraph([('a', 'c')]))


@pytest.mark.parametrize('seed', range(6))
def test_adjustment_set_is_valid_and_minimal(seed):
    G = random_dag(9, expected_degree=2.5, seed=seed)
    for t, y in itertools.permutations(sorted(G.nodes), 2):
        if not nx.has_path(G, t, y): continue
        try:
            Z = adjustment_set(G, t, y)
        except NoAdjustmentSetError:
            raise AssertionError('a fully observed DAG always has a backdoor set (the parents of t)')
        assert is_valid_adjustment(G, t, y, Z)
        for z in Z: assert not is_valid_adjustment(G, t, y, set(Z) - {z})
        assert is_valid_adjustment(G, t, y, set(G.predecessors(t)))  # the parents are always valid
        assert is_valid_adjustment(G, t, y, adjustment_set(G, t, y, minimal=False))
        assert not backdoor_paths(G, t, y, Z)['open'].any()


def test_adjustment_set_accepts_graph_types():
    G = nx.DiGraph([('c', 't'), ('c', 'y'), ('t', 'y')])
    from causal_llmrec.discovery import _causalnex
    sm = _causalnex()['StructureModel'](list(G.edges))
    assert adjustment_set(G, 't', 'y') == ('c',) == adjustment_set(sm, 't', 'y')
    with pytest.raises(TypeError, match='DiGraph'):
        adjustment_set([('c', 't')], 't', 'y')


def test_bayesian_network_bad_input():
    G = nx.DiGraph([('a', 'b')])
    df = pd.DataFrame({'a': [0, 1] * 20, 'b': [0, 1, 1, 0] * 10})
    with pytest.raises(DiscoveryInputError, match="'c'"):
        fit_bayesian_network(df, nx.DiGraph([('a', 'c')]))
    with pytest.raises(ValueError, match='cycle'):
        fit_bayesian_network(df, nx.DiGraph([('a', 'b'), ('b', 'a')]))
    bn = fit_bayesian_network(df, G)
    with pytest.raises(ValueError, match="not a state of 'a'"):
        bn.query('b', do={'a': 5})
    with pytest.warns(UserWarning, match=r"\['z'\]"):
        fit_bayesian_network(df.assign(z=np.arange(40) % 3), nx.DiGraph([('a', 'b'), ('z', 'z2')]).subgraph(['a', 'b', 'z']))


# ---------------------------------------------------------------- end to end
def test_end_to_end_mixed_data_to_adjustment_set():
    rng = np.random.default_rng(0); n = 1500
    user_age = rng.normal(size=n)
    item_kind = rng.choice(['a', 'b', 'c'], size=n)
    item_pop = 1.5 * (item_kind == 'a') + rng.normal(size=n)
    exposure = (2.0 * user_age + 1.5 * item_pop + rng.logistic(size=n) > 0.5).astype(int)
    outcome = (2.5 * exposure + 1.5 * item_pop + 2.0 * user_age + rng.logistic(size=n) > 1.5).astype(int)
    df = pd.DataFrame(dict(user_age=user_age, item_kind=item_kind, item_pop=item_pop, exposure=exposure, outcome=outcome))
    k = rec_knowledge(df.columns)
    cg = learn_structure(df, knowledge=k, threshold=0.2)  # binary outcome: standardized weights into it are ~0.25-0.5
    assert k.violations(cg) == [] and cg.encoding.kinds['item_kind'] == 'categorical'
    assert {('item_pop', 'exposure'), ('exposure', 'outcome'), ('item_pop', 'outcome')} <= set(cg.edges)
    Z = adjustment_set(cg, 'exposure', 'outcome', minimal=False)
    assert 'item_pop' in Z and 'user_age' in Z
    truth = nx.DiGraph([('user_age', 'exposure'), ('user_age', 'outcome'), ('item_kind', 'item_pop'),
                        ('item_pop', 'exposure'), ('item_pop', 'outcome'), ('exposure', 'outcome')])
    assert is_valid_adjustment(truth, 'exposure', 'outcome', Z)
    bn = fit_bayesian_network(df, cg)
    assert bn.effect('exposure', 'outcome') > 0.1


# ---------------------------------------------------------------- issue 17: discrete data, the hybrid learner, guards
def _bn_sample(name, n, seed=0):
    from pgmpy.utils import get_example_model
    from pgmpy.sampling import BayesianModelSampling
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m = get_example_model(name)
        df = BayesianModelSampling(m).forward_sample(size=n, seed=seed, show_progress=False)
    T = nx.DiGraph(); T.add_nodes_from(m.nodes); T.add_edges_from(m.edges)
    return df[list(T.nodes)], T


@pytest.fixture(scope='module')
def asia():
    return _bn_sample('asia', 3000)


def test_g_test_separates_dependence_from_independence():
    from causal_llmrec.discovery import g_test
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 4000); x = (z + (rng.random(4000) < 0.2)) % 3; y = (z + (rng.random(4000) < 0.2)) % 3
    C = np.column_stack([x, y, z]); k = np.array([3, 3, 3])
    p_marg, G, dof = g_test(C, k, 0, 1)
    assert p_marg < 1e-12 and dof == 4          # x and y are dependent through z
    p_cond, _, dof_c = g_test(C, k, 0, 1, [2])
    assert p_cond > 0.01 and dof_c == 3  # ... independent given z; in each stratum x and y take 2 of 3 states: 3 x (1 x 1)
    # the G statistic is 2 * n * the plug-in mutual information
    pxy = pd.crosstab(x, y, normalize=True).to_numpy(); px, py = pxy.sum(1), pxy.sum(0)
    mi = np.nansum(pxy * np.log(pxy / np.outer(px, py)))
    assert abs(G - 2 * 4000 * mi) < 1e-6


def test_auto_chooses_hybrid_on_discrete_data_and_prints_it(asia, capsys):
    df, T = asia
    learn_structure(df.head(300))
    assert capsys.readouterr().out == ''                                      # quiet by default
    cg = learn_structure(df, verbose=True)
    out = capsys.readouterr().out
    assert 'hybrid' in out and 'every column is discrete' in out
    assert cg.method == 'hybrid' and sorted(cg.nodes) == sorted(df.columns)  # one node per variable, no dummies
    assert nx.is_directed_acyclic_graph(cg.graph)
    m = graph_metrics(cg, T)
    assert m.shd <= 5 and m.skeleton_precision == 1.0, m  # the empty graph scores 8; causal-learn PC scored 6 on asia samples
    assert (cg.weights.to_numpy()[cg.weights.to_numpy() != 0] > 0).all()  # BIC gains of the kept edges


def test_continuous_data_still_go_to_notears(small, capsys):
    G, df = small
    cg = learn_structure(df, standardize=False, verbose=True)
    assert cg.method == 'notears' and 'NOTEARS' in capsys.readouterr().out
    assert graph_metrics(cg, G).shd == 0


def test_hybrid_beats_pc_like_baselines_on_sachs():
    "sachs, n = 2000: SHD of the hybrid is far below the empty graph's (17) and its skeleton is nearly exact."
    df, T = _bn_sample('sachs', 2000, seed=5)
    cg = learn_structure(df, verbose=False)
    m = graph_metrics(cg, T)
    assert m.shd <= 10 and m.skeleton_f1 >= 0.9, m


def test_integer_codes_are_flagged_and_treated_as_states(capsys):
    df, T = _bn_sample('sachs', 1500, seed=1)
    codes = df.apply(lambda s: s.map({'LOW': 0, 'AVG': 1, 'HIGH': 2})).astype(int)
    g_int = learn_structure(codes, verbose=True)
    out = capsys.readouterr().out
    assert 'integer columns' in out and 'categorical states' in out and g_int.method == 'hybrid'
    assert set(g_int.edges) == set(learn_structure(df, verbose=False).edges)  # same graph as with labels
    # on mixed data the integer column stays numeric, with a note naming it
    rng = np.random.default_rng(0)
    mixed = pd.DataFrame(dict(a=rng.normal(size=300), level=rng.integers(0, 4, 300)))
    mixed['b'] = mixed.a + 0.5 * mixed.level + rng.normal(size=300)
    cg = learn_structure(mixed, verbose=True)
    out = capsys.readouterr().out
    assert "['level']" in out and 'categorical=' in out and cg.encoding.kinds['level'] == 'continuous'


def test_hybrid_refuses_continuous_columns(small):
    _, df = small
    with pytest.raises(DiscoveryInputError, match="method='hybrid' needs discrete columns"):
        learn_structure(df, method='hybrid')
    with pytest.raises(ValueError, match='method='):
        learn_structure(df, method='pc')


@pytest.mark.parametrize('seed', range(3))
def test_knowledge_holds_in_the_hybrid(asia, seed):
    df, T = asia
    rng = np.random.default_rng(seed)
    cols = list(df.columns)
    order = list(rng.permutation(cols))
    k = DomainKnowledge(tiers=[order[:3], order[3:]], forbidden=[(order[3], order[4])], required=[(order[0], order[7])],
                        sinks=[order[7]])
    cg = learn_structure(df, knowledge=k, verbose=False)
    assert k.violations(cg) == [] and nx.is_directed_acyclic_graph(cg.graph)
    assert cg.graph[order[0]][order[7]]['origin'] == 'required'


def test_true_roots_and_sinks_help_the_hybrid(asia):
    df, T = asia
    roots = [v for v in T if T.in_degree(v) == 0]; sinks = [v for v in T if T.out_degree(v) == 0]
    free = graph_metrics(learn_structure(df, verbose=False), T).shd
    known = graph_metrics(learn_structure(df, knowledge=DomainKnowledge(roots=roots, sinks=sinks), verbose=False), T).shd
    assert known <= free


def test_bootstrap_with_the_hybrid(asia):
    df, T = asia
    st = bootstrap_edges(df.iloc[:1500], n_boot=3, seed=0, progress=False)
    assert st.method == 'hybrid' and st.threshold == 0.0
    pair = st.freq + st.freq.T
    assert pair.loc['lung', 'either'] == 1.0 and pair.loc['bronc', 'dysp'] == 1.0  # the strong edges every time (either direction)
    assert st.to_frame()['freq'].between(0, 1).all() and st.graph(0.5).graph.number_of_edges() >= 4
    assert st.freq.equals(bootstrap_edges(df.iloc[:1500], n_boot=3, seed=0, progress=False).freq)


def test_resource_guard_refuses_wide_frames():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(30, 101)), columns=[f'c{i}' for i in range(101)])
    with pytest.raises(DiscoveryInputError, match=r'101 columns.*max_columns=101'):
        learn_structure(wide)
    with pytest.raises(DiscoveryInputError, match='max_columns'):
        bootstrap_edges(wide, n_boot=1, progress=False)
    cat = pd.DataFrame({f'g{i}': rng.choice(list('abcdefghijkl'), 200) for i in range(10)})  # 10 columns, 110 dummies
    with pytest.raises(DiscoveryInputError, match=r'encode to 110 columns.*max_columns=110'):
        learn_structure(cat, method='notears')
    narrow = pd.DataFrame(rng.normal(size=(40, 4)), columns=list('abcd'))
    with pytest.raises(DiscoveryInputError, match='max_columns=3'):
        learn_structure(narrow, max_columns=3)
    assert learn_structure(narrow, max_columns=4, verbose=False).graph.number_of_nodes() == 4


def test_empty_data_and_cyclic_graphs_give_clear_errors():
    with pytest.raises(DiscoveryInputError, match='no columns'):
        learn_structure(pd.DataFrame())
    with pytest.raises(DiscoveryInputError, match='0 row'):
        learn_structure(pd.DataFrame({'a': [], 'b': []}))
    cyc = nx.DiGraph([('a', 'b'), ('b', 'c'), ('c', 'a')])
    with pytest.raises(ValueError, match='cycle'):
        adjustment_set(cyc, 'a', 'c')
    df = pd.DataFrame({'a': [0, 1] * 20, 'b': [0, 0, 1, 1] * 10, 'c': [1, 0, 0, 1] * 10})
    with pytest.raises(ValueError, match='cycle'):
        fit_bayesian_network(df, cyc)
    with pytest.raises(KnowledgeError, match='cycle'):
        learn_structure(df, knowledge=DomainKnowledge(required=[('a', 'b'), ('b', 'c'), ('c', 'a')]))


def test_stability_threshold_on_a_linear_dag():
    "threshold='stability' lands above the noise band, where every pair is decided across half-sample fits."
    G = random_dag(5, expected_degree=2, seed=3)
    df = sample_linear_sem(G, 600, seed=0)
    cg = learn_structure(df, standardize=False, threshold='stability', n_subsamples=4, verbose=False)
    p = cg.stability_path.set_index('threshold')
    assert p.loc[cg.threshold, 'undecided_pairs'] == 0 and (p.loc[:cg.threshold, 'undecided_pairs'] > 0).any()
    assert 0.05 < cg.threshold < 0.5 and graph_metrics(cg, G).shd == 0
    with pytest.raises(ValueError, match='rule'):
        learn_structure(df, threshold='median', verbose=False)


def test_hybrid_settings_are_checked_and_quiet_when_asked(asia, capsys):
    df, _ = asia
    with pytest.raises(ValueError, match=r'alpha=1.5 must be in \(0, 1\)'):
        learn_structure(df, alpha=1.5, verbose=False)
    capsys.readouterr()
    one = learn_structure(df, alpha=0.05, verbose=False)
    assert capsys.readouterr().out == ''  # verbose=False prints nothing
    assert nx.is_directed_acyclic_graph(one.graph) and one.method == 'hybrid'
    learn_structure(df, threshold=0.1, verbose=True)  # a NOTEARS threshold given to the hybrid is not silently dropped
    assert "threshold=0.1 is not used by the hybrid" in capsys.readouterr().out

"causal_llmrec.graphs on its own (issue 15's split): the names discovery re-exports are graphs' own, and graphs reasons on any DAG."
import networkx as nx
import pytest

from causal_llmrec import discovery, graphs


def test_discovery_reexports_graphs_and_discrete():
    from causal_llmrec import discrete
    for name in ('adjustment_set', 'backdoor_paths', 'is_valid_adjustment', 'AdjustmentSet', 'NoAdjustmentSetError',
                 'graph_metrics', 'GraphMetrics', 'BayesNet', 'fit_bayesian_network', 'do_query', 'plot_dag',
                 'random_dag', 'sample_linear_sem', '_causalnex'):
        assert getattr(discovery, name) is getattr(graphs, name), name
    for name in ('DiscoveryInputError', 'Encoding', 'encode_frame', 'g_test', 'DummyGroups', 'dummy_groups', 'recdata_groups'):
        assert getattr(discovery, name) is getattr(discrete, name), name
    assert {'adjustment_set', 'DummyGroups', 'recdata_groups', 'learn_structure'} <= set(discovery.__all__)


def test_adjustment_on_a_plain_digraph():
    G = nx.DiGraph([('age', 'exposure'), ('age', 'click'), ('pop', 'exposure'), ('pop', 'click'), ('exposure', 'click'),
                    ('exposure', 'dwell'), ('dwell', 'click')])
    full = graphs.adjustment_set(G, 'exposure', 'click', minimal=False)
    assert set(full) == {'age', 'pop'} and full.treatment == 'exposure'
    assert graphs.is_valid_adjustment(G, 'exposure', 'click', ['age', 'pop'])
    assert not graphs.is_valid_adjustment(G, 'exposure', 'click', ['age', 'pop', 'dwell'])  # a mediator is a descendant
    with pytest.raises(graphs.NoAdjustmentSetError, match="latent variables \\['age'\\]"):
        graphs.adjustment_set(G, 'exposure', 'click', latent=['age'])
    m = graphs.graph_metrics(nx.DiGraph([('age', 'exposure'), ('exposure', 'age')][:1]), nx.DiGraph([('exposure', 'age')]))
    assert (m.shd, m.reversed) == (1, 1)

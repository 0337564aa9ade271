"Relative tie tolerance of the nearest-neighbour engines (causal_llmrec.neighbours), against brute force."
import numpy as np, pytest
from causal_llmrec.neighbours import nearest_neighbours, _knn_1d, _knn_tree, _knn_kdgemm, _knn_brute, MatchingError
from causal_llmrec import matching

def test_matching_reexports_the_engines():
    assert matching.nearest_neighbours is nearest_neighbours and matching.MatchingError is MatchingError
    assert matching._knn_1d is _knn_1d

def test_relative_tolerance_adds_no_ties_where_scores_crowd_near_zero():
    q = np.array([0.0]); r = np.array([1e-6, 1e-6 + 1e-13, 3e-6])
    assert np.diff(_knn_1d(q, r, 1, tie2=1e-10)[0])[0] == 3              # an absolute band swallows every crowded score
    assert np.diff(_knn_1d(q, r, 1, rtol=1e-9)[0])[0] == 1               # a relative one keeps the nearest only
    r2 = np.array([1.0, 1.0 + 1e-12, 1.5])
    assert np.diff(_knn_1d(q, r2, 1, rtol=1e-9)[0])[0] == 2              # rounding-level differences still tie

def _brute(Q, R, k, rtol):
    out = []
    for x in Q:
        d = np.sqrt(((R - x) ** 2).sum(1)); kth = np.sort(d)[k - 1]
        out.append(set(np.nonzero(d <= kth * (1 + rtol))[0]))
    return out

@pytest.mark.parametrize('engine', ['tree', 'kdgemm', 'brute', 'public'])
@pytest.mark.parametrize('k', [1, 3])
def test_engines_agree_with_brute_force_under_a_relative_tolerance(engine, k):
    rng = np.random.default_rng(k)
    R = rng.integers(0, 6, (900, 6)).astype(float) * 0.5; Q = rng.integers(0, 6, (200, 6)).astype(float) * 0.5 + 0.01
    rtol = 0.02                                                        # large enough to create near-ties on this grid
    f = {'tree': lambda: _knn_tree(Q, R, k, 0.0, np.inf, rtol=rtol),
         'kdgemm': lambda: _knn_kdgemm(Q, R, k, 0.0, np.inf, leafsize=16, home_size=64, rtol=rtol),
         'brute': lambda: _knn_brute(Q, R, k, 0.0, np.inf, lambda A, B: np.sqrt(((A[:, None] - B[None]) ** 2).sum(-1)), rtol=rtol),
         'public': lambda: nearest_neighbours(Q, R, k, tie_rtol=rtol)}[engine]
    ptr, j, _ = f()
    want = _brute(Q, R, k, rtol)
    assert all(set(j[ptr[i]:ptr[i + 1]].tolist()) == want[i] for i in range(len(Q)))
    assert any(len(w) > k for w in want)                              # ties beyond k did occur

def test_matching_error_is_the_package_error_and_a_value_error():
    from causal_llmrec.errors import CausalLLMRecError
    assert issubclass(MatchingError, CausalLLMRecError) and issubclass(MatchingError, ValueError)
    with pytest.raises(CausalLLMRecError, match='Zr is empty'): nearest_neighbours(np.zeros(3), np.zeros(0))

def test_a_given_sort_is_reused_and_gives_the_same_answer():
    from causal_llmrec.neighbours import _argsort_stable
    rng = np.random.default_rng(0)
    for q, r, k, cal in [(rng.random(3000), rng.random(7000), 1, np.inf), (np.round(rng.random(3000), 2), np.round(rng.random(7000), 2), 3, np.inf),
                         (rng.random(60000), rng.random(90000), 2, 1e-5)]:
        fresh = _knn_1d(q, r, k, 0.0, cal, 1e-9)
        given = _knn_1d(q, r, k, 0.0, cal, 1e-9, q_sorted=_argsort_stable(q), r_sorted=_argsort_stable(r))
        assert all(np.array_equal(a, b) for a, b in zip(fresh, given))

def test_tie_guard_counts_the_searched_ranges_before_building_pairs():
    "A line with 3 values: the guard's count is the exact number of tied pairs the search would build, and it refuses above the limit."
    from causal_llmrec.neighbours import _TieOverflow
    rng = np.random.default_rng(1)
    q = rng.integers(0, 3, 400).astype(float); r = rng.integers(0, 3, 900).astype(float)
    ptr, j, d = _knn_1d(q, r, 1)
    want = sum(int((r == v).sum()) for v in q)                           # each query ties with every reference of its value
    assert ptr[-1] == want
    assert _knn_1d(q, r, 1, max_ties=want - len(q))[0][-1] == want     # exactly at the limit: allowed
    with pytest.raises(_TieOverflow) as e: _knn_1d(q, r, 1, max_ties=want - len(q) - 1)
    assert e.value.pairs == want and e.value.queries == len(q) and isinstance(e.value, MatchingError)

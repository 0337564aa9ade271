"Sensitivity analysis (causal_llmrec.sensitivity) against published values and a peer's (bench/matching_sensitivity_published.py)."
import math
import numpy as np, pandas as pd, pytest
from scipy import stats
from causal_llmrec.sensitivity import rosenbaum_bounds, e_value, robustness_value, ovb_sensitivity, _ovb_adjust
from causal_llmrec.neighbours import MatchingError

LEAD_T = [38, 23, 41, 18, 37, 36, 23, 62, 31, 34, 24, 14, 21, 17, 16, 20, 15, 10, 45, 39, 22, 35, 49, 48, 44, 35, 43, 39, 34, 13, 73, 25, 27]
LEAD_C = [16, 18, 18, 24, 19, 11, 10, 15, 16, 18, 18, 13, 19, 10, 16, 16, 24, 13, 9, 14, 21, 19, 7, 18, 19, 12, 11, 22, 25, 16, 13, 11, 13]

@pytest.mark.parametrize('zeros, expected', [   # StatsPAI 1.40.2 rosenbaum_bounds(zero_method='wilcox' / 'pratt'), Gamma = 2, 4, 6
    ('drop', [0.001771704284, 0.03665836102, 0.1073412133]), ('pratt', [0.001789875977, 0.03878978249, 0.1150195011])])
def test_rosenbaum_bounds_lead_pairs_match_the_peer(zeros, expected):
    rb = rosenbaum_bounds(LEAD_T, LEAD_C, gammas=[2, 4, 6], zeros=zeros)
    assert np.allclose(rb.p_upper, expected, rtol=1e-9, atol=0) and (rb.p_lower < rb.p_upper).all() and rb.n_pairs[0] == 32

def test_rosenbaum_bounds_gamma_one_is_the_signed_rank_test_and_bad_input_raises():
    d = np.array(LEAD_T) - np.array(LEAD_C); d = d[d != 0]; r = stats.rankdata(np.abs(d))
    z = (r[d > 0].sum() - r.sum() / 2) / math.sqrt((r ** 2).sum() / 4)
    rb = rosenbaum_bounds(LEAD_T, LEAD_C, gammas=[1])
    assert rb.p_upper[0] == rb.p_lower[0] and abs(rb.p_upper[0] - stats.norm.sf(z)) < 1e-15
    with pytest.raises(MatchingError, match='Gamma'): rosenbaum_bounds(LEAD_T, LEAD_C, gammas=[0.5])
    with pytest.raises(MatchingError, match='same 1-D shape'): rosenbaum_bounds(LEAD_T, LEAD_C[:-1])
    with pytest.raises(MatchingError, match='zeros'): rosenbaum_bounds(LEAD_T, LEAD_C, zeros='keep')
    with pytest.raises(MatchingError, match='nonzero'): rosenbaum_bounds([1, 2, 3], [1, 2, 3])
    no_zero = np.array(LEAD_T) + 0.5                                     # no zero difference: both conventions agree
    assert np.allclose(rosenbaum_bounds(no_zero, LEAD_C, zeros='pratt').p_upper, rosenbaum_bounds(no_zero, LEAD_C).p_upper)

def test_e_value_published_example():
    ev = e_value(3.9, 1.8, 8.7)                      # VanderWeele & Ding (2017): 7.26 and 3.0
    assert round(ev.e_value, 2) == 7.26 and round(ev.e_value_ci, 2) == 3.0
    assert e_value(1.2, 0.9, 1.5).e_value_ci == 1.0
    with pytest.raises(MatchingError, match='risk ratio'): e_value(-0.3)

def test_robustness_value_and_bounds_reproduce_sensemakr_darfur():
    # values asserted by R sensemakr's tests/testthat/test-02-darfur.R (estimate 0.09731582, se 0.02325654, 783 df)
    t = 0.09731582 / 0.02325654
    assert abs(robustness_value(t, 783) - 0.1387764) < 5e-7 and abs(robustness_value(t, 783, alpha=0.05) - 0.07625797) < 5e-8
    a, s, tt = _ovb_adjust(0.09731582, 0.02325654, 783, 0.00916428667504862, 0.12464092303637)
    assert abs(a - 0.0752202698486415) < 1e-12 and abs(s - 0.0218733298036818) < 1e-12 and abs(tt - 3.43890347394571) < 1e-9

def test_ovb_sensitivity_matches_ols_and_its_own_bounds():
    rng = np.random.default_rng(0); n = 600
    x1, x2 = rng.standard_normal(n), rng.standard_normal(n)
    d = (0.8 * x1 + rng.standard_normal(n) > 0).astype(int); y = 0.5 * d + x1 + 0.3 * x2 + rng.standard_normal(n)
    df = pd.DataFrame(dict(d=d, y=y, x1=x1, x2=x2))
    o = ovb_sensitivity(df, 'd', 'y', covariates=['x1', 'x2'], kd=[1, 2])
    A = np.column_stack([np.ones(n), d, x1, x2]); b, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    se = math.sqrt(res[0] / (n - 4) * np.linalg.inv(A.T @ A)[1, 1])
    assert abs(o.estimate - b[1]) < 1e-10 and abs(o.se - se) < 1e-10 and o.dof == n - 4
    assert len(o.bounds) == 4 and (o.bounds.adjusted_estimate < o.estimate).all()
    q = stats.t.ppf(0.975, o.dof)
    assert np.allclose(o.bounds.adjusted_lower, o.bounds.adjusted_estimate - q * o.bounds.adjusted_se)
    with pytest.raises(MatchingError, match='benchmark'): ovb_sensitivity(df, 'd', 'y', covariates=['x1'], benchmark=['x2'])

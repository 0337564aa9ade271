"""bert_effects: the variance formulas of `estimate_effects` against Monte Carlo spreads, and the CR1 formula by hand (issue 12)."""
import math
import numpy as np, pandas as pd, pytest
from causal_llmrec.bert_effects import estimate_effects, _se


def _world(rng, gamma, n_users=100, per_user=20):
    "Pairs with user- and pair-level covariates, independent Bernoulli exposure and coupled potential outcomes (as `simulate`)."
    u = np.repeat(np.arange(n_users), per_user)
    x = rng.normal(size=n_users)[u] + rng.normal(size=len(u))
    e = 1/(1 + np.exp(-(-0.85 + gamma*x)))
    mu0 = 1/(1 + np.exp(-(-1.7 + 0.8*x))); mu1 = 1/(1 + np.exp(-(-0.5 + 0.4*x)))
    u01 = rng.random(len(u)); y0, y1 = (u01 < mu0).astype(float), (u01 < mu1).astype(float)
    t = (rng.random(len(u)) < e).astype(int)
    pred = pd.DataFrame(dict(user_id=u, exposure=t, outcome=np.where(t == 1, y1, y0), g=e, q0=mu0, q1=mu1))
    return pred, float((mu1 - mu0).mean()), float((mu1 - mu0)[t == 1].mean())


@pytest.mark.parametrize('gamma', [0.0, 1.0])
def test_conditional_se_matches_monte_carlo_spread(gamma):
    "With the true nuisances, the conditional AIPW standard error (CR1 by user or HC) equals the spread of the error around the world's own ATE/ATT."
    rng = np.random.default_rng(12)
    rows = []
    for _ in range(300):
        pred, ate, att = _world(rng, gamma)
        for cluster in ('user_id', None):
            r = estimate_effects(pred, target='conditional', cluster=cluster)
            rows += [dict(cluster=str(cluster), est=k, err=r[k, 'AIPW'].estimate - truth, se=r[k, 'AIPW'].se) for k, truth in (('ATE', ate), ('ATT', att))]
    R = pd.DataFrame(rows)
    S = R.groupby(['cluster', 'est']).agg(sd=('err', 'std'), se=('se', 'mean'),
                                          cover=('err', lambda e: float((np.abs(e) <= 1.96*R.loc[e.index, 'se']).mean())))
    assert ((S.se/S.sd).between(0.87, 1.13)).all(), S
    assert S.cover.between(0.91, 0.985).all(), S


def test_population_se_adds_the_spread_of_tau():
    "The population target's standard error is larger than the conditional one by the spread of tau(x); the estimates are equal."
    pred, _, _ = _world(np.random.default_rng(3), 0.0)
    p, c = estimate_effects(pred), estimate_effects(pred, target='conditional')
    tau = (pred.q1 - pred.q0).to_numpy()
    for k in ('ATE', 'ATT'):
        assert p[k, 'AIPW'].estimate == c[k, 'AIPW'].estimate and p[k, 'AIPW'].se > c[k, 'AIPW'].se
    # ATE, independent pairs: the population variance is the conditional one plus the variance of tau (and twice their covariance)
    pi, ci = estimate_effects(pred, cluster=None), estimate_effects(pred, cluster=None, target='conditional')
    t, y, g = pred.exposure.to_numpy(), pred.outcome.to_numpy(), pred.g.to_numpy()
    resid = t*(y - pred.q1.to_numpy())/g - (1 - t)*(y - pred.q0.to_numpy())/(1 - g)
    n = len(pred)
    assert math.isclose(pi['ATE', 'AIPW'].se**2, ci['ATE', 'AIPW'].se**2 + (np.var(tau, ddof=1) + 2*np.cov(tau, resid)[0, 1])/n, rel_tol=1e-9)


def test_cr1_by_hand():
    phi = np.array([1., -1., 2., 0., 3., -2.]); grp = np.array([0, 0, 1, 1, 2, 2])
    c = np.array([-1., 1., 0.])          # cluster sums of phi - mean(phi) (mean 0.5)
    assert math.isclose(_se(phi, grp), math.sqrt((c**2).sum()*3/2)/6, rel_tol=1e-12)
    assert math.isclose(_se(phi, None), phi.std(ddof=1)/math.sqrt(6), rel_tol=1e-12)
    assert math.isnan(_se(phi, np.zeros(6)))


def test_bad_cluster_and_target():
    pred, _, _ = _world(np.random.default_rng(0), 0.0, n_users=10, per_user=5)
    with pytest.raises(ValueError, match="cluster column 'session'"): estimate_effects(pred, cluster='session')
    with pytest.raises(ValueError, match="target must be"): estimate_effects(pred, target='sample')

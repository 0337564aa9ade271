"The Schnabel et al. (2016) replication (causal_llmrec.schnabel): weighted MF, the MNAR estimators, the prediction matrices and debiased learning (fast: synthetic data only)."
import numpy as np
import pytest

from causal_llmrec.evaluate import EvaluationInputError
from causal_llmrec.schnabel import (MatrixFactorization, schnabel_propensities, schnabel_predictions, mnar_estimates,
                                    schnabel_learning)


def test_mf_recovers_low_rank_and_ips_weights_matter():
    rng = np.random.default_rng(0); U, I = 60, 40
    R = 3 + rng.normal(size=(U, 2)) @ rng.normal(size=(2, I))
    u, i = np.nonzero(rng.random((U, I)) < .5)
    mf = MatrixFactorization(n_factors=2, l2=1e-3, n_iter=30).fit(u, i, R[u, i], n_users=U, n_items=I)
    assert np.sqrt(((mf.predict_matrix() - R) ** 2).mean()) < 0.2
    w = np.where(R[u, i] > 3, 100.0, 1.0)
    mfw = MatrixFactorization(n_factors=1, l2=1e-3, n_iter=10).fit(u, i, R[u, i], weights=w, n_users=U, n_items=I)
    assert mfw.mu_ > mf.mu_                       # the weighted mean leans to the heavily weighted ratings


def test_mnar_estimators_on_full_observation():
    rng = np.random.default_rng(0); d = rng.random((20, 30)); P = np.full(d.shape, 1.0)
    e = mnar_estimates(d, np.ones(d.shape, bool), P)
    assert e['naive'] == pytest.approx(e['true']) and e['IPS'] == pytest.approx(e['true']) and e['SNIPS'] == pytest.approx(e['true'])


def test_schnabel_predictions_definitions():
    rng = np.random.default_rng(0); Y = rng.choice([1, 2, 3, 4, 5], size=(50, 60), p=[.5, .2, .15, .1, .05])
    p = schnabel_predictions(Y, seed=0); n5 = (Y == 5).sum()
    assert ((p['REC_ONES'] != Y).sum() == n5) and set(np.unique(Y[p['REC_ONES'] != Y])) == {1}
    assert ((p['REC_FOURS'] != Y).sum() == n5) and set(np.unique(Y[p['REC_FOURS'] != Y])) == {4}
    assert (p['ROTATE'][Y == 1] == 5).all() and (p['ROTATE'][Y > 1] == Y[Y > 1] - 1).all()
    assert set(np.unique(p['COARSENED'])) == {3, 4} and p['SKEWED'].min() >= 0 and p['SKEWED'].max() <= 6
    P = schnabel_propensities(Y, alpha=.25, obs_rate=.05)
    assert P.mean() == pytest.approx(.05) and P[Y == 5].max() == pytest.approx(P[Y == 4].max())
    assert P[Y == 3].max() == pytest.approx(.25 * P[Y == 4].max())


def test_schnabel_learning_extra_learners_on_first_masks():
    "Extra learners run on the first `extra_reps` masks only, see the same mask as MF, and are scored on every entry."
    rng = np.random.default_rng(0); Y = rng.choice([1, 2, 3, 4, 5], size=(40, 50), p=[.5, .2, .15, .1, .05])
    seen = []
    def oracle(u, i, r, p, nU, nI, seed):            # returns the truth: zero error; records what it was given
        seen.append((len(r), seed)); assert (Y[u, i] == r).all() and p.min() > 0
        return Y.astype(float)
    def wrong_shape(u, i, r, p, nU, nI, seed): return np.ones((2, 2))
    res = schnabel_learning(Y, obs_rate=.2, n_reps=3, n_factors=2, l2_grid=(.1,), n_iter=3, progress=False,
                            extra={'oracle': oracle}, extra_reps=2)
    assert len(seen) == 2 and [s for _, s in seen] == [0, 1]
    assert res.loc['oracle', 'n_masks'] == 2 and res.loc['MF naive', 'n_masks'] == 3
    assert res.loc['oracle', 'MSE'] == 0 and res.loc['MF naive', 'MSE'] > 0
    with pytest.raises(EvaluationInputError, match="extra_reps"):
        schnabel_learning(Y, n_reps=1, extra={'oracle': oracle}, extra_reps=2, progress=False)
    with pytest.raises(EvaluationInputError, match=r"returned shape \(2, 2\), expected \(40, 50\)"):
        schnabel_learning(Y, obs_rate=.2, n_reps=1, n_factors=2, l2_grid=(.1,), n_iter=2, progress=False, extra={'bad': wrong_shape})


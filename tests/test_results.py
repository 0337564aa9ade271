"""The result protocol (causal_llmrec.results): every `summary()` returns a `Summary` (title, table, notes; text and HTML
forms), and every result refuses attribute assignment once returned while `dataclasses.replace` gives a changed copy."""
import copy, dataclasses, pickle
import numpy as np
import pandas as pd
import pytest

from causal_llmrec.errors import CausalLLMRecError
from causal_llmrec.results import Summary, Result, ResultList, ImmutableResultError, format_number
from causal_llmrec.effects import EffectResult, EffectResults, OverlapWarning
from causal_llmrec.matching import MatchResult, match, cem, load_lalonde
from causal_llmrec.weighting import ipw, aipw
from causal_llmrec.sensitivity import ovb_sensitivity, OVBSensitivity
from causal_llmrec.evaluate import ranking_metrics, simulate_ab_test, refute, RankingResult, ABTestResult, Refutation
from causal_llmrec.ope import off_policy_value, uniform_policy, OPEResult
from causal_llmrec.worlds import cold_start_split, ColdStartSplit
from causal_llmrec.bert import CausalBert, toy_world
from causal_llmrec.bert_train import fit, TrainResult

COV = ['age', 'educ', 're74', 're75']


@pytest.fixture(scope='module')
def lal(): return load_lalonde('experimental')


@pytest.fixture(scope='module')
def toy():
    rng = np.random.default_rng(0); n = 1500
    x = rng.normal(size=n); t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    return pd.DataFrame(dict(x=x, t=t, y=2.0 * t + x + rng.normal(size=n)))


def _results(lal, toy):
    "One result of every class that has summary(), from the package's own estimators."
    rng = np.random.default_rng(1)
    recs = pd.DataFrame(dict(user_id=np.repeat(range(20), 3), item_id=rng.integers(0, 30, 60), rank=np.tile([1, 2, 3], 20)))
    truth = pd.DataFrame(dict(user_id=range(20), item_id=rng.integers(0, 30, 20)))
    world = pd.DataFrame(dict(user_id=np.repeat(range(40), 5), item_id=np.tile(range(5), 40), mu0=0.1, mu1=0.3))
    A = world[world.item_id < 2]; B = world[world.item_id >= 3]
    a = rng.choice(4, 800, p=[.4, .3, .2, .1])
    logs = pd.DataFrame(dict(item_id=a, outcome=(rng.random(800) < .2).astype(float), propensity=np.array([.4, .3, .2, .1])[a]))
    pairs = pd.DataFrame(dict(user_id=np.repeat(range(60), 10), item_id=rng.integers(0, 80, 600)))
    with pytest.warns(OverlapWarning, match='CEM discarded 22 treated and 19 control'):
        cem_ = cem(lal, 'treat', 're78', covariates=['age', 'educ'])
    tp, ut, it, _ = toy_world(n_users=20, n_items=10, seed=0)
    return dict(ipw=ipw(lal, 'treat', 're78', covariates=COV), aipw=aipw(toy, 't', 'y', ['x'], seed=0),
                match=match(lal, 'treat', 're78', covariates=COV), cem=cem_,
                ovb=ovb_sensitivity(lal, 'treat', 're78', covariates=COV, kd=[1]),
                ranking=ranking_metrics(recs, truth, k=3), ab=simulate_ab_test(world, A, B, seed=0),
                refute=refute(ipw, toy, 't', 'y', ['x'], tests=('placebo',), n_placebo=2, seed=0),
                ope=off_policy_value(logs, uniform_policy(range(4)), position=None, n_boot=20),
                split=cold_start_split(pairs, seed=0),
                train=fit(CausalBert.tiny(seed=0), tp, ut, it, strategy='cached', head_epochs=2, progress=False))


@pytest.fixture(scope='module')
def results(lal, toy): return _results(lal, toy)


CLASSES = dict(ipw=EffectResult, aipw=EffectResult, match=MatchResult, cem=MatchResult, ovb=OVBSensitivity, ranking=RankingResult,
               ab=ABTestResult, refute=Refutation, ope=OPEResult, split=ColdStartSplit, train=TrainResult)
FIELD = dict(ipw='estimate', aipw='estimate', match='estimate', cem='se', ovb='estimate', ranking='k', ab='lift', refute='estimate',
             ope='n', split='params', train='note')


@pytest.mark.parametrize('name', list(CLASSES))
def test_summary_is_a_summary_with_text_and_html(results, name):
    r = results[name]
    assert type(r) is CLASSES[name] and isinstance(r, Result)
    s = r.summary()
    assert isinstance(s, Summary) and s.title.startswith(CLASSES[name].__name__)
    text, page = str(s), s.to_html()
    assert text.splitlines()[0] == s.title and repr(s) == text and s._repr_html_() == page
    assert page.startswith('<div class="causal-llmrec-summary"><p><strong>') and '<table' in page and 'NaN' not in page
    f = s.to_frame()
    assert isinstance(f, pd.DataFrame) and len(f) >= 1 and f.equals(s.table) and f is not s.table
    if name == 'split': assert r._repr_html_ is None and 'held out of training' in repr(r)   # a notebook shows its repr; summary() the table
    else: assert r._repr_html_() == page and repr(r) == text         # what a notebook shows, and what print shows


@pytest.mark.parametrize('name', list(CLASSES))
def test_results_refuse_assignment_and_replace_gives_a_copy(results, name):
    r = results[name]; attr = FIELD[name]; old = getattr(r, attr)
    with pytest.raises(ImmutableResultError, match=rf"cannot set '{attr}': results are immutable.*dataclasses\.replace\(result, {attr}=\.\.\.\)"):
        setattr(r, attr, 1)
    with pytest.raises(AttributeError, match='immutable'): delattr(r, attr)
    with pytest.raises(ImmutableResultError, match="has no field 'extra'"): r.extra = 1
    assert getattr(r, attr) is old
    new = dataclasses.replace(r, **{attr: 7})
    assert type(new) is type(r) and getattr(new, attr) == 7 and getattr(r, attr) is old
    with pytest.raises(ImmutableResultError): setattr(new, attr, 8)
    for c in (copy.deepcopy(r), pickle.loads(pickle.dumps(r))):
        with pytest.raises(ImmutableResultError): setattr(c, attr, 8)


def test_effect_result_summary_numbers(lal):
    t, y = lal.treat == 1, lal.re78
    d = y[t].mean() - y[~t].mean(); s = np.sqrt(y[t].var() / t.sum() + y[~t].var() / (~t).sum())
    r = EffectResult('difference in means', 'ATE', d, s, (d - 1.959964 * s, d + 1.959964 * s), 'Neyman', 185, 260, [])
    assert round(r.estimate, 2) == 1794.34 and round(r.se, 2) == 671.0
    sm = r.summary(); f = sm.to_frame()
    assert list(f.columns) == ['estimand', 'estimate', 'se', 'ci_low', 'ci_high', 'pvalue', 'n_treated', 'n_control']
    assert f.estimate.iloc[0] == r.estimate and f.pvalue.iloc[0] == pytest.approx(0.00749, abs=1e-5)
    assert str(sm).splitlines()[2].split() == ['ATE', '1,794', '671', '479.2', '3,109', '0.007492', '185', '260']
    assert '<td>1,794</td>' in sm.to_html() and 'covariates (0): none' in sm and str(sm) == repr(r)
    assert sm == str(sm) and sm == dataclasses.replace(sm) and sm != dataclasses.replace(sm, title='x')


def test_ipw_keeps_its_weights_without_mutation(results, lal):
    r = results['ipw']
    assert isinstance(r.weights, pd.Series) and len(r.weights) == len(lal) and r.weights.name == 'weight'
    ps = r.details['_data']['ps']; t = lal.treat.to_numpy() == 1; w = r.weights.to_numpy()
    assert r.estimand == 'ATE' and np.allclose(w[t], 1 / ps[t]) and np.allclose(w[~t], 1 / (1 - ps[~t]))   # inverse propensity weights
    assert w[t].sum() == pytest.approx(445.209, abs=1e-3) and w[~t].sum() == pytest.approx(444.777, abs=1e-3)
    ess = w[t].sum() ** 2 / (w[t] ** 2).sum()
    assert ess == pytest.approx(r.details['ess_treated']) and round(ess, 2) == 182.25
    assert results['aipw'].weights is None


def test_effect_results_list_is_immutable(results):
    rs = EffectResults([results['ipw'], results['match']])
    s = rs.summary()
    assert s.title == 'EffectResults: 2 estimates' and list(s.to_frame().method) == [results['ipw'].method, results['match'].method]
    assert s.to_frame().estimate.tolist() == [results['ipw'].estimate, results['match'].estimate]
    for change in (lambda: rs.append(rs[0]), lambda: rs.extend([]), lambda: rs.insert(0, rs[0]), lambda: rs.pop(),
                   lambda: rs.remove(rs[0]), lambda: rs.clear(), lambda: rs.sort(key=id), lambda: rs.reverse(),
                   lambda: rs.__setitem__(0, rs[1]), lambda: rs.__delitem__(0), lambda: rs.__iadd__([]), lambda: rs.__imul__(2)):
        with pytest.raises(ImmutableResultError, match=r'results are immutable once returned \(EffectResults\); build a new EffectResults'):
            change()
    assert len(rs) == 2 and isinstance(rs, list) and rs[0] is results['ipw']
    with pytest.raises(ImmutableResultError, match="cannot set 'note'"): rs.note = 'x'
    for c in (copy.copy(rs), copy.deepcopy(rs), pickle.loads(pickle.dumps(rs))):
        assert type(c) is EffectResults and [r.estimate for r in c] == [r.estimate for r in rs]
        with pytest.raises(ImmutableResultError): c.append(rs[0])


def test_cold_start_summary_keeps_its_index(results):
    s = results['split'].summary(); f = s.to_frame()
    assert list(f.index) == ['train', 'val', 'test'] and list(f.columns) == ['warm', 'cold user', 'cold item', 'cold both']
    assert f.values.sum() == 600 and str(s).splitlines()[1].split()[:2] == ['split', 'warm']   # the named index is shown as a column


def test_summary_checks_and_formats():
    assert [format_number(x) for x in (1794.3398, 12.3456, 0.0074, 3e-9, 185, 1234567, np.nan, None, True, 'ATT')] == \
           ['1,794', '12.35', '0.0074', '3.000e-09', '185', '1,234,567', '', '', 'True', 'ATT']
    with pytest.raises(TypeError, match='title must be a str'): Summary(None)
    with pytest.raises(TypeError, match='must be a pandas DataFrame'): Summary('t', {'a': 1})
    s = Summary('T', pd.DataFrame({'a': [1.5, np.nan], 'b': ['x', None]}), 'one note')
    assert str(s) == 'T\n    a  b\n  1.5  x\n    -  -\n  one note' and s.notes == ('one note',)
    assert '<td></td>' in s.to_html() and 'NaN' not in s.to_html() and 'None' not in s.to_html()
    with pytest.raises(ImmutableResultError, match="cannot set 'notes'"): s.notes = ()
    assert issubclass(ImmutableResultError, CausalLLMRecError) and issubclass(ImmutableResultError, dataclasses.FrozenInstanceError)
    assert issubclass(EffectResults, ResultList)

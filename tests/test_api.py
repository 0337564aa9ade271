"""What `import causal_llmrec` gives: the main verbs at the top level, loaded on first use, without importing torch until
CausalBert is used; reading a settings file does not import torch; names moved in the module split still import from
their old module, with a DeprecationWarning naming the new one."""
import json, subprocess, sys, warnings
from pathlib import Path

import pytest

import causal_llmrec

ROOT = Path(__file__).resolve().parents[1]


def run(code):
    "Run `code` in a fresh interpreter (its own sys.modules) and return what it printed as JSON."
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_top_level_names_resolve_to_their_modules():
    for name in causal_llmrec.__all__:
        if name == 'CausalBert': continue
        obj = getattr(causal_llmrec, name)
        assert obj is getattr(importlib_module(causal_llmrec._WHERE[name]), name)
    assert causal_llmrec.__version__ and 'learn_structure' in dir(causal_llmrec)
    with pytest.raises(AttributeError, match="no attribute 'nope'"): causal_llmrec.nope


def importlib_module(mod):
    import importlib
    return importlib.import_module(f'causal_llmrec.{mod}')


def test_import_and_the_main_verbs_do_not_import_torch():
    out = run("""
import sys, json, causal_llmrec as cl
seen = {'import': 'torch' in sys.modules}
from causal_llmrec import learn_structure, match, ipw, aipw, load_data, run_pipeline, RecData, simulate
seen['verbs'] = 'torch' in sys.modules
print(json.dumps(seen))""")
    assert out == {'import': False, 'verbs': False}, out


def test_causalbert_is_the_one_verb_that_loads_torch():
    from causal_llmrec.bert import CausalBert
    assert causal_llmrec.CausalBert is CausalBert and causal_llmrec._WHERE['CausalBert'] == 'bert'
    import importlib.util, ast
    src = open(importlib.util.find_spec('causal_llmrec.bert').origin).read()
    assert any(isinstance(n, ast.Import) and any(a.name == 'torch' for a in n.names) for n in ast.parse(src).body)


def test_loading_a_settings_file_does_not_import_torch(tmp_path):
    (tmp_path/'c.yaml').write_text("seed: 3\ntrain:\n  lr: 0.0001\n  head_epochs: 5\n")
    out = run(f"""
import sys, json
from causal_llmrec.settings import PipelineConfig
c = PipelineConfig.from_yaml({str(tmp_path/'c.yaml')!r})
try: PipelineConfig.from_dict({{'train': {{'clip': 0.7}}}}); bad = None
except Exception as e: bad = str(e)
print(json.dumps(dict(torch='torch' in sys.modules, seed=c.seed, lr=c.train.lr, bad=bad, yaml_len=len(c.to_yaml()))))""")
    assert out['torch'] is False and out['seed'] == 3 and out['lr'] == 1e-4 and out['yaml_len'] > 1000
    assert 'clip must be in (0, 0.5), got 0.7' in out['bad']      # TrainConfig's own checks, still without torch


def test_importtime_of_the_package_lists_no_torch():
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'import causal_llmrec, causal_llmrec.settings'],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    mods = {l.split('|')[-1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}
    assert 'causal_llmrec.settings' in mods and 'torch' not in mods and 'transformers' not in mods


# names that moved in the module split (commit 5c1a658): old module -> {name: new module}
MOVED = {
    'matching': dict(EffectResults='effects', LogisticPropensity='weighting', crump_alpha='weighting', ipw='weighting',
                     aipw='weighting', OVBSensitivity='sensitivity', e_value='sensitivity', ovb_sensitivity='sensitivity',
                     robustness_value='sensitivity', rosenbaum_bounds='sensitivity'),
    'bert': dict(CrossFit='bert_effects', EffectEstimates='bert_effects', cross_fit='bert_effects', estimate_effects='bert_effects',
                 TrainConfig='bert_train', TrainResult='bert_train', causal_loss='bert_train', fit='bert_train',
                 load_trainer_state='bert_train', save_trainer_state='bert_train'),
    'baselines': {n: 'recommenders' for n in ('BASELINES', 'BPR', 'CIBN', 'CUBN', 'CausE', 'DLCE', 'Popularity', 'ULBPR', 'ULRMF')},
    'evaluate': dict(**{n: 'ope' for n in ('OPEResult', 'OPE_ESTIMATORS', 'bernoulli_ts_action_dist', 'obd_bts_prior',
                                           'off_policy_value', 'ranking_policy', 'uniform_policy')},
                     **{n: 'schnabel' for n in ('MatrixFactorization', 'SCHNABEL_MARGINAL', 'SCHNABEL_PREDICTIONS', 'mnar_estimates',
                                                'schnabel_deltas', 'schnabel_estimation_table', 'schnabel_learning',
                                                'schnabel_predictions', 'schnabel_propensities', 'schnabel_true_ratings')}),
}


@pytest.mark.parametrize("old, name, new", [(o, n, m) for o, names in MOVED.items() for n, m in names.items()])
def test_moved_names_import_from_the_old_module_with_a_warning(old, name, new):
    old_mod, new_mod = importlib_module(old), importlib_module(new)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        obj = getattr(old_mod, name)
    assert obj is getattr(new_mod, name)
    dep = [x for x in w if issubclass(x.category, DeprecationWarning)]
    assert dep and f"causal_llmrec.{new}" in str(dep[0].message), [str(x.message) for x in w]


def test_no_top_level_name_is_a_module_name():
    "Importing a submodule binds it on the package: a verb named like a module (e.g. `rank`) would be replaced by it."
    import pkgutil
    mods = {m.name for m in pkgutil.iter_modules(causal_llmrec.__path__)}
    assert not mods & set(causal_llmrec.__all__)

"""CausalBert: bad-input matrix, save/load, options, DDP vs one process, and (slow) a real MiniLM fine-tune."""
import os, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from causal_llmrec.bert import CausalBert, predict, toy_world, default_encoder_path, resolve_encoder, pick_device, check_pairs
from causal_llmrec.bert_train import TrainConfig, fit, causal_loss, load_trainer_state
from causal_llmrec.bert_effects import estimate_effects, cross_fit

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def world():
    return toy_world(n_users=20, n_items=12, seed=1)

@pytest.fixture(scope='module')
def trained(world):
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0)
    r = fit(m, pairs, ut, it, strategy='cached', encoder_steps=4, head_epochs=3, batch_size=32, head_batch_size=64,
            progress=False)
    return m, r

def test_missing_model_path_names_path_and_default():
    with pytest.raises(FileNotFoundError) as e: CausalBert.from_encoder('/definitely/not/here')
    msg = str(e.value)
    assert '/definitely/not/here' in msg and str(default_encoder_path()) in msg

def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='config.json'): resolve_encoder(tmp_path)

def test_from_pretrained_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='causal_bert.json'): CausalBert.from_pretrained(tmp_path)

@pytest.mark.parametrize('mutate,match', [
    (lambda p: p.assign(outcome=p.outcome.astype(float).where(p.index != 3)), 'NaN'),
    (lambda p: p.assign(outcome=p.outcome + 1), 'binary'),
    (lambda p: p.assign(exposure=p.exposure*2), 'binary'),
    (lambda p: p.assign(exposure=0), 'single value 0'),
    (lambda p: p.assign(exposure=1), 'single value 1'),
    (lambda p: p.drop(columns='outcome'), 'missing column'),
    (lambda p: p.iloc[:0], 'empty'),
    (lambda p: p.assign(propensity=1.0), 'propensity'),
    (lambda p: p.assign(user_id=p.user_id + 1000), 'no text'),
])
def test_bad_pairs(world, mutate, match):
    pairs, ut, it, _ = world
    with pytest.raises(ValueError, match=match): fit(CausalBert.tiny(), mutate(pairs), ut, it, progress=False)

@pytest.mark.parametrize('which', ['user', 'item'])
@pytest.mark.parametrize('bad', ['', '   ', None])
def test_empty_texts(world, which, bad):
    pairs, ut, it, _ = world
    txt = (ut if which == 'user' else it).copy().astype(object); txt.iloc[2] = bad
    args = (txt, it) if which == 'user' else (ut, txt)
    with pytest.raises(ValueError, match=f'{which} texts are empty'): fit(CausalBert.tiny(), pairs, *args, progress=False)

def test_texts_must_be_series(world):
    pairs, ut, it, _ = world
    with pytest.raises(TypeError, match='Series'): fit(CausalBert.tiny(), pairs, ut.to_dict(), it, progress=False)

def test_cuda_requested_without_one(world, monkeypatch):
    "Runs on CUDA machines too: CUDA is hidden from torch for this test."
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    pairs, ut, it, _ = world
    with pytest.raises(ValueError, match="device='cuda' requested"): fit(CausalBert.tiny(), pairs, ut, it, device='cuda', progress=False)
    with pytest.raises(ValueError, match='cuda'): pick_device('cuda:0')

def test_fp16_on_cpu_rejected(world):
    pairs, ut, it, _ = world
    with pytest.raises(ValueError, match='autocast is for CUDA'):
        fit(CausalBert.tiny(), pairs, ut, it, device='cpu', precision='fp16', progress=False)

def test_bad_config():
    with pytest.raises(ValueError, match='strategy'): TrainConfig(strategy='fast')
    with pytest.raises(ValueError, match='val_frac'): TrainConfig(val_frac=1.5)
    with pytest.raises(TypeError, match='unknown training setting'): fit(CausalBert.tiny(), None, None, None, epoch=3)

def test_predict_columns_and_ranges(world, trained):
    pairs, ut, it, _ = world
    m, r = trained
    p = predict(m, pairs, ut, it)
    assert len(p) == len(pairs) and {'g', 'q0', 'q1', 'tau'} <= set(p.columns)
    for c in ('g', 'q0', 'q1'): assert p[c].between(0, 1).all()
    assert np.allclose(p.tau, p.q1 - p.q0)
    assert r.strategy == 'cached' and r.encoder_steps == 4 and 'CPU path' in repr(r)
    assert len(r.to_frame()) >= 2

def test_save_load_roundtrip_identical(world, trained, tmp_path):
    pairs, ut, it, _ = world
    m, _ = trained
    a = predict(m, pairs, ut, it)
    m.save_pretrained(tmp_path/'ck')
    assert {'encoder', 'heads.safetensors', 'causal_bert.json'} <= set(os.listdir(tmp_path/'ck'))
    assert (tmp_path/'ck'/'encoder'/'tokenizer_config.json').exists()
    b = predict(CausalBert.from_pretrained(tmp_path/'ck'), pairs, ut, it)
    assert np.array_equal(a[['g', 'q0', 'q1']].to_numpy(), b[['g', 'q0', 'q1']].to_numpy())

def test_same_seed_same_numbers(world):
    "linear_text=False: the heads are trained from the start, so what the seeds draw (the shuffles, dropout, the heads) sets the numbers."
    pairs, ut, it, _ = world
    out = []
    for seed in (7, 7, 8):
        m = CausalBert.tiny(seed=5, linear_text=False)
        fit(m, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=2, batch_size=32, progress=False, seed=seed)
        out.append(predict(m, pairs, ut, it)[['g', 'q0', 'q1']].to_numpy())
    assert np.array_equal(out[0], out[1])
    assert np.abs(out[2] - out[0]).max() > 1e-4          # another training seed, other numbers: the check above can fail

def test_resume_continues(world, tmp_path):
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0)
    r1 = fit(m, pairs, ut, it, strategy='full', epochs=1, batch_size=32, max_pairs_per_epoch=64, progress=False, checkpoint_dir=tmp_path, patience=9)
    assert (tmp_path/'last'/'trainer_state.json').exists() and (tmp_path/'best'/'heads.safetensors').exists()
    assert not list(tmp_path.rglob('*.pt')) and not list(tmp_path.rglob('*.pkl'))   # nothing pickled
    r2 = fit(m, pairs, ut, it, strategy='full', epochs=2, batch_size=32, max_pairs_per_epoch=64, progress=False, resume_from=tmp_path/'last', patience=9)
    assert r2.history.epoch.tolist() == [1, 2] and r2.encoder_steps == 2*r1.encoder_steps
    with pytest.raises(FileNotFoundError, match='trainer_state'): fit(m, pairs, ut, it, resume_from=tmp_path/'nope', progress=False)

def test_crafted_checkpoint_cannot_execute(world, tmp_path):
    "A pickle planted in a checkpoint folder is never read: resuming reads JSON and safetensors only."
    import pickle, os
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0, linear_text=False)      # no cross-validated logistic start: the checkpoint's reading is what is tested
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=1, patience=9, checkpoint_dir=tmp_path, progress=False)
    flag = tmp_path/'pwned'
    class Evil:
        def __reduce__(self): return (os.system, (f'touch {flag}',))
    (tmp_path/'last'/'trainer_state.pt').write_bytes(pickle.dumps({'x': Evil()}))
    (tmp_path/'last'/'trainer_state.pkl').write_bytes(pickle.dumps({'x': Evil()}))
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=2, patience=9, resume_from=tmp_path/'last', progress=False)
    assert not flag.exists()
    (tmp_path/'last'/'trainer_state.json').write_text('{not json')
    with pytest.raises(ValueError, match='damaged'): load_trainer_state(tmp_path/'last')
    (tmp_path/'last'/'trainer_state.json').unlink()
    with pytest.raises(FileNotFoundError, match='trainer_state.json'): load_trainer_state(tmp_path/'last')

def test_loss_options():
    torch.manual_seed(0)
    logits = torch.randn(64, 3); t = (torch.rand(64) < 0.3).long(); y = (torch.rand(64) < 0.5).long()
    base, parts = causal_loss(logits, t, y)
    ipw, _ = causal_loss(logits, t, y, ipw=True)
    tr, tparts = causal_loss(logits, t, y, tarreg_weight=1.0, epsilon=torch.tensor([0.3]))
    click, _ = causal_loss(logits, t, y, objective='click')
    assert not torch.isclose(base, ipw) and 'tarreg' in tparts and tr > base
    # with epsilon = 0 the targeted term equals the observed-arm outcome loss
    tr0, p0 = causal_loss(logits, t, y, tarreg_weight=1.0, epsilon=torch.zeros(1))
    assert torch.isclose(p0['tarreg'], p0['q'])
    # IPW with equal propensities is the plain loss
    same, _ = causal_loss(logits, t, y, propensity=torch.full((64,), 0.3), ipw=True)
    w = torch.where(t > 0, 1/0.3, 1/0.7); w = w/w.mean()
    lt = torch.where(t > 0, logits[:, 2], logits[:, 1])
    q = (w*torch.nn.functional.binary_cross_entropy_with_logits(lt, y.float(), reduction='none')).mean()
    assert torch.isclose(same, q + parts['g'])

def test_ipw_and_tarreg_train(world):
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0, linear_text=False)      # the heads train from the start, with the IPW weights and the targeted term
    r = fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=2, ipw=True, tarreg_weight=0.5, progress=False)
    assert np.isfinite(r.best_val_loss) and m.heads.epsilon.item() != 0.0

def test_effects_on_known_numbers():
    # Q's equal to the truth and g equal to the logged propensities: AIPW and plug-in equal the true effects
    rng = np.random.default_rng(0); n = 20000
    g = rng.uniform(0.2, 0.8, n); t = rng.binomial(1, g); q0 = rng.uniform(0.1, 0.4, n); q1 = q0 + 0.2
    y = rng.binomial(1, np.where(t == 1, q1, q0))
    e = estimate_effects(pd.DataFrame(dict(exposure=t, outcome=y, g=g, q0=q0, q1=q1)))
    assert abs(e['ATE', 'plug-in'].estimate - 0.2) < 1e-9 and abs(e['ATT', 'plug-in'].estimate - 0.2) < 1e-9
    assert abs(e['ATE', 'AIPW'].estimate - 0.2) < 3*e.to_frame().se.iloc[2] and abs(e['ATT', 'AIPW'].estimate - 0.2) < 0.03
    assert 'AIPW' in repr(e)

def test_click_model(world):
    pairs, ut, it, _ = world
    m = CausalBert.tiny(objective='click')
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=1, progress=False)
    p = predict(m, pairs, ut, it)
    assert (p.tau == 0).all() and p.p_click.between(0, 1).all()
    with pytest.raises(ValueError, match='click'): estimate_effects(p)

def _ddp(out, strategy):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=str(ROOT))
    torchrun = Path(sys.executable).parent/'torchrun'
    subprocess.run([str(torchrun), '--standalone', '--nproc_per_node', '2', str(ROOT/'tests'/'ddp_worker.py'), str(out),
                    '--strategy', strategy], check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)
    subprocess.run([sys.executable, str(ROOT/'tests'/'ddp_worker.py'), str(out) + '.single', '--grad-accum', '2',
                    '--strategy', strategy], check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)
    return pd.read_csv(out), pd.read_csv(str(out) + '.single')

@pytest.mark.slow
@pytest.mark.parametrize('strategy', ['cached', 'full'])
def test_ddp_matches_single_process(tmp_path, strategy):
    "torchrun with 2 gloo CPU processes (grad_accum=1) takes the same steps as 1 process with grad_accum=2."
    a, b = _ddp(tmp_path/'ddp.csv', strategy)
    assert len(a) == len(b) > 0
    assert np.abs(a[['g', 'q0', 'q1']].to_numpy() - b[['g', 'q0', 'q1']].to_numpy()).max() < 1e-5

@pytest.mark.slow
def test_real_minilm_finetune(world):
    """The shipped MiniLM, fine-tuned for real (a few encoder steps), learns the confounded propensity and the effect, which differs by
    arm in kind (match moves Q0's logit by 2.2, Q1's by 0.4). 80 users: with 40 the 4 validation users cannot show the arms' difference
    by two standard errors of R-loss, and the heads rank the effect backwards."""
    from sklearn.metrics import roc_auc_score
    pairs, ut, it, true_tau = toy_world(n_users=80, n_items=30, seed=0)
    m = CausalBert.from_encoder(max_length=64)
    before = m.encoder.embeddings.word_embeddings.weight.detach().clone()
    r = fit(m, pairs, ut, it, strategy='cached', encoder_steps=10, batch_size=32, head_epochs=30, head_batch_size=64,
            patience=5, progress=False)
    # fine-tuning ran; its encoder is kept only if its fits beat the pretrained encoder's on the validation users, and the
    # weights say which one the model holds
    kept_pretrained = 'the pretrained encoder was kept' in r.note
    assert r.encoder_steps == 10 and torch.equal(before, m.encoder.embeddings.word_embeddings.weight) == kept_pretrained, r.note
    p = predict(m, pairs, ut, it)
    assert roc_auc_score(p.exposure, p.g) > 0.75
    assert p.tau[true_tau > 0.1].mean() > p.tau[true_tau < 0.1].mean() + 0.1 and np.corrcoef(p.tau, true_tau)[0, 1] > 0.5, r.note

def _rated(pairs, seed=0):
    "The toy world's binary outcome turned into 1-5 stars (1 + 2y + Binomial(2, 1/2)), rescaled to (stars-1)/4."
    stars = 1 + 2*pairs.outcome + np.random.default_rng(seed).binomial(2, 0.5, len(pairs))
    return pairs.assign(outcome=(stars - 1)/4), stars

@pytest.mark.parametrize('mutate,match', [
    (lambda p, s: p.assign(outcome=s), r'\[0, 1\]'),
    (lambda p, s: p.assign(outcome=-p.outcome), r'\[0, 1\]'),
    (lambda p, s: p.assign(outcome=p.outcome.where(p.index != 2)), 'NaN'),
    (lambda p, s: p.assign(outcome='good'), 'numeric'),
])
def test_unit_outcomes_bad_values(world, mutate, match):
    pairs, ut, it, _ = world
    rated, stars = _rated(pairs)
    bad = mutate(rated, stars)
    with pytest.raises(ValueError, match=match) as e: check_pairs(bad, ut, it, outcome_type='unit')
    assert "'outcome'" in str(e.value)
    with pytest.raises(ValueError, match=match): fit(CausalBert.tiny(), bad, ut, it, outcome_type='unit', progress=False)
    with pytest.raises(ValueError, match='outcome_type'): TrainConfig(outcome_type='rating')
    with pytest.raises(ValueError, match="outcome_type='unit'"): check_pairs(rated, ut, it)   # binary is the default

def test_unit_outcomes_train_predict_effects(world):
    pairs, ut, it, _ = world
    rated, _ = _rated(pairs)
    assert check_pairs(rated, ut, it, outcome_type='unit').outcome.between(0, 1).all()
    m = CausalBert.tiny(seed=0, linear_text=False)      # the heads train on the soft targets from the start
    r = fit(m, rated, ut, it, outcome_type='unit', strategy='cached', encoder_steps=2, head_epochs=3, progress=False)
    assert np.isfinite(r.best_val_loss)
    p = predict(m, rated, ut, it)
    assert p[['g', 'q0', 'q1']].stack().between(0, 1).all() and np.allclose(p.tau, p.q1 - p.q0)
    e = estimate_effects(p)
    assert np.isfinite(e.to_frame()[['estimate', 'se']].to_numpy()).all()
    # soft-target BCE: its gradient in the logit is sigmoid(l) - y, zero at the soft target's logit
    l = torch.zeros(4, 3, requires_grad=True); y = torch.tensor([0.25, 0.5, 0.75, 1.0]); t = torch.tensor([1, 0, 1, 0])
    loss, _ = causal_loss(l, t, y, g_weight=0.0); loss.backward()
    lt_grad = torch.where(t > 0, l.grad[:, 2], l.grad[:, 1])
    assert torch.allclose(lt_grad, (0.5 - y)/4)

@pytest.mark.parametrize('strategy', ['full', 'cached'])
def test_early_stopping_and_checkpoints_both_phases(world, tmp_path, strategy):
    "One helper ends every epoch of both phases: with learning rates 0 the validation loss never improves after epoch 1."
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0, linear_text=False)    # no logistic start: the first epoch is the first best
    r = fit(m, pairs, ut, it, strategy=strategy, epochs=6, max_pairs_per_epoch=64, encoder_steps=1, head_epochs=6,
            lr=0.0, head_lr=0.0, patience=2, head_patience=2, batch_size=32, checkpoint_dir=tmp_path, progress=False)
    phase = 'encoder' if strategy == 'full' else 'heads'
    h = r.history[r.history.phase == phase]
    assert r.stopped_early and h.epoch.tolist() == [1, 2, 3] and h.val_loss.nunique() == 1
    assert r.best_val_loss == h.val_loss.iloc[0]
    st = load_trainer_state(tmp_path/'last')
    assert st['phase'] == phase and st['epoch'] == 3 and st['bad'] == 2
    assert load_trainer_state(tmp_path/'best')['epoch'] == 1

def test_resume_in_heads_phase(world, tmp_path):
    pairs, ut, it, _ = world
    m = CausalBert.tiny(seed=0, linear_text=False)      # no cross-validated logistic start: the resume is what is tested
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=2, patience=9, checkpoint_dir=tmp_path, progress=False)
    r = fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=4, patience=9, resume_from=tmp_path/'last', progress=False)
    assert r.history[r.history.phase == 'heads'].epoch.tolist() == [1, 2, 3, 4] and r.encoder_steps == 0


# ---- covariates (the adjustment set) in the heads, cross-fitting, clustered standard errors

@pytest.fixture(scope='module')
def xworld(world):
    pairs, ut, it, tau = world
    return pairs.assign(match=(tau < 0.1).astype(float), noise=np.random.default_rng(0).normal(size=len(pairs))), ut, it, tau

@pytest.mark.parametrize('kw,match', [
    (dict(covariates=['match'], inputs='text'), "inputs='text' reads no covariates"),
    (dict(inputs='both'), 'needs covariates'),
    (dict(inputs='covariates'), 'needs covariates'),
    (dict(covariates=['match'], inputs='tabular'), 'inputs must be one of'),
    (dict(covariates=['a', 'a']), 'duplicate'),
])
def test_bad_covariate_settings(kw, match):
    with pytest.raises(ValueError, match=match): CausalBert.tiny(**kw)

@pytest.mark.parametrize('mutate,match', [
    (lambda p: p.drop(columns='match'), "missing covariate column\\(s\\) \\['match'\\]"),
    (lambda p: p.assign(match=p.match.astype(str)), 'not numeric'),
    (lambda p: p.assign(match=p.match.where(p.index != 2)), 'NaN or infinite'),
    (lambda p: p.assign(match=p.match.where(p.index != 2, np.inf)), 'NaN or infinite'),
    (lambda p: p.assign(match=p.match.where(p.index != 2, 1e308)), 'overflow float32'),
])
def test_bad_covariate_values(xworld, mutate, match):
    pairs, ut, it, _ = xworld
    with pytest.raises(ValueError, match=match):
        fit(CausalBert.tiny(covariates=['match']), mutate(pairs), ut, it, progress=False)

def test_heads_start_at_the_logistic_t_learner(xworld):
    "With no head epochs and no encoder steps the covariate model is exactly the logistic g, Q0, Q1 fits (ridge 1)."
    from causal_llmrec.weighting import LogisticPropensity
    pairs, ut, it, _ = xworld
    m = CausalBert.tiny(seed=0, covariates=['match', 'noise'], inputs='covariates')
    fit(m, pairs, ut, it, strategy='cached', head_epochs=1, head_lr=1e-12, val_frac=0.0, progress=False, seed=0)
    p = predict(m, pairs, ut, it)
    X = pairs[['match', 'noise']].to_numpy(float); X = (X - X.mean(0))/X.std(0, ddof=1)
    t = pairs.exposure.to_numpy(); y = pairs.outcome.to_numpy(float)
    for col, mask, target in (('g', t >= 0, t), ('q0', t == 0, y), ('q1', t == 1, y)):
        ref = LogisticPropensity(ridge=1.0).fit(X[mask], target[mask]).predict_proba(X)[:, 1]
        assert np.abs(p[col].to_numpy() - ref).max() < 1e-4, col

def test_covariates_only_recovers_the_effect_and_skips_the_encoder(xworld):
    pairs, ut, it, tau = xworld
    m = CausalBert.tiny(seed=0, covariates=['match'], inputs='covariates')
    r = fit(m, pairs, ut, it, strategy='cached', encoder_steps=5, head_epochs=20, head_batch_size=64, progress=False)
    assert r.encoder_steps == 0                       # nothing to fine-tune when the text is not read
    p = predict(m, pairs, ut, it)
    assert np.corrcoef(p.tau, tau)[0, 1] > 0.99       # tau is a function of the covariate alone
    assert p.groupby(pairs.match).tau.mean().diff().iloc[-1] < -0.1

def test_both_inputs_save_load_and_grid(xworld, tmp_path):
    pairs, ut, it, _ = xworld
    m = CausalBert.tiny(seed=1, covariates=['match', 'noise'])
    assert m.cfg['inputs'] == 'both' and m.covariates == ['match', 'noise'] and 'covariates' in repr(m)
    fit(m, pairs, ut, it, strategy='cached', encoder_steps=2, head_epochs=3, head_batch_size=64, select='loss', progress=False)
    a = predict(m, pairs, ut, it)
    m.save_pretrained(tmp_path/'ck'); b = CausalBert.from_pretrained(tmp_path/'ck')
    assert b.covariates == ['match', 'noise'] and b.cfg['inputs'] == 'both'
    assert np.allclose(a[['g', 'q0', 'q1']].to_numpy(), predict(b, pairs, ut, it)[['g', 'q0', 'q1']].to_numpy(), atol=1e-6)
    with pytest.raises(ValueError, match='missing covariate'): predict(b, pairs.drop(columns='noise'), ut, it)

def test_select_setting():
    with pytest.raises(ValueError, match='select'): TrainConfig(select='best')

def test_frozen_encoder_is_shared_and_cached(xworld):
    pairs, ut, it, _ = xworld
    base = CausalBert.tiny(seed=0)
    # linear_text=False: no cross-validated logistic start on the texts (seconds); the cache is filled and shared the same way
    a = CausalBert(base.encoder, base.tokenizer, covariates=['match'], linear_text=False)
    fit(a, pairs, ut, it, strategy='cached', encoder_steps=0, head_epochs=1, progress=False)
    cache = base._text_cache()
    assert len(cache) == len(set(ut)) + len(set(it))   # every text encoded once, kept on the shared encoder
    b = CausalBert(base.encoder, base.tokenizer, covariates=['match'], linear_text=False)
    assert b._text_cache() is cache
    fit(b, pairs, ut, it, strategy='cached', encoder_steps=1, head_epochs=1, progress=False)   # trains the encoder
    assert len(base._text_cache()) == len(set(ut)) + len(set(it)) and base._text_cache() is not cache

def test_cross_fit_out_of_fold_and_clustered(xworld):
    pairs, ut, it, tau = xworld
    cf = cross_fit(lambda k: CausalBert.tiny(seed=k, covariates=['match'], inputs='covariates'), pairs, ut, it, folds=3,
                   head_epochs=10, head_batch_size=64, progress=False, seed=0)
    p = cf.predictions
    assert len(p) == len(pairs) and p.groupby('user_id').fold.nunique().eq(1).all() and sorted(p.fold.unique()) == [0, 1, 2]
    assert len(cf.results) == 3 and cf.models == [] and 'CrossFit: 3 folds by user_id' in repr(cf)
    e = cf.effects()
    assert e.cross_fitted and e.cluster == 'user_id' and e.n_clusters == pairs.user_id.nunique()
    lo, hi = e['ATE', 'AIPW'].ci; assert lo <= tau.mean() <= hi
    assert e.conf_int(0.05).loc[('AIPW', 'ATE')].tolist() == pytest.approx([lo, hi])   # the shared result API
    with pytest.raises(ValueError, match='folds must be >= 2'): cross_fit(lambda k: None, pairs, ut, it, folds=1)
    with pytest.raises(ValueError, match='distinct user_id values'): cross_fit(lambda k: None, pairs, ut, it, folds=10_000)
    with pytest.raises(TypeError, match='must return a CausalBert'): cross_fit(lambda k: 'model', pairs, ut, it, folds=2, progress=False)

def test_clustered_se_on_known_numbers():
    "CR1 by hand: two clusters of identical influence values give a larger SE than independent pairs."
    rng = np.random.default_rng(0); n = 400
    user = np.repeat(np.arange(20), 20)
    t = rng.binomial(1, 0.4, n); u_eff = rng.normal(0, 0.3, 20)[user]
    y = np.clip(0.3 + 0.2*t + u_eff + rng.normal(0, 0.1, n), 0, 1)
    p = pd.DataFrame(dict(user_id=user, exposure=t, outcome=y, g=0.4, q0=0.3, q1=0.5))
    iid = estimate_effects(p, cluster=None); cl = estimate_effects(p)
    assert iid.cluster is None and cl.cluster == 'user_id' and cl.n_clusters == 20
    psi = 0.2 + t*(y-0.5)/0.4 - (1-t)*(y-0.3)/0.6
    s = pd.Series(psi - psi.mean()).groupby(user).sum().to_numpy()
    se_cr1 = np.sqrt((s**2).sum()*20/19)/n
    r = cl.to_frame().set_index(['estimand', 'method'])
    assert np.isclose(r.loc[('ATE', 'AIPW'), 'se'], se_cr1)
    assert r.loc[('ATE', 'AIPW'), 'se'] > iid.to_frame().set_index(['estimand', 'method']).loc[('ATE', 'AIPW'), 'se']
    with pytest.raises(ValueError, match="cluster column 'segment'"): estimate_effects(p, cluster='segment')
    with pytest.raises(ValueError, match='empty'): estimate_effects(p.iloc[:0])


@pytest.mark.parametrize('bad, key', [(dict(lr=-1), 'lr'), (dict(head_lr=-1e-3), 'head_lr'), (dict(max_grad_norm=0), 'max_grad_norm'), (dict(head_epochs=-1), 'head_epochs'), (dict(seed=-1), 'seed'),
                                      (dict(encoder_steps=1.5), 'encoder_steps'), (dict(patience=0), 'patience'), (dict(warmup_frac=1), 'warmup_frac'),
                                      (dict(max_pairs_per_epoch=0), 'max_pairs_per_epoch'), (dict(linear_ridge=-1), 'linear_ridge'),
                                      (dict(precision='fp8'), 'precision'), (dict(g_weight=float('nan')), 'g_weight'), (dict(batch_size=True), 'batch_size')])
def test_train_config_refuses_settings_out_of_range(bad, key):
    with pytest.raises(ValueError, match=key): TrainConfig(**bad)

def test_linear_ridge_reaches_the_logistic_start(xworld):
    "A stronger ridge shrinks the heads' starting linear weights."
    pairs, ut, it, _ = xworld
    norms = []
    for ridge in (0.0, 1000.0):
        m = CausalBert.tiny(seed=0, covariates=['match', 'noise'], inputs='covariates')
        fit(m, pairs, ut, it, strategy='cached', head_epochs=1, head_lr=1e-12, val_frac=0.0, linear_ridge=ridge, progress=False)
        norms.append(float(m.heads.linear.weight.norm()))
    assert norms[1] < 0.5*norms[0]

def test_conditional_target_drops_the_spread_of_tau():
    "Same estimates; the conditional AIPW SE leaves out the heterogeneity of tau(x) and covers the sample's own average."
    rng = np.random.default_rng(3); cover = {'population': 0, 'conditional': 0}; ses = {'population': [], 'conditional': []}
    for rep in range(60):
        n = 2000; x = rng.standard_normal(n); g = 1/(1 + np.exp(-x)); tau = np.clip(0.2 + 0.15*x, -0.3, 0.6)
        q0 = np.clip(0.3 + 0.05*x, .05, .95); q1 = np.clip(q0 + tau, .05, .95); t = (rng.random(n) < g).astype(int)
        y = np.clip(np.where(t == 1, q1, q0) + rng.normal(0, 0.05, n), 0, 1)   # outcomes in [0, 1] with little noise: tau's spread dominates
        p = pd.DataFrame(dict(exposure=t, outcome=y, g=g, q0=q0, q1=q1))
        truth = (q1 - q0).mean()                                  # the average effect over these pairs
        for target in cover:
            e = estimate_effects(p, cluster=None, target=target)['ATE', 'AIPW']
            cover[target] += e.ci[0] <= truth <= e.ci[1]; ses[target].append(e.se)
    assert np.mean(ses['conditional']) < 0.7*np.mean(ses['population'])
    assert 0.88 <= cover['conditional']/60 and cover['population']/60 == 1.0
    with pytest.raises(ValueError, match="target must be"): estimate_effects(p, target='sample')

def test_checkpoint_encoder_is_read_from_safetensors_only(trained, tmp_path):
    "A checkpoint whose encoder is a pickled pytorch_model.bin is refused with a clear message, never unpickled."
    m, _ = trained
    m.save_pretrained(tmp_path/'ck')
    enc = tmp_path/'ck'/'encoder'
    (enc/'model.safetensors').rename(enc/'pytorch_model.bin')
    with pytest.raises(FileNotFoundError, match='safetensors only'): CausalBert.from_pretrained(tmp_path/'ck')


# ---- per-field texts (issue 23) and the scikit-learn estimator (issue 25)

def _fields(ut, it):
    "Two user fields and two item fields from the toy texts: the taste phrase apart from the rest."
    uf = pd.DataFrame({'taste': ut.str.split(';').str[0], 'history': ut.str.split('history: ').str[1]})
    itf = pd.DataFrame({'title': it.str.split(',').str[0], 'genre': it.str.split(', ').str[-1]})
    return uf, itf

def test_fields_train_predict_save_load_and_grid(xworld, tmp_path):
    pairs, ut, it, tau = xworld
    uf, itf = _fields(ut, it)
    m = CausalBert.tiny(seed=0, covariates=['noise'])
    r = fit(m, pairs, uf, itf, strategy='cached', encoder_steps=2, head_epochs=3, progress=False)
    assert m.fields == (['taste', 'history'], ['title', 'genre']) and 'user fields' in repr(m) and 'the bilinear part reads' in r.note
    p = predict(m, pairs, uf, itf)
    assert p[['g', 'q0', 'q1']].stack().between(0, 1).all()
    m.save_pretrained(tmp_path/'ck'); b = CausalBert.from_pretrained(tmp_path/'ck')
    assert b.fields == m.fields
    assert np.allclose(p[['g', 'q0', 'q1']].to_numpy(), predict(b, pairs, uf, itf)[['g', 'q0', 'q1']].to_numpy(), atol=1e-6)
    U, V = m.encode(uf), m.encode(itf)
    assert U.shape == (len(uf), 2*m.hidden)
    X = torch.as_tensor(pairs.pivot(index='user_id', columns='item_id', values='noise').to_numpy(np.float32))[..., None]
    G = torch.sigmoid(m.heads.grid(U, V, X))
    k = pairs.user_id.to_numpy()*len(itf) + pairs.item_id.to_numpy()
    assert np.allclose(G.reshape(-1, 3).numpy()[k], p[['g', 'q0', 'q1']].to_numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['genre'\]"): predict(m, pairs, uf, itf.drop(columns='genre'))
    with pytest.raises(ValueError, match='reads 2 user fields'): predict(m, pairs, ut, itf)
    with pytest.raises(ValueError, match="field 'taste'"): fit(CausalBert.tiny(), pairs, uf.assign(taste=''), itf, progress=False)

def test_linear_start_reads_the_text_when_it_helps():
    """The effect lives in the taste x genre match, which only the text says: the logistic fits on field-embedding products find it.
    The effect differs by arm so much that the per-arm form wins; with 40 users its out-of-fold R-loss gain stays within
    `EFFECT_TEXT_SE` standard errors and the shared form (no effect text) is kept, so the world has 80."""
    pairs, ut, it, tau = toy_world(n_users=80, n_items=30, seed=0)
    uf, itf = _fields(ut, it)
    m = CausalBert.tiny(seed=0, hidden=32, encoder_dropout=0.0, linear_text=True)
    r = fit(m, pairs, uf, itf, strategy='cached', encoder_steps=0, head_epochs=1, head_lr=1e-12, progress=False)
    p = predict(m, pairs, uf, itf)
    assert np.corrcoef(p.tau, tau)[0, 1] > 0.8 and 'Q0 and Q1 fitted per arm, Q0 with text' in r.note, r.note
    m0 = CausalBert.tiny(seed=0, hidden=32, encoder_dropout=0.0, linear_text=False)
    fit(m0, pairs, uf, itf, strategy='cached', encoder_steps=0, head_epochs=1, head_lr=1e-12, progress=False)
    assert np.corrcoef(predict(m0, pairs, uf, itf).tau, tau)[0, 1] < 0.5      # the deep part alone, untrained, reads nothing

def test_validation_holds_out_whole_users():
    from causal_llmrec.bert_train import _user_split
    users = np.repeat(np.arange(30), 7)
    va, tr = _user_split(users, 0.2, 0)
    assert set(users[va]).isdisjoint(users[tr]) and len(va) + len(tr) == len(users) and 0.15 < len(va)/len(users) < 0.3
    assert len(_user_split(users, 0.0, 0)[0]) == 0 and len(_user_split(np.zeros(5, int), 0.5, 0)[0]) == 0

def test_bilinear_heads_read_the_text_with_the_defaults():
    "The default heads (bilinear user x item part; logistic fits on covariates and field products) learn the taste x genre match."
    pairs, ut, it, tau = toy_world(n_users=40, n_items=30, seed=0)
    uf, itf = _fields(ut, it)
    m = CausalBert.tiny(seed=0, hidden=32, encoder_dropout=0.0)
    assert m.heads.brank == 4 and m.cfg['linear_text']
    r = fit(m, pairs, uf, itf, strategy='cached', progress=False)
    assert np.corrcoef(predict(m, pairs, uf, itf).tau, tau)[0, 1] > 0.5, r.note
    assert 'the bilinear part reads' in r.note and 'logistic fits: g ' in r.note

def test_share_arms_gives_the_bilinear_part_no_effect_of_its_own():
    "share_arms_ makes the bilinear part add the same to Q0 and Q1: the effect's logit difference is the linear part's alone; g is untouched."
    from causal_llmrec.bert import PairHeads
    torch.manual_seed(0)
    h = PairHeads(8, 0, 0.0, n_user_fields=2, n_item_fields=1, bilinear_rank=3, input_dropout=0.0).eval()
    with torch.no_grad():
        for p in h.parameters(): p.normal_()
    u, v = torch.randn(20, 16), torch.randn(20, 8)
    before = h(u, v); lin = h.linear(h.linear_features(u, v))
    assert not torch.allclose(before[:, 2] - before[:, 1], lin[:, 2] - lin[:, 1], atol=1e-3)   # the bilinear part had its own effect
    h.share_arms_(); after = h(u, v)
    assert torch.allclose(after[:, 2] - after[:, 1], lin[:, 2] - lin[:, 1], atol=1e-4)
    assert torch.allclose(after[:, 0], before[:, 0]) and torch.allclose(after[:, 1:].mean(1), before[:, 1:].mean(1), atol=1e-4)
    assert torch.allclose(h.grid(u[:4], v[:5]), torch.stack([h(u[a:a+1].expand(5, -1), v[:5]) for a in range(4)]), atol=1e-4)
    with pytest.raises(ValueError, match='no bilinear part'): PairHeads(8, 0, 0.0, bilinear_rank=0).share_arms_()

def test_bilinear_effect_needs_two_se_of_r_loss():
    "The bilinear part keeps its own effect only where it lowers the validation R-loss by EFFECT_TEXT_SE standard errors; else its arms are shared."
    import types, copy
    from causal_llmrec.bert import PairHeads
    from causal_llmrec.bert_train import _bilinear_effect, _r_loss, EFFECT_TEXT_SE
    rng = np.random.default_rng(0); n = 400; torch.manual_seed(0)
    h = PairHeads(4, 0, 0.0, bilinear_rank=2, input_dropout=0.0).eval()
    U, V = torch.randn(n, 4), torch.randn(n, 4)
    with torch.no_grad():     # the reference: g = 1/2, Q0 = Q1 = 1/2 (all at zero); the bilinear part's own effect ~ its Q1 output
        h.blu.weight.zero_(); h.blv.weight.zero_(); h.bW.zero_()
    ref = copy.deepcopy(h.state_dict())
    own = lambda: h.bW.copy_(torch.stack([torch.zeros(2, 2), torch.zeros(2, 2), 4*torch.eye(2)]))
    with torch.no_grad(): eff = torch.sigmoid(4*(h.bu[0](U)*h.bv[0](V)).sum(1)) - 0.5
    t = torch.as_tensor(rng.random(n) < 0.5, dtype=torch.float32)
    data = types.SimpleNamespace(u=np.arange(n), i=np.arange(n), covs=lambda pos, dev: None)
    for true_effect, want in ((eff, 'own'), (torch.zeros(n), 'shared')):
        y = torch.as_tensor(rng.random(n) < (0.5 + t*true_effect).numpy(), dtype=torch.float32)
        data.labels = lambda pos, dev, y=y: (t[pos], y[pos], None)
        model = torch.nn.Module(); model.heads = h; model.cfg = {'objective': 'causal'}
        r = types.SimpleNamespace(model=model, data=data, cfg=TrainConfig(), val_pos=np.arange(n), dev=torch.device('cpu'), ref_state=ref)
        with torch.no_grad(): own()
        got = _bilinear_effect(r, (U, V))
        assert got == want
        P = torch.sigmoid(h(U, V))
        assert (P[:, 2] - P[:, 1]).abs().max() > 0.05 if want == 'own' else torch.allclose(P[:, 2], P[:, 1], atol=1e-5)

def test_text_ridge_is_cross_validated_over_users():
    "Each head's text ridge is chosen by log-loss over folds of whole users: no text when the text is noise, a ridge when it carries the signal."
    from causal_llmrec.bert_train import _cv_text_ridge, _user_folds, _pen, TEXT_RIDGES
    users = np.repeat(np.arange(60), 20)
    f = _user_folds(users, 5, 0)
    assert all(len(set(f[users == u])) == 1 for u in range(60)) and sorted(np.bincount(f)) == [240]*5
    assert np.array_equal(f, _user_folds(users, 5, 0)) and not np.array_equal(f, _user_folds(users, 5, 1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(users), 1)); text = rng.normal(size=(len(users), 50))
    signal = 1.5*text[:, :5].sum(1)/np.sqrt(5)
    Z = torch.as_tensor(np.hstack([x, text]), dtype=torch.float32)
    for logit, want_text in ((x[:, 0], False), (x[:, 0] + signal, True)):
        y = torch.as_tensor(rng.random(len(users)) < 1/(1 + np.exp(-logit)), dtype=torch.float32)
        lam, losses, *_ = _cv_text_ridge(Z, y, f, lambda lam: _pen([1, 50], [1.0, lam]))
        assert (lam is not None) == want_text, losses
        if want_text: assert lam in TEXT_RIDGES and losses[lam] == min(losses.values()) and losses[None] - losses[lam] > 0.05

def test_default_encoder_is_frozen(world):
    pairs, ut, it, _ = world
    assert TrainConfig().encoder_steps == 0 and TrainConfig(encoder_steps=None).encoder_steps is None
    m = CausalBert.tiny(seed=0)
    r = fit(m, pairs, ut, it, strategy='cached', head_epochs=1, batch_size=64, progress=False)
    assert r.encoder_steps == 0 and '0 encoder fine-tuning steps' in r.note
    r = fit(CausalBert.tiny(seed=0), pairs, ut, it, strategy='cached', encoder_steps=3, head_epochs=1, batch_size=64, progress=False)
    assert r.encoder_steps == 3

def test_estimator_sklearn_conventions(world):
    """get_params/set_params/clone, fit/predict/score, and GridSearchCV. `linear_text=False`: the heads train from the covariate-free start
    (no cross-validated text ridges, so a fit takes a fraction of a second), hence the seed and `head_lr` change the numbers and
    the checks below can tell a setting that reaches training from one that is dropped."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from causal_llmrec.bert_train import CausalBertEstimator
    from causal_llmrec.text import pair_texts
    pairs, ut, it, _ = world
    uf, itf = _fields(ut, it)
    X = pair_texts(pairs, uf, itf)
    est = CausalBertEstimator(encoder='tiny', encoder_steps=1, head_epochs=2, batch_size=32, linear_text=False, random_state=1)
    ps = est.get_params()
    assert ps['encoder_steps'] == 1 and ps['linear_text'] is False and 'lr' in ps and not hasattr(est, 'model_')
    c = clone(est); assert c is not est and c.get_params() == ps
    assert c.set_params(head_lr=1e-2) is c and c.get_params()['head_lr'] == 1e-2 and est.get_params() == ps   # the clone's own
    tau = est.fit(X).predict(X)
    assert est.result_.encoder_steps == 1 and est.model_.cfg['linear_text'] is False     # the settings reached the model and training
    assert tau.shape == (len(X),) and np.isfinite(est.score(X)) and est.fields_ == (['taste', 'history'], ['title', 'genre'])
    assert np.allclose(clone(est).fit(X).predict(X), tau)                                       # same random_state, same numbers
    assert np.abs(clone(est).set_params(random_state=2).fit(X).predict(X) - tau).max() > 1e-3   # another seed, other numbers
    cv = GroupKFold(n_splits=2)
    gs = GridSearchCV(clone(est), {'head_lr': [1e-3, 1e-2]}, cv=cv).fit(X, groups=X.user_id)
    scores = gs.cv_results_['mean_test_score']
    assert np.isfinite(scores).all() and abs(scores[0] - scores[1]) > 1e-3                     # head_lr reached each fit
    assert gs.best_params_['head_lr'] == (1e-3, 1e-2)[int(np.argmax(scores))] and gs.best_estimator_.head_lr == gs.best_params_['head_lr']
    tr, te = next(cv.split(X, groups=X.user_id))                                                # the grid's first cell, by hand
    assert np.isclose(clone(est).set_params(head_lr=1e-3).fit(X.iloc[tr]).score(X.iloc[te]), gs.cv_results_['split0_test_score'][0], rtol=1e-6)
    with pytest.raises(TypeError, match='unknown CausalBertEstimator setting'): CausalBertEstimator(epoch=2)
    with pytest.raises(ValueError, match='batch_size'): CausalBertEstimator(encoder='tiny', batch_size=0).fit(X)
    with pytest.raises(ValueError, match="no 'u:<field>'"): CausalBertEstimator(encoder='tiny').fit(pairs)

def test_heads_that_never_beat_the_start_are_the_start_refit_on_every_pair(xworld):
    "No head epoch beats the logistic start (learning rate 0): the heads are the start, refitted on the validation pairs too."
    import causal_llmrec.bert_train as bt
    pairs, ut, it, _ = xworld
    fits = []
    real = bt._init_linear
    def spy(model, data, pos, *a, **k):
        fits.append(len(pos)); return real(model, data, pos, *a, **k)
    bt._init_linear = spy
    try:
        r = fit(CausalBert.tiny(seed=0, covariates=['match']), pairs, ut, it, strategy='cached', head_lr=0.0, head_epochs=3, progress=False)
    finally: bt._init_linear = real
    assert 'so the heads are those fits' in r.note
    assert fits[-1] == r.n_train + r.n_val and fits[0] == r.n_train       # the last logistic fit reads every pair

def test_rejected_fine_tuning_reuses_the_pretrained_choices(world, monkeypatch):
    """A fine-tuned encoder that does not beat the pretrained one on the validation users (here lr 0: the same weights, the same
    validation loss) is dropped, and the logistic start on the pretrained embeddings reuses the choices cross-validated on them in
    `_init_heads`: the start is cross-validated twice (pretrained, fine-tuned), not three times, and ends with the frozen run's choices."""
    from causal_llmrec import bert_train
    calls = []; orig = bert_train._cv_text_ridge
    monkeypatch.setattr(bert_train, '_cv_text_ridge', lambda *a, **k: calls.append(1) or orig(*a, **k))
    pairs, ut, it, _ = world
    r0 = fit(CausalBert.tiny(seed=0), pairs, ut, it, strategy='cached', head_epochs=1, batch_size=64, progress=False)
    n0 = len(calls); calls.clear()
    r1 = fit(CausalBert.tiny(seed=0), pairs, ut, it, strategy='cached', encoder_steps=2, lr=0.0, head_epochs=1, batch_size=64, progress=False)
    assert n0 > 0 and 'the pretrained encoder was kept' in r1.note and len(calls) == 2*n0, (n0, len(calls), r1.note)
    start = lambda note: [s for s in note.split('; ') if s.startswith('logistic fi')]   # the note's account of the start's choices
    assert start(r1.note) == start(r0.note) and len(start(r0.note)) == 1, (r0.note, r1.note)

"""CausalBert's evidence on families of text worlds (issue 23): ranking and effect intervals where the cause lives in text.

Worlds: `causal_llmrec.worlds.text_world` on real MovieLens-100K users and films, where a latent user taste and film attribute
drive exposure, the baseline outcome and the effect of exposure, but reach the data only through generated text. For every
setting (text confounding x text effect modification) the bench draws --worlds worlds; world j of a setting uses seed
--seed0 + j and cycles over the mechanisms (the taste stated in a user column; implied only by the descriptions of the user's
history films; both) and the attributes (topic, sentiment), so each setting is a family, not one world.

Two studies per world (every figure out of sample):

1. **Ranking** (--study ranking): users split 60/10/30 (train / validation / test, seeded). Every method trains on the
   training users' logged pairs; the validation and test users rank their whole catalogue (every unrated film, the
   never-logged new films, described with held-out words, included). Score: normalised true uplift gain at 10
   (`causal_llmrec.evaluate.true_uplift_at_k`: 0 = a random list, 1 = the list by true tau), on all films and on the new films.
   Methods: CausalBert with its DEFAULT settings (untuned; the per-field texts of `causal_llmrec.text.text_fields`), and the
   independent baselines of `causal_llmrec.baselines`, each tuned with --budget settings on the validation users by the same
   gain (an advantage CausalBert does not get): the tabular logistic T-learner, TF-IDF, frozen-embedding logistic and
   boosted T-learners and the embedding DR-learner.
2. **Coverage** (--study coverage): on every logged pair, CausalBert's cross-fitted AIPW ATT and ATE (`cross_fit`, --folds folds
   by user, default settings) and their 95% intervals against the world's true ATT and ATE; beside them, tabular-only
   matching (ATT) and cross-fitted AIPW (ATT, ATE) on the tabular covariates, which cannot see the text; and, as a diagnostic
   of where CausalBert's bias comes from, its AIPW with one nuisance swapped for the world's truth (the true propensity, or
   the true outcome models mu0 and mu1).

    .venv/bin/python bench/text_evidence.py [--confounding 0 1 2] [--modification 0 1] [--worlds 20] [--study ranking coverage]

Writes bench/results/<--out>.json after every world (a rerun with the same --out resumes) and <--out>.md at the end. After a
change to CausalBert, --refresh recomputes its rows in the worlds already done and keeps the baselines' rows.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.worlds import text_world, TEXT_COVARIATES, TEXT_WORLD_MECHANISMS
from causal_llmrec.text import text_fields, pair_texts
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit, TrainConfig
from causal_llmrec.bert_effects import cross_fit, estimate_effects
from causal_llmrec.baselines import tune
from causal_llmrec.recommenders import BASELINES
from causal_llmrec.matching import match
from causal_llmrec.weighting import aipw
from causal_llmrec.evaluate import true_uplift_at_k

K = 10
ATTRIBUTES = ('topic', 'sentiment')
TEXT_BASELINES = ['logistic_t', 'tfidf_t', 'embed_t', 'embed_t_gb', 'embed_dr_gb']
CB = 'CausalBert (defaults)'


def world_spec(j: int, seed0: int) -> dict:
    "World j of a setting: its seed, mechanism and attribute (the family cycles over both)."
    return dict(seed=seed0 + j, mechanism=TEXT_WORLD_MECHANISMS[j % len(TEXT_WORLD_MECHANISMS)],
                attribute=ATTRIBUTES[(j // len(TEXT_WORLD_MECHANISMS)) % len(ATTRIBUTES)])


def gain(pairs: pd.DataFrame, score, mask=None) -> float:
    "Normalised true uplift gain at K of `score` over `pairs` (user_id, item_id, tau), optionally on a slice."
    p = pairs if mask is None else pairs[mask]
    s = np.asarray(score) if mask is None else np.asarray(score)[mask]
    r = true_uplift_at_k(p[['user_id', 'item_id']].assign(score=s), p[['user_id', 'item_id', 'tau']], k=K, seed=0)
    return float(r['share_of_oracle'])


def logloss(y, p) -> float:
    "Mean binary cross-entropy of probabilities `p` (clipped to [1e-6, 1 - 1e-6]) for 0/1 labels `y`."
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6); return float(-np.mean(y*np.log(p) + (1 - y)*np.log(1 - p)))


def logged_pairs(w) -> pd.DataFrame:
    "The logged pairs with the tabular covariates and a 0/1 outcome."
    it = w.data.interactions[['user_id', 'item_id', 'exposure', 'outcome']].reset_index(drop=True)
    return pd.concat([it, w.frame()[TEXT_COVARIATES].reset_index(drop=True)], axis=1).assign(outcome=lambda d: d.outcome.astype(int))


def ranking_study(w, uf, itf, logged, a, seed) -> list:
    "Normalised gain of CausalBert (defaults) and the tuned text baselines on the held-out users' whole catalogue."
    users = np.array(sorted(w.data.users.index)); rng = np.random.default_rng(seed); rng.shuffle(users)
    n_te, n_va = int(round(.3*len(users))), int(round(.1*len(users)))
    te_u, va_u = users[:n_te], users[n_te:n_te + n_va]
    train = logged[~logged.user_id.isin(np.concatenate([te_u, va_u]))].reset_index(drop=True)
    va = w.catalogue(va_u).reset_index(drop=True); te = w.catalogue(te_u).reset_index(drop=True)
    new_te = te.item_id.isin(w.new_items).to_numpy()
    rows = []
    def add(method, score, seconds, params=''):
        for sl, m in (('all items', None), ('new items', new_te)):
            rows.append(dict(study='ranking', method=method, slice=sl, gain=gain(te, score, m), seconds=round(seconds, 1), params=params))
    t0 = time.perf_counter()
    model = CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=seed)
    res = fit(model, train, uf, itf, progress=False, seed=seed)
    add(CB, predict(model, te, uf, itf).tau.to_numpy(), time.perf_counter() - t0, res.note)
    if a.refresh: return rows      # --refresh: CausalBert's rows only; the baselines' rows of the earlier run are kept
    trX, vaX = pair_texts(train, uf, itf), pair_texts(va, uf, itf)
    for name in a.baselines:
        t0 = time.perf_counter()
        r = tune(BASELINES[name], trX if BASELINES[name].needs_text else train, vaX if BASELINES[name].needs_text else va,
                 lambda v, s: gain(v, s), budget=a.budget, seed=seed, covariates=TEXT_COVARIATES)
        teX = pair_texts(te, uf, itf) if BASELINES[name].needs_text else te
        add(name, r.model.predict(teX), time.perf_counter() - t0, json.dumps(r.best_params, default=str))
    add('oracle (true tau)', te.tau.to_numpy(), 0.0)
    return rows


def cross_fitted(w, uf, itf, logged, folds: int, seed: int) -> tuple:
    """CausalBert with its defaults cross-fitted over `folds` folds of users (seeded by `seed`); returns (the `CrossFit`, its
    out-of-fold predictions with the world's true propensity, mu0 and mu1 beside them, the model whose frozen encoder the folds share)."""
    shared = CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=seed)
    def make(k):   # the default trains no encoder (TrainConfig.encoder_steps 0): the folds share one frozen encoder and its embeddings
        if TrainConfig().encoder_steps: return CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=seed + k)
        torch.manual_seed(seed + k)
        return CausalBert(shared.encoder, shared.tokenizer, encoder_name=shared.cfg['encoder_name'], covariates=TEXT_COVARIATES)
    cf = cross_fit(make, logged, uf, itf, folds=folds, seed=seed, progress=False)
    truth_pairs = pd.concat([w.data.interactions[['user_id', 'item_id']].reset_index(drop=True), w.truth[['propensity', 'mu0', 'mu1']].reset_index(drop=True)], axis=1)
    return cf, cf.predictions.merge(truth_pairs, on=['user_id', 'item_id'], how='left', validate='one_to_one'), shared


def coverage_study(w, uf, itf, logged, a, seed) -> list:
    "95% intervals of CausalBert's cross-fitted AIPW and of tabular-only matching and AIPW against the world's truth."
    truth = dict(ATT=w.att, ATE=w.ate); rows = []
    def add(method, estimand, est, lo, hi, seconds):
        rows.append(dict(study='coverage', method=method, estimand=estimand, estimate=float(est), ci_low=float(lo), ci_high=float(hi),
                         truth=truth[estimand], covered=bool(lo <= truth[estimand] <= hi), seconds=round(seconds, 1)))
    t0 = time.perf_counter()
    cf, pr, _ = cross_fitted(w, uf, itf, logged, a.folds, seed)
    eff = cf.effects(); secs = time.perf_counter() - t0
    # where the bias comes from: the same AIPW with one nuisance swapped for the world's truth (the true propensity; the true
    # mu0 and mu1). With either one right, AIPW is consistent; a gap that closes says which of CausalBert's models is off.
    # how close the out-of-fold nuisances come to the truth: correlation with the true propensity, mu0 and mu1, and the
    # propensity's out-of-fold log-loss in excess of the true propensity's (0: as good as the truth)
    t_ = pr.exposure.to_numpy(float)
    fit = dict(g_corr=float(np.corrcoef(pr.g, pr.propensity)[0, 1]), q0_corr=float(np.corrcoef(pr.q0, pr.mu0)[0, 1]),
               q1_corr=float(np.corrcoef(pr.q1, pr.mu1)[0, 1]), g_excess_logloss=logloss(t_, pr.g.to_numpy()) - logloss(t_, pr.propensity.to_numpy()))
    for est in ('ATT', 'ATE'):
        e = eff[est, 'AIPW']; add('CausalBert AIPW (cross-fitted)', est, e.estimate, e.ci[0], e.ci[1], secs); rows[-1].update(fit)
    for what, swapped in (('true propensity', pr.assign(g=pr.propensity)), ('true outcome models', pr.assign(q0=pr.mu0, q1=pr.mu1))):
        e2 = estimate_effects(swapped.drop(columns=['propensity', 'mu0', 'mu1']), cluster='user_id')
        for est in ('ATT', 'ATE'):
            e = e2[est, 'AIPW']; add(f'diagnostic: CausalBert AIPW with the {what}', est, e.estimate, e.ci[0], e.ci[1], 0.0)
    fr = logged.drop(columns=['user_id', 'item_id'])
    t0 = time.perf_counter(); m = match(fr, 'exposure', 'outcome', covariates=TEXT_COVARIATES, estimand='ATT')
    add('matching, tabular', 'ATT', m.estimate, m.ci[0], m.ci[1], time.perf_counter() - t0)
    for est in ('ATT', 'ATE'):
        t0 = time.perf_counter(); r = aipw(fr, 'exposure', 'outcome', covariates=TEXT_COVARIATES, estimand=est, n_repeats=1)
        add('AIPW, tabular', est, r.estimate, r.ci[0], r.ci[1], time.perf_counter() - t0)
    return rows


def summarise(rows: pd.DataFrame) -> tuple:
    "Ranking: mean, sd, min of the gain per setting, slice and method; coverage: share of worlds covered per setting and method."
    keys = ['confounding', 'modification']
    rk = rows[rows.study == 'ranking']
    rank = (rk.groupby(keys + ['slice', 'method'], sort=False).gain.agg(['mean', 'std', 'min', 'count']).reset_index()
            if len(rk) else pd.DataFrame())
    cv = rows[rows.study == 'coverage']
    cov = (cv.groupby(keys + ['estimand', 'method'], sort=False)
             .agg(coverage=('covered', 'mean'), bias=('estimate', lambda s: float((s - cv.loc[s.index, 'truth']).mean())),
                  width=('ci_high', lambda s: float((s - cv.loc[s.index, 'ci_low']).mean())), worlds=('covered', 'size')).reset_index()
           if len(cv) else pd.DataFrame())
    return rank, cov


def render(res: dict) -> str:
    rows = pd.DataFrame(res['rows'])
    rank, cov = summarise(rows)
    L = ["# CausalBert on families of text worlds (issue 23)", "", f"Command: `{res['command']}`", "",
         f"Machine: {res['machine']}; {res['elapsed_s']:.0f} s in all; load average at the start {res['load']}.",
         f"Worlds: `text_world(n_users={res['n_users']})`, 40 logged candidates per user, 1,682 films (10% new: never logged, held-out words); "
         f"per setting {res['worlds']} worlds (seeds from {res['seed0']}), cycling over the mechanisms {list(TEXT_WORLD_MECHANISMS)} and attributes {list(ATTRIBUTES)}.", ""]
    if len(rank):
        L += [f"## Ranking: normalised true uplift gain at {K}, held-out users, whole catalogue",
              "", f"CausalBert with its defaults (untuned); every baseline tuned with {res['budget']} settings on the validation users. "
              "mean (sd; min) over the worlds of each setting.", ""]
        for (c, m_), g in rank.groupby(['confounding', 'modification'], sort=False):
            L += [f"**text confounding {c:g}, text effect modification {m_:g}**", "", "| method | all items | new items |", "|---|---|---|"]
            piv = {(r.method, r.slice): r for r in g.itertuples()}
            for meth in sorted(dict.fromkeys(g.method), key=lambda m: m != CB):   # CausalBert first, then the run's order
                cell = lambda sl: (f"{piv[(meth, sl)].mean:.3f} ({piv[(meth, sl)].std:.3f}; {piv[(meth, sl)].min:.3f})"
                                   if (meth, sl) in piv else '')
                L.append(f"| {meth} | {cell('all items')} | {cell('new items')} |")
            L.append("")
    if len(cov):
        L += ["## Effects: share of worlds whose 95% interval covers the truth", "",
              "| confounding | modification | estimand | method | coverage | mean bias | mean width | worlds |", "|---|---|---|---|---|---|---|---|"]
        for r in cov.itertuples():
            L.append(f"| {r.confounding:g} | {r.modification:g} | {r.estimand} | {r.method} | {r.coverage:.2f} | {r.bias:+.4f} | {r.width:.4f} | {r.worlds} |")
        L.append("")
    nf = [c for c in ('g_corr', 'q0_corr', 'q1_corr', 'g_excess_logloss') if c in rows.columns]
    if nf and rows[nf[0]].notna().any():
        fr = rows[rows[nf[0]].notna() & (rows.get('estimand') == 'ATT')]
        L += ["## CausalBert's out-of-fold nuisances against the truth (per world)", "",
              "Correlation of the cross-fitted propensity g with the true propensity, of Q0 and Q1 with the true mu0 and mu1, and the "
              "propensity's out-of-fold log-loss minus that of the true propensity (0: as good as the truth).", "",
              "| confounding | modification | seed | mechanism | attribute | g corr | Q0 corr | Q1 corr | g excess log-loss | ATT error |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in fr.itertuples():
            L.append(f"| {r.confounding:g} | {r.modification:g} | {r.seed} | {r.mechanism} | {r.attribute} | {r.g_corr:.3f} | {r.q0_corr:.3f} | "
                     f"{r.q1_corr:.3f} | {r.g_excess_logloss:+.4f} | {r.estimate - r.truth:+.3f} |")
        L.append("")
    t = rows.groupby(['study', 'method']).seconds.mean().reset_index()
    L += ["## Seconds per world (mean)", "", "| study | method | seconds |", "|---|---|---|"] + \
         [f"| {r.study} | {r.method} | {r.seconds:.1f} |" for r in t.itertuples()]
    return '\n'.join(L) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--confounding', type=float, nargs='+', default=[0.0, 1.0, 2.0])
    ap.add_argument('--modification', type=float, nargs='+', default=[0.0, 1.0])
    ap.add_argument('--worlds', type=int, default=20, help='worlds per setting')
    ap.add_argument('--seed0', type=int, default=500)
    ap.add_argument('--n-users', type=int, default=300)
    ap.add_argument('--study', nargs='+', default=['ranking', 'coverage'], choices=['ranking', 'coverage'])
    ap.add_argument('--baselines', nargs='+', default=TEXT_BASELINES)
    ap.add_argument('--budget', type=int, default=4)
    ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default='text_evidence')
    ap.add_argument('--refresh', action='store_true', help="recompute CausalBert's rows of the worlds already done (after a change "
                    "to CausalBert), keeping the baselines' rows (coverage: every row, they take a second)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    out = ROOT/'bench'/'results'/a.out
    res = json.loads(out.with_suffix('.json').read_text()) if out.with_suffix('.json').exists() else None
    if res is None or res.get('n_users') != a.n_users:
        res = dict(command='', machine=f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.threads} thread(s)",
                   load=os.getloadavg()[0].__round__(1), n_users=a.n_users, budget=a.budget, folds=a.folds, seed0=a.seed0,
                   worlds=a.worlds, rows=[], done=[], elapsed_s=0.0)
    cmd = '.venv/bin/python bench/text_evidence.py ' + ' '.join(sys.argv[1:])
    res['command'] = (res['command'] + '; then ' + cmd) if a.refresh and res.get('command') else cmd
    res['worlds'] = max(res.get('worlds', 0), a.worlds)
    t_start = time.perf_counter(); el0 = res['elapsed_s']
    for c in a.confounding:
        for m_ in a.modification:
            for j in range(a.worlds):
                sp = world_spec(j, a.seed0)
                for study in a.study:
                    key = f"{study}|{c:g}|{m_:g}|{sp['seed']}"
                    if key in res['done'] and not a.refresh: continue
                    t0 = time.perf_counter()
                    w = text_world(n_users=a.n_users, confounding=c, modification=m_, **sp)
                    uf, itf = text_fields(w.data); logged = logged_pairs(w)
                    rows = (ranking_study if study == 'ranking' else coverage_study)(w, uf, itf, logged, a, sp['seed'])
                    for r in rows: r.update(confounding=c, modification=m_, **sp)
                    same = lambda r: (r['study'], r['confounding'], r['modification'], r['seed']) == (study, c, m_, sp['seed'])
                    redone = {r['method'] for r in rows}
                    res['rows'] = [r for r in res['rows'] if not (same(r) and r['method'] in redone)] + rows
                    if key not in res['done']: res['done'].append(key)
                    res['elapsed_s'] = el0 + time.perf_counter() - t_start
                    out.with_suffix('.json').write_text(json.dumps(res, indent=1, default=float))
                    brief = {r['method'][:24] + ('/new' if r.get('slice') == 'new items' else '') + (f"/{r['estimand']}" if 'estimand' in r else ''):
                             round(r.get('gain', r.get('estimate', np.nan)), 3) if 'gain' in r else r['covered'] for r in rows}
                    print(f"[{key}] {time.perf_counter() - t0:.0f}s {sp['mechanism']}/{sp['attribute']}: {brief}", flush=True)
    out.with_suffix('.md').write_text(render(res))
    print(render(res))


if __name__ == '__main__':
    main()

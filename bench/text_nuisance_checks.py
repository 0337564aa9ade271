"""Why CausalBert's AIPW intervals miss in text worlds (issue 23): can its cross-fitted nuisances be repaired after the fact,
and how much of the truth can a 300-user world teach at all?

Per world (`causal_llmrec.worlds.text_world`, 300 users, world j of the family of `bench/text_evidence.py`: seed --seed0 + j,
cycling over the mechanisms and attributes), two studies, both out of fold over the same 5 folds of users:

1. **Post-hoc repairs of CausalBert's nuisances.** CausalBert is cross-fitted exactly as in `text_evidence.py --study
   coverage` (`cross_fit`, 5 folds by user, default settings). Its out-of-fold propensity g and outcome models Q0, Q1 then go
   through repairs that need no truth, each itself cross-fitted over the same folds (fitted on the other folds' out-of-fold
   predictions, applied to the held-out fold): Platt scaling of g (a logistic regression of the exposure on logit g);
   isotonic calibration of g (exposure on g) and of Q0 and Q1 (outcome on Q within each arm; the calibrated-DML repair of
   van der Laan, Luedtke and Carone); and stacking the propensity into the outcome models (outcome on logit Q and logit g within
   each arm, the remedy for regularisation-induced confounding of Hahn, Murray and Carvalho). The AIPW ATT and ATE
   (`estimate_effects`, clustered by user) of each against the world's truth; the same with the true propensity as the
   reference. A repair that closes the gap covers where the raw one misses.
2. **What the world can teach: propensity models with one side's latent value given.** Logistic regressions (ridge chosen
   by 3-fold cross-validated log-loss over the training users) of the exposure on the tabular covariates and on products of
   user and item features, scored out of fold against the true propensity (correlation): the tabular model; both latent
   values given (the user's taste and the item's level, one-hot: the ceiling); the user's taste given, the item read from the
   frozen MiniLM embedding of its description; the item's level given, the user read from the embedding of the taste text
   (or, where the world states no taste, the mean embedding of the descriptions of the user's history films); and both sides
   read from text the same way. If giving one side lifts the model far above text-on-both-sides, both sides' maps from text
   are what the world's few users cannot teach.

    OMP_NUM_THREADS=1 .venv/bin/python bench/text_nuisance_checks.py [--worlds 4] [--seed0 500]

Writes bench/results/text_nuisance_checks.json after every world (a rerun resumes) and .md at the end.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT/'bench'))
from text_evidence import world_spec, logged_pairs, cross_fitted
from causal_llmrec.worlds import text_world, TEXT_COVARIATES
from causal_llmrec.text import text_fields
from causal_llmrec.bert_effects import estimate_effects

FOLDS = 5
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
REPAIRS = ['raw', 'Platt-scaled g', 'isotonic g', 'isotonic Q', 'isotonic g and Q', 'Q stacked with g', 'true propensity (reference)']
SIDES = ['tabular', 'text x text', 'taste given x item text', 'user text x level given', 'both given (ceiling)']


def _logit(p): p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6); return np.log(p/(1 - p))


def _per_fold(fold, fit_apply):
    "Out of fold: for each fold k, `fit_apply(train_mask, test_mask)` fills the test rows."
    out = np.empty(len(fold))
    for k in np.unique(fold): out[fold == k] = fit_apply(fold != k, fold == k)
    return out


def platt(g, t, fold):
    "Platt scaling of g, cross-fitted over `fold`."
    z = _logit(g)[:, None]
    return _per_fold(fold, lambda tr, te: LogisticRegression(C=1e6).fit(z[tr], t[tr]).predict_proba(z[te])[:, 1])


def isotonic(x, y, fold, arm=None, t=None):
    "Isotonic regression of y on x, cross-fitted over `fold` (fitted within one arm when `arm` is given)."
    def fa(tr, te):
        m = tr if arm is None else tr & (t == arm)
        return IsotonicRegression(y_min=0, y_max=1, out_of_bounds='clip').fit(x[m], y[m]).predict(x[te])
    return _per_fold(fold, fa)


def stacked(q, g, y, t, arm, fold):
    "The outcome on logit q and logit g within one arm, cross-fitted over `fold`."
    Z = np.column_stack([_logit(q), _logit(g)])
    return _per_fold(fold, lambda tr, te: LogisticRegression(C=1e4, max_iter=2000).fit(Z[tr & (t == arm)], y[tr & (t == arm)]).predict_proba(Z[te])[:, 1])


def repairs(pr):
    "CausalBert's out-of-fold predictions under every repair (one frame each)."
    t, y, fold = pr.exposure.to_numpy(float), pr.outcome.to_numpy(float), pr.fold.to_numpy()
    g, q0, q1 = pr.g.to_numpy(), pr.q0.to_numpy(), pr.q1.to_numpy()
    iq = dict(q0=isotonic(q0, y, fold, 0, t), q1=isotonic(q1, y, fold, 1, t)); ig = isotonic(g, t, fold)
    return {'raw': pr, 'Platt-scaled g': pr.assign(g=platt(g, t, fold)), 'isotonic g': pr.assign(g=ig), 'isotonic Q': pr.assign(**iq),
            'isotonic g and Q': pr.assign(g=ig, **iq),
            'Q stacked with g': pr.assign(q0=stacked(q0, g, y, t, 0, fold), q1=stacked(q1, g, y, t, 1, fold)),
            'true propensity (reference)': pr.assign(g=pr.propensity)}


def side_models(w, uf, itf, pr, model) -> dict:
    "Out-of-fold correlation with the true propensity of the logistic models of study 2 (the folds of the cross-fit)."
    t, fold, users = pr.exposure.to_numpy(), pr.fold.to_numpy(), pr.user_id.to_numpy()
    X = pr[TEXT_COVARIATES].to_numpy(float); X = (X - X.mean(0))/X.std(0)
    V = pd.DataFrame(model.encode(itf['description'].tolist()).numpy(), index=itf.index)
    if 'taste' in uf.columns: U = pd.DataFrame(model.encode(uf['taste'].tolist()).numpy(), index=uf.index)
    else:   # the taste lives in the history: the mean embedding of the descriptions of the user's most recent history films
        h = w.data.history.sort_values(['user_id', 'timestamp'], kind='mergesort'); h = h[h.item_id.isin(V.index)]
        last = h.groupby('user_id').item_id.apply(lambda s: s.to_numpy()[-10:])
        U = pd.DataFrame(np.stack([V.loc[last[u]].mean(0).to_numpy() if u in last.index else V.mean(0).to_numpy() for u in uf.index]), index=uf.index)
    std = lambda E, ids: ((E - E.mean(0))/E.std(0).clip(lower=1e-4)).loc[ids].to_numpy()
    Us, Vs = std(U, pr.user_id), std(V, pr.item_id)
    L = int(w.hidden['m'].max()) + 1
    To, Mo = np.eye(L)[w.hidden['t'].reindex(pr.user_id).to_numpy()], np.eye(L)[w.hidden['m'].reindex(pr.item_id).to_numpy()]
    prod = lambda A, B: (A[:, :, None]*B[:, None, :]).reshape(len(A), -1)
    # text x text: both sides' embeddings through a rank-one-per-level map is not available without labels, so the same
    # logistic machinery reads the elementwise products of the two embeddings (one weight per dimension)
    feats = {'tabular': X, 'text x text': np.hstack([X, Us*Vs]), 'taste given x item text': np.hstack([X, prod(To, Vs)]),
             'user text x level given': np.hstack([X, prod(Us, Mo)]), 'both given (ceiling)': np.hstack([X, prod(To, Mo)])}
    out = {}
    for name, F in feats.items():
        def fa(tr, te):
            cv = list(GroupKFold(3).split(F[tr], t[tr], users[tr]))
            lr = LogisticRegressionCV(Cs=list(CS), cv=cv, scoring='neg_log_loss', max_iter=3000).fit(F[tr], t[tr])
            return lr.predict_proba(F[te])[:, 1]
        out[name] = float(np.corrcoef(_per_fold(fold, fa), pr.propensity)[0, 1])
    return out


def one_world(j: int, seed0: int) -> list:
    sp = world_spec(j, seed0)
    w = text_world(n_users=300, confounding=1.0, modification=1.0, **sp)
    uf, itf = text_fields(w.data); logged = logged_pairs(w); seed = sp['seed']
    t0 = time.perf_counter()
    cf, pr, shared = cross_fitted(w, uf, itf, logged, FOLDS, seed)    # exactly as text_evidence.py's coverage study
    cf_s = time.perf_counter() - t0
    pr = pr.merge(logged[['user_id', 'item_id'] + [c for c in TEXT_COVARIATES if c not in pr.columns]], on=['user_id', 'item_id'], how='left')
    rows = []
    for name, v in repairs(pr).items():
        e = estimate_effects(v.drop(columns=['propensity', 'mu0', 'mu1']).assign(), cluster='user_id')
        r = dict(study='repairs', method=name, g_corr=float(np.corrcoef(v.g, pr.propensity)[0, 1]),
                 q0_corr=float(np.corrcoef(v.q0, pr.mu0)[0, 1]), q1_corr=float(np.corrcoef(v.q1, pr.mu1)[0, 1]))
        for est, true in (('ATT', w.att), ('ATE', w.ate)):
            x = e[est, 'AIPW']
            r.update({f'{est}_estimate': x.estimate, f'{est}_low': x.ci[0], f'{est}_high': x.ci[1], f'{est}_truth': true,
                      f'{est}_covered': bool(x.ci[0] <= true <= x.ci[1])})
        rows.append(r)
    t1 = time.perf_counter()
    for name, c in side_models(w, uf, itf, pr, shared).items(): rows.append(dict(study='sides', method=name, g_corr=c))
    for r in rows: r.update(seed=seed, mechanism=sp['mechanism'], attribute=sp['attribute'], crossfit_s=round(cf_s, 1), sides_s=round(time.perf_counter() - t1, 1))
    return rows


def render(res: dict) -> str:
    d = pd.DataFrame(res['rows'])
    L = ['# Why the intervals miss: post-hoc repairs of CausalBert\'s nuisances, and what a 300-user world can teach (issue 23)', '',
         f"Command: `{res['command']}`", '', f"Machine: {res['machine']}; load average at the start {res['load']}; {res['elapsed_s']:.0f} s in all.", '',
         'Worlds: `text_world(n_users=300, confounding=1, modification=1)`, world j of `bench/text_evidence.py`\'s family (seed 500 + j); '
         'CausalBert cross-fitted over 5 folds of users with its defaults, as in the coverage study. Every figure is out of fold.', '',
         '## 1. Repairs of CausalBert\'s out-of-fold nuisances: AIPW against the truth', '',
         'Each repair is cross-fitted over the same folds. g corr, Q0 corr: correlation of the (repaired) out-of-fold propensity and '
         'baseline outcome model with the truth. ATT error: estimate minus the true ATT. Covered: worlds whose 95% interval holds the truth.', '']
    r = d[d.study == 'repairs'].copy(); r['ATT_error'] = r.ATT_estimate - r.ATT_truth; r['ATE_error'] = r.ATE_estimate - r.ATE_truth
    g = r.groupby('method', sort=False).agg(g=('g_corr', 'mean'), q0=('q0_corr', 'mean'), att_err=('ATT_error', 'mean'), att_sd=('ATT_error', 'std'),
                                           att_cov=('ATT_covered', 'mean'), ate_err=('ATE_error', 'mean'), ate_cov=('ATE_covered', 'mean'), n=('seed', 'size'))
    L += ['| repair | g corr | Q0 corr | ATT error mean (sd) | ATT covered | ATE error mean | ATE covered | worlds |', '|---|---|---|---|---|---|---|---|']
    for m in [x for x in REPAIRS if x in g.index]:
        x = g.loc[m]
        L.append(f"| {m} | {x.g:.3f} | {x.q0:.3f} | {x.att_err:+.4f} ({x.att_sd:.4f}) | {x.att_cov:.2f} | {x.ate_err:+.4f} | {x.ate_cov:.2f} | {int(x.n)} |")
    L += ['', 'Per world, ATT error of each repair:', '', '| seed | mechanism | attribute | ' + ' | '.join(REPAIRS) + ' |', '|---|---|---|' + '---|'*len(REPAIRS)]
    for s, x in r.groupby('seed'):
        e = x.set_index('method').ATT_error
        L.append(f"| {s} | {x.mechanism.iloc[0]} | {x.attribute.iloc[0]} | " + ' | '.join(f"{e[m]:+.4f}" for m in REPAIRS) + ' |')
    s = d[d.study == 'sides']
    L += ['', '## 2. What the world can teach: out-of-fold correlation of propensity models with the true propensity', '',
          'Logistic regressions, ridge chosen by 3-fold cross-validated log-loss over the training users; "given" sides use the world\'s '
          'hidden latent value (one-hot), "text" sides the frozen MiniLM embedding (the taste text; where none is stated, the mean embedding of the user\'s '
          'last 10 history films\' descriptions); products of the two sides. CausalBert\'s own cross-fitted g (repairs table, raw) beside them.', '',
          '| seed | mechanism | attribute | ' + ' | '.join(SIDES) + ' | CausalBert g |', '|---|---|---|' + '---|'*(len(SIDES) + 1)]
    for sd, x in s.groupby('seed'):
        c = x.set_index('method').g_corr; cb = r[(r.seed == sd) & (r.method == 'raw')].g_corr.iloc[0]
        L.append(f"| {sd} | {x.mechanism.iloc[0]} | {x.attribute.iloc[0]} | " + ' | '.join(f"{c[m]:.3f}" for m in SIDES) + f" | {cb:.3f} |")
    m = s.groupby('method').g_corr.agg(['mean', 'std'])
    cbm = r[r.method == 'raw'].g_corr
    L.append('| mean (sd) | | | ' + ' | '.join(f"{m.loc[k, 'mean']:.3f} ({m.loc[k, 'std']:.3f})" for k in SIDES) + f" | {cbm.mean():.3f} ({cbm.std():.3f}) |")
    L += ['', f"Seconds per world: cross-fit {d.crossfit_s.mean():.0f}, study 2 {d.sides_s.mean():.0f}.", '']
    return '\n'.join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--worlds', type=int, default=4)
    ap.add_argument('--seed0', type=int, default=500)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default='text_nuisance_checks')
    ap.add_argument('--only', type=int, nargs='*', help='run only these world indices j (another process may run the others; results merge)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    out = ROOT/'bench'/'results'/a.out
    cmd = '.venv/bin/python bench/text_nuisance_checks.py ' + ' '.join(sys.argv[1:])
    for j in (a.only if a.only else range(a.worlds)):
        res = json.loads(out.with_suffix('.json').read_text()) if out.with_suffix('.json').exists() else None
        if res is None:
            res = dict(commands=[], machine=f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {a.threads} thread(s)",
                       load=round(os.getloadavg()[0], 1), rows=[], elapsed_s=0.0)
        if world_spec(j, a.seed0)['seed'] in {r['seed'] for r in res['rows']}: continue
        t0 = time.perf_counter(); rows = one_world(j, a.seed0)
        res = json.loads(out.with_suffix('.json').read_text()) if out.with_suffix('.json').exists() else res   # merge with a parallel run
        res['rows'] += rows; res['elapsed_s'] += time.perf_counter() - t0
        if cmd not in res['commands']: res['commands'].append(cmd)
        res['command'] = '; '.join(res['commands'])
        out.with_suffix('.json').write_text(json.dumps(res, indent=1, default=float))
        print(f"[{rows[0]['seed']}] {time.perf_counter() - t0:.0f}s " + ', '.join(f"{r['method']}: {r.get('ATT_estimate', r['g_corr']):.3f}" for r in rows), flush=True)
    res = json.loads(out.with_suffix('.json').read_text()); res['command'] = '; '.join(res['commands'])
    out.with_suffix('.md').write_text(render(res)); print(render(res))


if __name__ == '__main__':
    main()

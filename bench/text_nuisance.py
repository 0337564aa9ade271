"""How well can text models learn the nuisances of a text world? The ceiling behind CausalBert's effect intervals (issue 23).

CausalBert's cross-fitted AIPW misses the truth in text worlds although the same AIPW covers once either nuisance is swapped
for the truth (bench/results/text_evidence_coverage.md): both its propensity and its outcome models are off. This bench asks
whether any model on the frozen encoder's text can do better with the data a 300-user world gives, independently of
CausalBert's training: out of sample (held-out users), it fits the propensity P(exposure | pair) and the outcome without
exposure mu0 = P(click | pair, unexposed) with

- `tabular`: logistic regression on the world's tabular covariates (popularity, year, age, female, activity);
- `products`: logistic regression on the covariates and the elementwise products u_f * v_g of every user field f and item field
  g's frozen MiniLM embedding (what CausalBert's linear part and the frozen-embedding baselines read): the covariates with
  C = 1, the text products with one L2 penalty of their own chosen by cross-validated log-loss over the training users;
- `products, field pairs chosen`: the same, but each field pair (f, g) a block with its own penalty, the blocks entered by
  greedy forward selection on cross-validated log-loss (the pair that helps most first, while one helps);
- `bilinear`: the covariates' logistic part plus a rank-4 bilinear form (sum_f P_f u_f)' W (sum_g Q_g v_g) (the form of
  CausalBert's bilinear part), trained by Adam, stopped early on a fifth of the training users;
- `bilinear, tied`: the same with one projection for every field of both sides (P_f = Q_g = P: user and item texts share the
  encoder's space, so one map can align a stated taste with a description in the same words);
- `canonical directions`: the user and item sides' embeddings (every field, concatenated) projected on the top K pairs of
  canonical directions of the cross-covariance between a pair's user and item embeddings weighted by the tabular model's
  residual (ridge-whitened: the covariance of each side plus c times its mean eigenvalue), then logistic regression on the
  covariates, the K x K products of the projections and the projections. The directions of the training pairs' features are
  cross-fitted (five folds of users); K in (2, 4, 8), c in (1, 10, 100) and, for mu0, whether the directions come from the
  propensity's residuals (shared: the same agreement drives both) or mu0's own are chosen by 3-fold cross-validated log-loss
  over the training users. A convex, one-step estimate of the low-rank user x item form;
- `cross-encoder, fine-tuned`: the shipped MiniLM reading the user's free text (the free-text user fields, else the
  'history' field) and the item's free-text fields as one sentence pair, mean-pooled, a linear output added to the tabular
  model's logit, fine-tuned end to end (AdamW, --xenc-lr, linear warm-up and decay, batches of 32, --xenc-epochs epochs):
  the cross-encoder the articles describe. Costly on a CPU (about 12 minutes an epoch of a 300-user world's 8,000 training pairs
  on one core), so only with `--models` naming it; the committed results do not hold it yet (a GPU job);
- `truth's features`: logistic regression on the covariates and the true agreement one-hots (latent taste x item level), which
  no text model sees: the ceiling of any model.

Scores on the held-out users' pairs: correlation with the true propensity (mu0) and the log-loss in excess of the truth's own
(0: as good as the true probabilities). Worlds: `text_world(confounding=1, modification=1)` over --worlds seeds from --seed0,
cycling over the mechanisms and attributes like bench/text_evidence.py, at each --users size.

    .venv/bin/python bench/text_nuisance.py [--users 300 900] [--worlds 6] [--seed0 500] [--threads 1] [--models ...]

Writes bench/results/text_nuisance.json (after every world; a rerun resumes, fitting only the models a world lacks) and .md.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from text_evidence import world_spec, logged_pairs, logloss
from causal_llmrec.worlds import text_world, TEXT_COVARIATES
from causal_llmrec.text import text_fields
from causal_llmrec.baselines import _embed
from sklearn.linear_model import LogisticRegression

MODELS = ['tabular', 'products', 'products, field pairs chosen', 'bilinear', 'bilinear, tied', 'canonical directions',
          'cross-encoder, fine-tuned', "truth's features"]
DEFAULT_MODELS = [m for m in MODELS if m != 'cross-encoder, fine-tuned']


def standardise(X, tr):
    sd = X[tr].std(0); return (X - X[tr].mean(0))/np.where(sd > 1e-8, sd, 1.0)


def fit_logistic(X, y, groups=None, n_cov=None, scales=(None,), seed=0):
    """Logistic regression (C = 1 on standardised columns). With `n_cov`, the columns after the first `n_cov` (the text) are
    multiplied by a scale s, which gives them the penalty 1/s^2 of the covariates': s is chosen from `scales` by 3-fold
    cross-validated log-loss over `groups` (users). Returns (model, scale, cross-validated log-loss)."""
    def sc(Z, s): Z = Z.copy(); Z[:, n_cov:] *= s; return Z
    if n_cov is None or len(scales) == 1:
        s = scales[0] if n_cov is not None else None
        Z = X if s is None else sc(X, s); return LogisticRegression(C=1.0, max_iter=1000).fit(Z, y), s, np.nan
    best, bl = None, np.inf
    for s in scales:
        ll = cv_logloss(sc(X, s), y, groups)
        if ll < bl: best, bl = s, ll
    return LogisticRegression(C=1.0, max_iter=1000).fit(sc(X, best), y), best, bl


def cv_logloss(Z, y, groups):
    "Mean 3-fold cross-validated log-loss over `groups` (users) of a logistic regression (C = 1) on `Z`."
    from sklearn.model_selection import GroupKFold
    return sum(logloss(y[te], LogisticRegression(C=1.0, max_iter=500).fit(Z[tr], y[tr]).predict_proba(Z[te])[:, 1])*len(te)
               for tr, te in GroupKFold(3).split(Z, y, groups))/len(y)


def text_scales(d):
    "Scales of a text block of `d` columns: penalties from about 3 to 3e4 per column, relative to the block's size."
    return tuple(float(np.sqrt(c/d)) for c in (0.01, 0.1, 1.0, 10.0, 100.0))


def fit_products(X0, blocks, y, groups, select):
    """Logistic regression on the covariates and text blocks (one per field pair). select=False: all blocks as one, one penalty
    (as CausalBert's linear part); select=True: blocks added one at a time, each with its own penalty, the block that lowers the
    cross-validated log-loss most first, while it lowers it (greedy forward selection of field pairs). Returns (predict, chosen)."""
    nc = X0.shape[1]
    if not select:
        Xa = np.hstack([X0] + [b for b in blocks]); m, s, _ = fit_logistic(Xa, y, groups, nc, text_scales(Xa.shape[1] - nc))
        return (lambda X0b, bb: m.predict_proba(np.hstack([X0b] + [b*s for b in bb]))[:, 1]), list(range(len(blocks)))
    chosen, sc_, cur = [], [], LogisticRegression(C=1.0, max_iter=1000).fit(X0, y)
    base = cv_logloss(X0, y, groups)
    while len(chosen) < len(blocks):
        trial = {}
        for k in set(range(len(blocks))) - set(chosen):
            Xc = np.hstack([X0] + [blocks[j]*s for j, s in zip(chosen, sc_)])
            trial[k] = fit_logistic(np.hstack([Xc, blocks[k]]), y, groups, Xc.shape[1], text_scales(blocks[k].shape[1]))
        k = min(trial, key=lambda k: trial[k][2])
        if trial[k][2] >= base: break
        chosen.append(k); sc_.append(trial[k][1]); base = trial[k][2]; cur = trial[k][0]
    return (lambda X0b, bb: cur.predict_proba(np.hstack([X0b] + [bb[j]*s for j, s in zip(chosen, sc_)]))[:, 1]), chosen


def fit_bilinear(X, Us, Vs, y, groups, tied, rank=4, seed=0, epochs=300):
    "Covariates' logistic part + rank-`rank` bilinear form of the field embeddings, Adam, early-stopped on a fifth of the users."
    torch.manual_seed(seed)
    uq = np.unique(groups); va_u = np.random.default_rng(seed).permutation(uq)[:max(1, len(uq)//5)]
    va = torch.as_tensor(np.isin(groups, va_u)); tr = ~va
    d = Us[0].shape[1]
    P = [torch.nn.Linear(d, rank) for _ in Us]; Q = [torch.nn.Linear(d, rank) for _ in Vs]
    if tied: P = [P[0]]*len(Us); Q = [P[0]]*len(Vs)
    L = torch.nn.Linear(X.shape[1], 1); W = torch.nn.Parameter(torch.eye(rank)*0.1)
    params = list({id(p): p for m in P + Q + [L] for p in m.parameters()}.values()) + [W]
    opt = torch.optim.Adam(params, lr=3e-3, weight_decay=1e-2)
    Xt = torch.as_tensor(X, dtype=torch.float32); yt = torch.as_tensor(y, dtype=torch.float32)
    Ut = [torch.as_tensor(u, dtype=torch.float32) for u in Us]; Vt = [torch.as_tensor(v, dtype=torch.float32) for v in Vs]
    def f(m, Xt=Xt, Ut=Ut, Vt=Vt):
        p = sum(Pf(u[m]) for Pf, u in zip(P, Ut)); q = sum(Qg(v[m]) for Qg, v in zip(Q, Vt))
        return L(Xt[m]).squeeze(-1) + ((p @ W)*q).sum(-1)
    best, state = np.inf, None
    for _ in range(epochs):
        opt.zero_grad(); F.binary_cross_entropy_with_logits(f(tr), yt[tr]).backward(); opt.step()
        with torch.no_grad():
            v = float(F.binary_cross_entropy_with_logits(f(va), yt[va]))
        if v < best: best, state = v, [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, s in zip(params, state): p.copy_(s)
    def predict(X2, Us2, Vs2):
        with torch.no_grad():
            m = torch.ones(len(X2), dtype=torch.bool)
            return torch.sigmoid(f(m, torch.as_tensor(X2, dtype=torch.float32), [torch.as_tensor(u, dtype=torch.float32) for u in Us2],
                                   [torch.as_tensor(v, dtype=torch.float32) for v in Vs2])).numpy()
    return predict


def canonical_fold(Eu, Ei, ui, ii, e, fit, cs):
    """Per ridge c in `cs`, the canonical directions (all of them, strongest first) of the e-weighted cross-covariance between the
    user and item embeddings of the pairs `fit`, each side ridge-whitened (its covariance plus c times its mean eigenvalue):
    {c: (user directions, item directions)}, and the two sides' means. One eigendecomposition per side serves every c."""
    uu, iu = np.unique(ui[fit]), np.unique(ii[fit])
    U, V = Eu[uu], Ei[iu]; mu_u, mu_v = U.mean(0), V.mean(0)
    C = ((U - mu_u)[np.searchsorted(uu, ui[fit])]*e[fit][:, None]).T @ (V - mu_v)[np.searchsorted(iu, ii[fit])]/fit.sum()
    eu, Qu = np.linalg.eigh(np.cov(U, rowvar=False)); ev, Qv = np.linalg.eigh(np.cov(V, rowvar=False))
    eu, ev = np.maximum(eu, 0), np.maximum(ev, 0); Cq = Qu.T @ C @ Qv
    out = {}
    for c in cs:
        su, sv = 1/np.sqrt(eu + c*eu.mean()), 1/np.sqrt(ev + c*ev.mean())
        L, _, Rt = np.linalg.svd(su[:, None]*Cq*sv[None, :])
        out[c] = (Qu @ (su[:, None]*L), Qv @ (sv[:, None]*Rt.T))
    return out, mu_u, mu_v


def cross_fitted_canonical(Eu, Ei, ui, ii, e, a, ufold, Ks, cs):
    """{(K, c): features} (the K x K products of the projections, then the projections), with directions from the other folds'
    users for the pairs `a` and from all of `a` for the rest."""
    out = {(K, c): np.zeros((len(ui), K*K + 2*K)) for K in Ks for c in cs}
    for f in list(np.unique(ufold[a])) + [None]:
        fit, sel = (a & (ufold != f), a & (ufold == f)) if f is not None else (a, ~a)
        if not sel.any(): continue
        dirs, mu_u, mu_v = canonical_fold(Eu, Ei, ui, ii, e, fit, cs)
        for c, (Au, Av) in dirs.items():
            for K in Ks:
                P, Q = (Eu - mu_u) @ Au[:, :K], (Ei - mu_v) @ Av[:, :K]
                P, Q = P[ui[sel]], Q[ii[sel]]
                out[(K, c)][sel] = np.hstack([(P[:, :, None]*Q[:, None, :]).reshape(sel.sum(), -1), P, Q])
    return out


def fit_canonical(X0, Eu, Ei, ui, ii, y, a, b, users, e_own, e_shared, a_shared, seed, Ks=(2, 4, 8), cs=(1.0, 10.0, 100.0)):
    "The `canonical directions` model: (K, c, which residuals) chosen by cross-validated log-loss on `a`; predictions on `b`."
    uq = np.unique(users); fo = dict(zip(np.random.default_rng(seed + 1).permutation(uq), np.arange(len(uq)) % 5))
    ufold = np.array([fo[u] for u in users])
    best = None
    for src, e, af in (('own', e_own, a),) + ((('shared', e_shared, a_shared),) if e_shared is not None else ()):
        for (K, c), Fe in cross_fitted_canonical(Eu, Ei, ui, ii, e, af, ufold, Ks, cs).items():
            X = np.hstack([X0, standardise(Fe, a)])
            ll = cv_logloss(X[a], y[a], users[a])
            if best is None or ll < best[0]: best = (ll, X, f"{src}, K={K}, c={c:g}")
    m = LogisticRegression(C=1.0, max_iter=2000).fit(best[1][a], y[a])
    return m.predict_proba(best[1][b])[:, 1], best[2]


def fit_cross_encoder(A, B, off, y, a, b, seed, epochs, lr, bs=32, max_length=96):
    """The shipped MiniLM as a cross-encoder over (A[k], B[k]) sentence pairs: mean-pooled, a linear output (starting at zero)
    added to the offset logit `off`, fine-tuned on pairs `a` by AdamW; probabilities on `b`, and the held-out correlation
    trace is not looked at (no early stopping: the budget is the setting)."""
    from causal_llmrec.bert import default_encoder_path
    from transformers import AutoTokenizer, AutoModel
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(default_encoder_path())); enc = AutoModel.from_pretrained(str(default_encoder_path()))
    head = torch.nn.Linear(enc.config.hidden_size, 1); torch.nn.init.zeros_(head.weight); torch.nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW([{'params': enc.parameters(), 'lr': lr}, {'params': head.parameters(), 'lr': 1e-3}], weight_decay=0.01)
    def logits(idx, train):
        enc.train(train)
        bt = tok([A[i] for i in idx], [B[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors='pt')
        h = enc(**bt).last_hidden_state; m = bt['attention_mask'][..., None].float()
        return head((h*m).sum(1)/m.sum(1)).squeeze(-1) + torch.as_tensor(off[idx], dtype=torch.float32)
    a = np.flatnonzero(a); b = np.flatnonzero(b); rng = np.random.default_rng(seed)
    n_steps = max(1, epochs*(len(a)//bs))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1)/(0.1*n_steps))*max(0.0, 1 - s/n_steps))
    for ep in range(epochs):
        perm = rng.permutation(a)
        for s0 in range(0, len(perm) - bs + 1, bs):
            idx = perm[s0:s0+bs]
            loss = F.binary_cross_entropy_with_logits(logits(idx, True), torch.as_tensor(y[idx], dtype=torch.float32))
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0); opt.step(); sched.step()
        print(f"    cross-encoder epoch {ep + 1}/{epochs} done", flush=True)
    with torch.no_grad():
        return torch.cat([torch.sigmoid(logits(b[s0:s0+256], False)) for s0 in range(0, len(b), 256)]).numpy()


def world_rows(w, seed, models=DEFAULT_MODELS, xenc=(3, 5e-5), targets=('propensity', 'mu0')):
    "Fit every model on two thirds of the users' pairs, score on the rest: propensity (all pairs) and mu0 (unexposed pairs)."
    uf, itf = text_fields(w.data); lg = logged_pairs(w); tp = w.truth.reset_index(drop=True)
    users = lg.user_id.to_numpy(); uq = np.random.default_rng(seed).permutation(np.unique(users))
    tr = np.isin(users, uq[:int(len(uq)*2/3)]); te = ~tr
    ui, ii = uf.index.get_indexer(users), itf.index.get_indexer(lg.item_id)
    E = {('u', c): np.asarray(_embed(list(uf[c].astype(str)))) for c in uf.columns}
    E.update({('i', c): np.asarray(_embed(list(itf[c].astype(str)))) for c in itf.columns})
    allE = np.vstack(list(E.values())); mu, sd = allE.mean(0), np.where(allE.std(0) > 1e-8, allE.std(0), 1.0)   # one scale for both sides
    Us = [((E[('u', c)] - mu)/sd)[ui] for c in uf.columns]; Vs = [((E[('i', c)] - mu)/sd)[ii] for c in itf.columns]
    X0 = standardise(lg[TEXT_COVARIATES].to_numpy(float), tr)
    pairs_ = [(f, g) for f in uf.columns for g in itf.columns]
    blocks = [standardise(u*v, tr) for u in Us for v in Vs]
    tt = w.hidden['t'].reindex(users).to_numpy(); mm = w.hidden['m'].reindex(lg.item_id).to_numpy(); L = int(max(tt.max(), mm.max())) + 1
    oh = np.zeros((len(lg), L*L)); oh[np.arange(len(lg)), tt*L + mm] = 1
    Xo = np.hstack([X0, oh])
    Eu = np.hstack([(E[('u', c)] - mu)/sd for c in uf.columns]); Ei = np.hstack([(E[('i', c)] - mu)/sd for c in itf.columns])   # per unique id
    if 'cross-encoder, fine-tuned' in models:
        tc = w.data.info.get('text_columns', {})
        ucols = [c for c in tc.get('users', []) if c in uf.columns] or ['history']
        icols = [c for c in tc.get('items', []) if c in itf.columns] or list(itf.columns)
        XA = uf[ucols].astype(str).agg(' | '.join, axis=1).reindex(users).tolist()
        XB = itf[icols].astype(str).agg(' | '.join, axis=1).reindex(lg.item_id).tolist()
    rows = []; e_g = None
    for target, rowmask, y, truth in (('propensity', np.ones(len(lg), bool), lg.exposure.to_numpy(float), tp.propensity.to_numpy()),
                                      ('mu0', lg.exposure.to_numpy() == 0, lg.outcome.to_numpy(float), tp.mu0.to_numpy())):
        if target not in targets and not (target == 'propensity' and 'mu0' in targets): continue
        a, b = tr & rowmask, te & rowmask
        tab = fit_logistic(X0[a], y[a])[0]; e_own = y - tab.predict_proba(X0)[:, 1]
        if target == 'propensity': e_g, a_g = e_own, a
        for name in [m for m in MODELS if m in models and target in targets]:
            t0 = time.perf_counter()
            chosen = ''
            if name == 'tabular': p = tab.predict_proba(X0[b])[:, 1]   # the tabular fit the residual models start from
            elif name.startswith('products'):
                pr, ch = fit_products(X0[a], [k[a] for k in blocks], y[a], users[a], select=name.endswith('chosen'))
                p = pr(X0[b], [k[b] for k in blocks]); chosen = ', '.join(f'{pairs_[k][0]} x {pairs_[k][1]}' for k in ch)
            elif name == "truth's features": p = fit_logistic(Xo[a], y[a])[0].predict_proba(Xo[b])[:, 1]
            elif name == 'canonical directions':
                p, chosen = fit_canonical(X0, Eu, Ei, ui, ii, y, a, b, users, e_own, e_g if target == 'mu0' else None, a_g, seed)
            elif name == 'cross-encoder, fine-tuned':
                p = fit_cross_encoder(XA, XB, tab.decision_function(X0), y, a, b, seed, *xenc)
                chosen = f"user: {', '.join(ucols)}; item: {', '.join(icols)}; {xenc[0]} epochs, lr {xenc[1]:g}"
            else:
                pr = fit_bilinear(X0[a], [u[a] for u in Us], [v[a] for v in Vs], y[a], users[a], tied=name.endswith('tied'), seed=seed)
                p = pr(X0[b], [u[b] for u in Us], [v[b] for v in Vs])
            rows.append(dict(target=target, model=name, corr=float(np.corrcoef(p, truth[b])[0, 1]),
                             excess_logloss=logloss(y[b], p) - logloss(y[b], truth[b]), fields=chosen, seconds=round(time.perf_counter() - t0, 1)))
    return rows


def render(res):
    df = pd.DataFrame(res['rows'])
    L = ["# Text nuisances: how close models on the frozen encoder's text come to the truth (issue 23)", "",
         f"Commands: `{'`; then `'.join(res.get('commands', [res.get('command', '')]))}`", "", f"Machine: {res['machine']}; {res['elapsed_s']:.0f} s in all.",
         f"Worlds: `text_world(confounding=1, modification=1)`, up to {res['worlds']} per size (seeds from {res['seed0']}, cycling over the "
         "mechanisms stated / history / both and the attributes topic / sentiment); two thirds of the users train, the rest score.", "",
         "mean (sd; min) over the worlds of the correlation with the truth, and of the held-out log-loss in excess of the true "
         "probabilities' (lower is better; 0 is the truth).", ""]
    for (n, target), g in df.groupby(['n_users', 'target'], sort=True):
        L += [f"**{n} users ({g.seed.nunique()} worlds), {target}**", "", "| model | correlation with the truth | excess log-loss |", "|---|---|---|"]
        for m in MODELS:
            s = g[g.model == m]
            if len(s): L.append(f"| {m} | {s['corr'].mean():.3f} ({s['corr'].std():.3f}; {s['corr'].min():.3f}) | "
                                f"{s.excess_logloss.mean():.4f} ({s.excess_logloss.std():.4f}) |")
        L.append("")
    ms = [m for m in MODELS if m in set(df.model)]
    L += ["Per world (propensity, correlation):", "", "| users | seed | mechanism | attribute | " + " | ".join(ms) + " |",
          "|---|---|---|---|" + "---|"*len(ms)]
    for (n, s_, me, at), g in df[df.target == 'propensity'].groupby(['n_users', 'seed', 'mechanism', 'attribute'], sort=True):
        c = dict(zip(g.model, g['corr']))
        L.append(f"| {n} | {s_} | {me} | {at} | " + " | ".join(f"{c.get(m, np.nan):.3f}" for m in ms) + " |")
    return '\n'.join(L) + '\n'


def _merge_write(path, res, rows):
    "Add `rows` to the results file, re-read first so that runs of other models at the same time keep theirs (one row per world, target, model)."
    cur = json.loads(path.read_text()) if path.exists() else dict(rows=[])
    key = lambda r: (r['n_users'], r['seed'], r['target'], r['model'])
    have = {key(r) for r in rows}
    res['rows'] = sorted([r for r in cur['rows'] if key(r) not in have] + rows,
                         key=lambda r: (r['n_users'], r['seed'], r['target'] != 'propensity', MODELS.index(r['model'])))
    res['commands'] = list(dict.fromkeys(cur.get('commands', [cur['command']] if 'command' in cur else []) + [res['command']]))
    res['elapsed_s'] = cur.get('elapsed_s', 0.0) + res.pop('_elapsed_new', 0.0)
    path.write_text(json.dumps(res, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--users', type=int, nargs='+', default=[300, 900])
    ap.add_argument('--worlds', type=int, default=6)
    ap.add_argument('--seed0', type=int, default=500)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--models', nargs='+', default=DEFAULT_MODELS, choices=MODELS, metavar='MODEL',
                    help=f"models to fit where a world lacks them (default: all but the cross-encoder); one of {MODELS}")
    ap.add_argument('--xenc-epochs', type=int, default=3)
    ap.add_argument('--xenc-lr', type=float, default=5e-5)
    ap.add_argument('--targets', nargs='+', default=['propensity', 'mu0'], choices=['propensity', 'mu0'],
                    help='the nuisances to fit (the cross-encoder takes about 12 CPU-minutes an epoch per target at 300 users)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    path = (ROOT/'bench'/'results'/'text_nuisance').with_suffix('.json')
    res = json.loads(path.read_text()) if path.exists() else dict(rows=[])
    res.update(command='.venv/bin/python bench/text_nuisance.py ' + ' '.join(sys.argv[1:]), worlds=max(res.get('worlds', 0), a.worlds),
               seed0=a.seed0, machine=f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {a.threads} thread(s)")
    res.pop('done', None)
    for n in a.users:
        for j in range(a.worlds):
            sp = world_spec(j, a.seed0)
            have = {(r['model'], r['target']) for r in json.loads(path.read_text())['rows'] if (r['n_users'], r['seed']) == (n, sp['seed'])} if path.exists() else set()
            todo = [m for m in a.models if not {(m, t) for t in a.targets} <= have]
            if not todo: continue
            t0 = time.perf_counter()
            w = text_world(n_users=n, confounding=1.0, modification=1.0, **sp)
            rows = [dict(r, n_users=n, **sp) for r in world_rows(w, sp['seed'], todo, (a.xenc_epochs, a.xenc_lr), a.targets)]
            res['_elapsed_new'] = time.perf_counter() - t0
            _merge_write(path, res, rows)
            print(f"[{n}|{sp['seed']}] {time.perf_counter() - t0:.0f}s {sp['mechanism']}/{sp['attribute']}: "
                  + ", ".join(f"{r['model']}={r['corr']:.3f}" for r in rows if r['target'] == 'propensity'), flush=True)
    res = json.loads(path.read_text())
    path.with_suffix('.md').write_text(render(res))
    print(render(res))


if __name__ == '__main__':
    main()

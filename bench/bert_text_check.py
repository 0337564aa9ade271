"""Does CausalBert read what the text says? (issue 23)

In `causal_llmrec.worlds.text_world` a latent user taste and item mood drive exposure and the effect of exposure, but reach the
data only through generated text (the user's stated `taste`, the item's `description`). Per world (seed), on held-out users (a
seeded 30%) and their whole catalogue (every unrated film; the never-logged new films, described with held-out words, as a slice),
this compares the normalised uplift gain at 10 (`causal_llmrec.evaluate.true_uplift_at_k`'s share of the oracle: 0 = a random
list, 1 = the list by true tau) of

* CausalBert with its defaults (`CausalBert.from_encoder(covariates=TEXT_COVARIATES)`, `fit(model, pairs, *text_fields(data))`,
  the per-field texts of `causal_llmrec.text.text_fields`; `--encoder-steps` overrides the default budget for experiments);
* a logistic T-learner on the tabular covariates (`causal_llmrec.baselines.LogisticTLearner`, `TEXT_COVARIATES`);
* a frozen-embedding logistic T-learner built inline from `CausalBert.encode` of the same shipped MiniLM: the covariates and the
  element-wise product of the embeddings of the user's free-text field (`taste`; `history` when the world has none) and of the
  item's `description` (the model of issue 23 that reached 0.93 of the oracle);

and CausalBert's cross-fitted AIPW ATT (`causal_llmrec.bert_effects.cross_fit`, `--folds` folds by user, each fold's model fitted
with the same defaults on the other folds' users only) with its 95% interval against the world's true ATT. Fit + rank wall time is
measured for CausalBert with `--threads` torch threads.

    OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 .venv/bin/python bench/bert_text_check.py [--seeds 0 1 2] [--threads 2]

Writes bench/results/bert_text_check.md and .json.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.worlds import text_world, TEXT_COVARIATES
from causal_llmrec.text import text_fields
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit
from causal_llmrec.bert_effects import cross_fit
from causal_llmrec.baselines import LogisticTLearner
from causal_llmrec.evaluate import true_uplift_at_k

K, TEST_FRAC = 10, 0.3


def frozen_features(enc, pairs, uf, itf, user_field):
    "The element-wise product of the user field's and the description's frozen embeddings, per pair (each distinct text encoded once)."
    U = enc.encode(uf[user_field]).cpu().numpy(); V = enc.encode(itf['description']).cpu().numpy()
    X = U[uf.index.get_indexer(pairs.user_id)]*V[itf.index.get_indexer(pairs.item_id)]
    return pd.concat([pairs.reset_index(drop=True), pd.DataFrame(X, columns=[f'e{j}' for j in range(X.shape[1])])], axis=1)


def run_world(a, seed, enc):
    w = text_world(seed=seed, mechanism=a.mechanism, confounding=a.confounding, modification=a.modification)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); uf, itf = text_fields(w.data)
    users = w.data.users.index.to_numpy()
    test_u = np.sort(np.random.default_rng(1000 + seed).choice(users, int(round(TEST_FRAC*len(users))), replace=False))
    logged = pd.concat([w.data.interactions[['user_id', 'item_id', 'exposure', 'outcome']].reset_index(drop=True),
                        w.frame()[TEXT_COVARIATES].reset_index(drop=True)], axis=1).assign(outcome=lambda d: d.outcome.astype(int))
    train = logged[~logged.user_id.isin(test_u)].reset_index(drop=True)
    cat = w.catalogue(test_u).reset_index(drop=True)
    new = cat.item_id.isin(w.new_items).to_numpy()
    scores = {}
    # CausalBert, defaults
    t0 = time.perf_counter()
    m = CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=seed)
    kw = {} if a.encoder_steps is None else dict(encoder_steps=a.encoder_steps)
    res = fit(m, train, uf, itf, progress=False, seed=seed, **kw)
    t_fit = time.perf_counter() - t0
    label = 'CausalBert (defaults)' if a.encoder_steps is None else f'CausalBert (encoder_steps={a.encoder_steps})'
    scores[label] = predict(m, cat, uf, itf, batch_size=8192).tau.to_numpy()
    t_all = time.perf_counter() - t0
    # baselines
    scores['logistic T-learner, tabular'] = LogisticTLearner().fit(train, covariates=TEXT_COVARIATES, seed=seed).score(cat)
    ufield = 'taste' if 'taste' in uf.columns else 'history'
    Xtr = frozen_features(enc, train, uf, itf, ufield)
    cov = TEXT_COVARIATES + [c for c in Xtr.columns if c.startswith('e') and c[1:].isdigit()]
    fz = LogisticTLearner().fit(Xtr, covariates=cov, seed=seed)
    scores['logistic T-learner, frozen embeddings'] = np.concatenate(
        [fz.score(frozen_features(enc, cat.iloc[s:s+20000], uf, itf, ufield)) for s in range(0, len(cat), 20000)])
    scores['oracle (true tau)'] = cat.tau.to_numpy()
    rows = []
    for sl, msk in (('all items', np.ones(len(cat), bool)), ('new items', new)):
        for name, s in scores.items():
            r = true_uplift_at_k(cat.loc[msk, ['user_id', 'item_id']].assign(score=s[msk]), cat.loc[msk, ['user_id', 'item_id', 'tau']], k=K, seed=seed)
            rows.append(dict(seed=seed, slice=sl, method=name, gain=float(r['share_of_oracle'])))
    info = dict(seed=seed, att=w.att, ate=w.ate, n_train_pairs=len(train), n_test_users=len(test_u), n_catalogue_pairs=len(cat),
                fit_s=round(t_fit, 1), fit_rank_s=round(t_all, 1), encoder_steps=res.encoder_steps, head_steps=res.head_steps, note=res.note)
    if a.folds:
        t1 = time.perf_counter()
        cf = cross_fit(lambda k: CausalBert.from_encoder(covariates=TEXT_COVARIATES, seed=seed + k), logged, uf, itf, folds=a.folds,
                       seed=seed, progress=False, **kw)
        e = cf.effects()['ATT', 'AIPW']
        info.update(att_aipw=e.estimate, att_lo=e.ci[0], att_hi=e.ci[1], att_covered=bool(e.ci[0] <= w.att <= e.ci[1]),
                    cross_fit_s=round(time.perf_counter() - t1, 1))
    return rows, info


def _table(df: pd.DataFrame) -> str:
    "A markdown table (numbers to 4 decimals)."
    f = lambda v: f'{v:.4f}' if isinstance(v, float) else str(v)
    return '\n'.join(['| ' + ' | '.join(df.columns) + ' |', '|' + '---|'*len(df.columns)] +
                     ['| ' + ' | '.join(f(v) for v in row) + ' |' for row in df.itertuples(index=False)])


def render(res: dict) -> str:
    df = pd.DataFrame(res['rows']); wd = pd.DataFrame(res['worlds'])
    g = df.groupby(['slice', 'method'], sort=False).gain.agg(['mean', 'std', 'min', 'max', 'count']).reset_index()
    lines = ["# Does CausalBert read the text? (issue 23)", "", f"Command: `{res['command']}`", "",
             f"Machine: {res['machine']}; {res['elapsed_s']:.0f} s in all (commands separated by ' ; ' ran one after another or side by side). World: `text_world(mechanism={res['mechanism']!r}, "
             f"confounding={res['confounding']}, modification={res['modification']})`, 300 users x 40 logged candidates, 1,682 films; "
             f"seeds {res['seeds']}; {int(TEST_FRAC*100)}% of the users held out, each ranking its whole catalogue.", "",
             f"Normalised uplift gain at {K} on the held-out users (0 = random list, 1 = the list by true tau), over the seeds:", "",
             "| slice | method | mean | sd | min | max | worlds |", "|---|---|---|---|---|---|---|"]
    for r in g.itertuples():
        lines.append(f"| {r.slice} | {r.method} | {r.mean:.3f} | {r.std:.3f} | {r.min:.3f} | {r.max:.3f} | {r.count} |")
    pv = df.pivot_table(index='seed', columns=['slice', 'method'], values='gain')
    lines += ["", "Per world (seed), the same gains:", "",
              _table(pd.DataFrame({'seed': pv.index, **{f'{m} ({sl})': pv[(sl, m)].to_numpy() for sl, m in pv.columns if not m.startswith('oracle')}}))]
    cols = [c for c in ('run', 'seed', 'att', 'att_aipw', 'att_lo', 'att_hi', 'att_covered', 'encoder_steps', 'head_steps', 'fit_s', 'fit_rank_s', 'cross_fit_s') if c in wd]
    wd = wd.astype(object).where(wd.notna(), '')
    lines += ["", "Per world: the true ATT, CausalBert's cross-fitted AIPW ATT and 95% interval, training steps and seconds "
              f"(fit + rank: training on the training users' logged pairs and scoring the held-out users' catalogue, {res['threads']} torch thread(s)):", "",
              _table(wd[cols]), "", "What `fit` did (its note), per world:", ""]
    lines += [f"* seed {r.seed}{f' ({r.run})' if 'run' in wd else ''}: {r.note}" for r in wd.itertuples()]
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--folds', type=int, default=5, help='cross-fitting folds for the AIPW ATT (0: skip)')
    ap.add_argument('--encoder-steps', type=int, default=None, help='override the default encoder budget (experiments)')
    ap.add_argument('--mechanism', default='stated'); ap.add_argument('--confounding', type=float, default=1.0)
    ap.add_argument('--modification', type=float, default=1.0)
    ap.add_argument('--out', default='bert_text_check')
    ap.add_argument('--merge', nargs='+', default=None, help='merge these result files (names in bench/results, without .json) into --out')
    a = ap.parse_args()
    if a.merge: return merge(a.merge, a.out)
    torch.set_num_threads(a.threads)
    warnings.simplefilter('ignore')
    t0 = time.perf_counter()
    enc = CausalBert.from_encoder(None)     # the frozen baseline's encoder (the shipped MiniLM)
    rows, worlds = [], []
    for seed in a.seeds:
        r, info = run_world(a, seed, enc)
        rows += r; worlds.append(info)
        print(info, {x['method'][:22] + '/' + x['slice'][:3]: round(x['gain'], 3) for x in r}, flush=True)
        write(a, rows, worlds, t0)     # after every world, so an interrupted run keeps what it measured


def merge(names, out):
    "One result from several runs (e.g. per-seed runs, or the defaults and the frozen encoder): rows and worlds concatenated, every command kept."
    runs = [json.loads((ROOT/'bench'/'results'/f'{n}.json').read_text()) for n in names]
    res = dict(runs[0], command=' ; '.join(r['command'] for r in runs), seeds=sorted({s for r in runs for s in r['seeds']}),
               rows=list({(x['seed'], x['slice'], x['method']): x for r in runs for x in r['rows']}.values()),   # a world's baselines once
               worlds=[dict(w, run=r['command'].split('bert_text_check.py ')[-1]) for r in runs for w in r['worlds']],
               machine=' ; '.join(dict.fromkeys(r['machine'] for r in runs)), elapsed_s=sum(r['elapsed_s'] for r in runs), merged=names)
    p = ROOT/'bench'/'results'
    (p/f'{out}.json').write_text(json.dumps(res, indent=1, default=float)); (p/f'{out}.md').write_text(render(res))
    print(render(res))


def write(a, rows, worlds, t0):
    "Write the results so far to bench/results/<out>.json and .md."
    cmd = (f'OMP_NUM_THREADS={a.threads} MKL_NUM_THREADS={a.threads} .venv/bin/python bench/bert_text_check.py --seeds {" ".join(map(str, a.seeds))} '
           f'--threads {a.threads} --folds {a.folds}' + (f' --encoder-steps {a.encoder_steps}' if a.encoder_steps is not None else '')
           + (f' --mechanism {a.mechanism}' if a.mechanism != 'stated' else '') + (f' --out {a.out}' if a.out != 'bert_text_check' else ''))
    res = dict(command=cmd, seeds=[w['seed'] for w in worlds], k=K, test_frac=TEST_FRAC, mechanism=a.mechanism, confounding=a.confounding,
               modification=a.modification, threads=a.threads, rows=rows, worlds=worlds,
               machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {a.threads}, CPU, load average {os.getloadavg()[0]:.1f} at the end",
               elapsed_s=round(time.perf_counter() - t0, 1))
    out = ROOT/'bench'/'results'
    (out/f'{a.out}.json').write_text(json.dumps(res, indent=1, default=float))
    (out/f'{a.out}.md').write_text(render(res))


if __name__ == '__main__':
    main()

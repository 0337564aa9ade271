"""Does the text of a text world carry the signal? A short check (issue 23).

In `causal_llmrec.worlds.text_world` a latent user taste and item attribute drive exposure and the effect of exposure,
but reach the data only through generated text. On held-out users (a seeded 30% of each world's users) and their whole
catalogue (every unrated film, new films included), this compares the normalised uplift gain at 10
(`causal_llmrec.evaluate.true_uplift_at_k`'s share of the oracle: 0 = a random list, 1 = the true-effect list) of

* (a) a logistic T-learner (`causal_llmrec.baselines.LogisticTLearner`) on the tabular covariates only (`TEXT_COVARIATES`);
* (b) the same learner on frozen MiniLM embeddings (`CausalBert.from_encoder(None).encode`, each distinct text once) of the
  user's text and the item's description, plus their element-wise product. The user's text is the stated `taste`
  (mechanism 'stated'), or the mean embedding of the descriptions of their `n_history` most recent history films
  (mechanism 'history');
* (c) the same learner on both: the tabular covariates and the embedding features;
* the oracle (true tau), whose gain is 1 by definition (its uplift@10 per user is reported).

The learners are fitted on the logged pairs of the training users; each one's L2 penalty C is chosen among 1 (the
default), 0.3, 0.03 and 0.003 by `causal_llmrec.baselines.tune` on those users alone (a fifth of them validates, by the
IPS uplift@10 of their logged pairs), then refitted on all of them. Settings: confounding x modification x mechanism as
in SETTINGS (no text signal; confounding and modification through a stated taste; the same through the history), seeds 0-2 each; 300 users, 40 candidates, topic with 4 levels, 10% new films.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/text_worlds_check.py [--seeds 3] [--threads 1]
    .venv/bin/python bench/text_worlds_check.py --render      # rewrite the .md from the stored .json

Writes bench/results/text_worlds_check.md and .json.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.worlds import text_world, TEXT_COVARIATES
from causal_llmrec.baselines import LogisticTLearner, tune
from causal_llmrec.evaluate import true_uplift_at_k

SETTINGS = [dict(confounding=0.0, modification=0.0, mechanism='stated'),
            dict(confounding=1.0, modification=1.0, mechanism='stated'),
            dict(confounding=1.0, modification=1.0, mechanism='history')]
K, TEST_FRAC, CHUNK = 10, 0.3, 8
C_GRID = [0.003, 0.03, 0.3]          # tried after the default C = 1


def embed_table(model, texts: pd.Series) -> np.ndarray:
    "Embeddings of a Series of texts (each distinct text encoded once), as a float32 array in the Series' order."
    uniq = pd.unique(texts)
    E = model.encode(list(uniq), cache=False).cpu().numpy()
    pos = pd.Series(np.arange(len(uniq)), index=uniq)
    return E[pos[texts.to_numpy()].to_numpy()]


def user_vectors(model, w) -> pd.DataFrame:
    "One vector per user: the taste text's embedding, or the mean embedding of the last n_history history films' descriptions."
    d = w.data
    if 'taste' in d.users:
        return pd.DataFrame(embed_table(model, d.users.taste), index=d.users.index)
    item_E = pd.DataFrame(embed_table(model, d.items.description), index=d.items.index)
    n = w.params['n_history']
    h = d.history.sort_values(['user_id', 'timestamp'], kind='mergesort').groupby('user_id').tail(n)
    return item_E.loc[h.item_id.to_numpy()].set_axis(h.user_id.to_numpy()).groupby(level=0).mean().reindex(d.users.index)


def features(pairs: pd.DataFrame, U: pd.DataFrame, I: pd.DataFrame) -> pd.DataFrame:
    u, i = U.loc[pairs.user_id].to_numpy(), I.loc[pairs.item_id].to_numpy()
    X = np.hstack([u, i, u*i])
    return pd.DataFrame(X, columns=[f'emb_{j}' for j in range(X.shape[1])], index=pairs.index)


def run_world(model, setting, seed):
    t0 = time.perf_counter()
    w = text_world(seed=seed, **setting)
    build_s = time.perf_counter() - t0
    users = w.data.users.index.to_numpy()
    test_u = np.sort(np.random.default_rng(1000 + seed).choice(users, int(round(TEST_FRAC*len(users))), replace=False))
    it = w.data.interactions
    train = pd.concat([it, w.frame()[TEXT_COVARIATES]], axis=1)
    train = train[~train.user_id.isin(test_u)].reset_index(drop=True)
    cat = w.catalogue(test_u)
    eff = cat[['user_id', 'item_id', 'tau']]
    new = cat.item_id.isin(w.new_items).to_numpy()
    # the learners: logistic T-learners whose C is chosen by `tune` on the training users alone (a seeded fifth of them
    # validates: IPS uplift@10 of the logged pairs with the logged propensities), then refitted on every training user
    U = user_vectors(model, w)
    I = pd.DataFrame(embed_table(model, w.data.items.description), index=w.data.items.index)
    embed_s = time.perf_counter() - t0 - build_s
    Xtr = pd.concat([train, features(train, U, I)], axis=1)
    emb = [c for c in Xtr.columns if c.startswith('emb_')]
    val_u = np.random.default_rng(2000 + seed).choice(np.unique(train.user_id), int(round(0.2*train.user_id.nunique())), replace=False)
    is_val = Xtr.user_id.isin(val_u)
    fitted, chosen = {}, {}
    for name, cols in (('tab', TEXT_COVARIATES), ('txt', emb), ('both', emb + TEXT_COVARIATES)):
        r = tune(LogisticTLearner, Xtr[~is_val], Xtr[is_val], budget=len(C_GRID) + 1, seed=seed, covariates=cols, grid={'C': C_GRID})
        chosen[name] = r.best_params.get('C', 1.0)
        fitted[name] = LogisticTLearner(C=chosen[name], covariates=cols, random_state=seed).fit(Xtr)
    scores = {k: np.empty(len(cat)) for k in fitted}
    for k in range(0, len(test_u), CHUNK):
        rows = np.flatnonzero(cat.user_id.isin(test_u[k:k + CHUNK]).to_numpy())
        part = cat.iloc[rows][['user_id', 'item_id'] + TEXT_COVARIATES].reset_index(drop=True)
        X = pd.concat([part, features(part, U, I)], axis=1)
        for name, m in fitted.items(): scores[name][rows] = m.predict(X)
    s_tab, s_txt, s_both = scores['tab'], scores['txt'], scores['both']
    out = []
    for sl, m in (('all items', np.ones(len(cat), bool)), ('new items', new)):
        for name, s in (('(a) tabular T-learner', s_tab), ('(b) text-embedding T-learner', s_txt),
                        ('(c) tabular + text T-learner', s_both), ('oracle (true tau)', cat.tau.to_numpy())):
            sc = cat.loc[m, ['user_id', 'item_id']].assign(score=s[m])
            r = true_uplift_at_k(sc, eff[m], k=K, seed=seed)
            out.append(dict(**setting, seed=seed, slice=sl, method=name, gain=float(r['share_of_oracle']), uplift=float(r['model']),
                            oracle_uplift=float(r['oracle']), random_uplift=float(r['random'])))
    info = dict(**setting, seed=seed, att=w.att, naive=w.naive, n_train_pairs=len(train), n_test_users=len(test_u),
                n_catalogue_pairs=len(cat), C_tabular=chosen['tab'], C_text=chosen['txt'], C_both=chosen['both'], embed_s=round(embed_s, 1), world_s=round(time.perf_counter() - t0, 1))
    return out, info


def render(res: dict) -> str:
    df = pd.DataFrame(res['rows'])
    key = ['mechanism', 'confounding', 'modification']
    g = df.groupby(key + ['slice', 'method'], sort=False).gain.agg(['mean', 'std', 'count']).reset_index()
    lines = ["# Does the text of a text world carry the signal?", "",
             f"Command: `{res['command']}`", "",
             f"Machine: {res['machine']}; {res['elapsed_s']:.0f} s in all"
             + (f" (load average {res['load_average']} at the end)" if 'load_average' in res else '')
             + (f" ({res['load_note']})" if 'load_note' in res else '') + f". Seeds {res['seeds']} per setting; "
             f"300 users per world, {int(TEST_FRAC*100)}% held out; each held-out user's whole catalogue (every unrated film, "
             "new films included) is ranked.", "",
             f"Normalised uplift gain at {K} (`true_uplift_at_k`'s share of the oracle; 0 = random list, 1 = the list by true tau), "
             "mean and sd over the seeds:", "",
             "| mechanism | confounding | modification | slice | method | gain (mean) | sd | worlds |", "|---|---|---|---|---|---|---|---|"]
    for r in g.itertuples():
        lines.append(f"| {r.mechanism} | {r.confounding:g} | {r.modification:g} | {r.slice} | {r.method} | {r.mean:.3f} | {r.std:.3f} | {r.count} |")
    o = df[df.method == 'oracle (true tau)'].groupby(key + ['slice'], sort=False)[['oracle_uplift', 'random_uplift']].mean().reset_index()
    lines += ["", "True uplift@10 per user of the oracle and of a random list (mean over seeds):", "",
              "| mechanism | confounding | modification | slice | oracle | random |", "|---|---|---|---|---|---|"]
    for r in o.itertuples():
        lines.append(f"| {r.mechanism} | {r.confounding:g} | {r.modification:g} | {r.slice} | {r.oracle_uplift:.3f} | {r.random_uplift:.3f} |")
    w = pd.DataFrame(res['worlds'])
    fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
    lines += ["", "Worlds (truth, sizes, the chosen C of each learner, seconds):", "",
              "| " + " | ".join(w.columns) + " |", "|" + "---|"*len(w.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in w.itertuples(index=False)]
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--render', action='store_true', help='rewrite the .md from the stored .json')
    a = ap.parse_args()
    out = ROOT/'bench'/'results'
    if a.render:
        (out/'text_worlds_check.md').write_text(render(json.loads((out/'text_worlds_check.json').read_text()))); return
    import torch
    torch.set_num_threads(a.threads)
    from causal_llmrec.bert import CausalBert
    t0 = time.perf_counter()
    warnings.simplefilter('ignore')
    model = CausalBert.from_encoder(None)
    rows, worlds = [], []
    for st in SETTINGS:
        for seed in range(a.seeds):
            r, info = run_world(model, st, seed)
            rows += r; worlds.append(info)
            print(info, {x['method'][:3] + '/' + x['slice'][:3]: round(x['gain'], 3) for x in r}, flush=True)
    cmd = 'OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/text_worlds_check.py' + \
          (f' --seeds {a.seeds}' if a.seeds != 3 else '') + (f' --threads {a.threads}' if a.threads != 1 else '')
    res = dict(command=cmd, seeds=list(range(a.seeds)), k=K, test_frac=TEST_FRAC, settings=SETTINGS, rows=rows, worlds=worlds,
               machine=f"{platform.processor() or platform.machine()}, torch threads {a.threads}, CPU",
               elapsed_s=round(time.perf_counter() - t0, 1), load_average=[round(x, 1) for x in os.getloadavg()])
    (out/'text_worlds_check.json').write_text(json.dumps(res, indent=1))
    (out/'text_worlds_check.md').write_text(render(res))
    print(render(res))


if __name__ == '__main__':
    main()

"""Top-N ranking on MovieLens-100K, leave-one-out by time.

Each user's most recent rating (ties broken by item id) is the test item; every earlier rating is training data and
counts as an implicit positive. Two protocols: full ranking over all items the user has not rated in training, and the
sampled protocol of He et al. (2017, NCF): the test item among 99 random items the user never rated.
Models: popularity; implicit matrix factorisation (weighted ALS on positives and 4 sampled negatives per positive);
a non-causal BERT recommender (`causal_llmrec.bert.CausalBert(objective='click')` on the shipped MiniLM, frozen
encoder, heads trained on the same positives/negatives, user texts built from the training history only); optionally
CausalBert (objective 'causal') trained on the logs of a semi-synthetic world (`data.simulate`) built on the same
training history, ranking by its predicted outcome under exposure (Q1) and by uplift.
Writes bench/results/evaluate_ranking.md and .json.

    .venv/bin/python bench/evaluate_ranking.py [--no-bert] [--causal] [--seed 0]
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from evaluate_common import md_table, write_published
from causal_llmrec.data import load_movielens, RecData
from causal_llmrec.evaluate import top_k, ranking_metrics
from causal_llmrec.schnabel import MatrixFactorization

OUT = Path(__file__).parent / 'results'
K = 10


def split(ml):
    r = ml.interactions.sort_values(['user_id', 'timestamp', 'item_id'], kind='mergesort')
    test = r.groupby('user_id').tail(1)
    return r.drop(test.index), test


def sampled_candidates(ml, train, test, n_neg=99, seed=0):
    rng = np.random.default_rng(seed); items = ml.items.index.values
    rated = pd.concat([train, test]).groupby('user_id').item_id.agg(set)
    rows = []
    for u, i in zip(test.user_id, test.item_id):
        pool = np.setdiff1d(items, np.fromiter(rated[u], int))
        rows += [(u, i)] + [(u, j) for j in rng.choice(pool, n_neg, replace=False)]
    return pd.DataFrame(rows, columns=['user_id', 'item_id'])


def negatives(ml, train, ratio=4, seed=0):
    "ratio unrated items per training positive, sampled uniformly per user."
    rng = np.random.default_rng(seed); items = ml.items.index.values; rated = train.groupby('user_id').item_id.agg(set)
    rows = []
    for u, s in rated.items():
        pool = np.setdiff1d(items, np.fromiter(s, int))
        rows.append(pd.DataFrame(dict(user_id=u, item_id=rng.choice(pool, min(len(pool), ratio * len(s)), replace=False))))
    return pd.concat(rows, ignore_index=True)


def evaluate(name, score_all, train, test, cand, ml, pop, rows, note=''):
    "score_all: DataFrame user_id, item_id, score covering at least the candidates (full: all pairs)."
    if score_all is not None and len(score_all) >= ml.n_users * ml.n_items:
        recs = top_k(score_all, K, exclude=train[['user_id', 'item_id']], n_items=ml.n_items)
        full = ranking_metrics(recs, test, k=K, n_items=ml.n_items, popularity=pop).to_frame()
        rows.append(dict(model=name, protocol='full ranking', **{m: full.loc[m, 'value'] for m in full.index},
                         hr_ci=f"[{full.loc[f'hr@{K}', 'ci_low']:.4f}, {full.loc[f'hr@{K}', 'ci_high']:.4f}]", note=note))
    sc = cand.merge(score_all, on=['user_id', 'item_id'], how='left')
    assert sc.score.notna().all(), name
    recs = top_k(sc, K, n_items=100)
    samp = ranking_metrics(recs, test, k=K, popularity=pop).to_frame()
    rows.append(dict(model=name, protocol='1 + 99 sampled', **{m: samp.loc[m, 'value'] for m in samp.index},
                     hr_ci=f"[{samp.loc[f'hr@{K}', 'ci_low']:.4f}, {samp.loc[f'hr@{K}', 'ci_high']:.4f}]", note=note))


def bert_scores(ml, train, neg, pairs_to_score, seed, objective='click', world=None):
    import torch
    from causal_llmrec.text import texts
    from causal_llmrec.bert import CausalBert, predict
    from causal_llmrec.bert_train import fit
    torch.set_num_threads(2)
    hist = RecData(ml.users, ml.items, train[['user_id', 'item_id', 'timestamp']], history=train[['user_id', 'item_id', 'timestamp']], name='ml-train')
    ut, it = texts(hist)
    if objective == 'click':
        pairs = pd.concat([train[['user_id', 'item_id']].assign(outcome=1), neg.assign(outcome=0)], ignore_index=True)
        pairs['exposure'] = pairs.outcome  # ignored by objective='click' (only the outcome head is trained); required by check_pairs
    else:
        pairs = world.data.interactions[['user_id', 'item_id', 'exposure', 'outcome', 'propensity']].copy()
        pairs['outcome'] = pairs.outcome.astype(int)
    model = CausalBert.from_encoder(None, seed=seed, objective=objective)
    t = time.time()
    res = fit(model, pairs, ut, it, strategy='cached', encoder_steps=0, head_epochs=10, head_batch_size=1024, seed=seed, progress=False)
    t_fit = time.time() - t; t = time.time()
    pred = predict(model, pairs_to_score, ut, it, batch_size=8192)
    return pred, dict(fit_s=round(t_fit, 1), predict_s=round(time.time() - t, 1), n_train_pairs=len(pairs))


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-bert', action='store_true'); ap.add_argument('--causal', action='store_true')
    ap.add_argument('--no-mf', action='store_true', help='skip popularity and MF')
    ap.add_argument('--append', action='store_true', help='keep the rows of models not rerun from the existing results file')
    args = ap.parse_args()
    cmd = '.venv/bin/python bench/evaluate_ranking.py ' + ' '.join(sys.argv[1:])
    t0 = time.time(); timings = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ml = load_movielens()
    train, test = split(ml)
    pop = train.item_id.value_counts().reindex(ml.items.index, fill_value=0)
    cand = sampled_candidates(ml, train, test, seed=args.seed)
    allp = pd.DataFrame({'user_id': np.repeat(ml.users.index.values, ml.n_items), 'item_id': np.tile(ml.items.index.values, ml.n_users)})
    rows, prev = [], None
    if args.append and (OUT / 'evaluate_ranking.json').exists():
        prev = json.loads((OUT / 'evaluate_ranking.json').read_text())
    if not args.no_mf:
      evaluate('popularity', allp.assign(score=np.tile(pop.values.astype(float), ml.n_users)), train, test, cand, ml, pop, rows)
    neg = negatives(ml, train, seed=args.seed)
    uix = pd.Index(ml.users.index); iix = pd.Index(ml.items.index)
    t = time.time()
    for nf, l2 in (() if args.no_mf else ((32, 0.05), (32, 0.2), (64, 0.2))):
        d = pd.concat([train[['user_id', 'item_id']].assign(y=1.0), neg.assign(y=0.0)])
        mf = MatrixFactorization(n_factors=nf, l2=l2, n_iter=15, seed=args.seed).fit(
            uix.get_indexer(d.user_id), iix.get_indexer(d.item_id), d.y.values, n_users=ml.n_users, n_items=ml.n_items)
        S = mf.predict_matrix()
        sc = allp.assign(score=S.ravel())
        tmp = []; evaluate(f'MF (implicit ALS, {nf} factors, l2={l2})', sc, train, test, cand, ml, pop, tmp)
        rows += tmp
    if not args.no_mf: timings['mf_s'] = round(time.time() - t, 1)
    info = {}
    if not args.no_bert:
        t = time.time()
        pred, info['click_bert'] = bert_scores(ml, train, neg, allp, args.seed, 'click')
        evaluate('BERT recommender (MiniLM frozen, click head)', pred[['user_id', 'item_id']].assign(score=pred.q1.values),
                 train, test, cand, ml, pop, rows, note='non-causal')
        timings['click_bert_s'] = round(time.time() - t, 1)
    if args.causal:
        from causal_llmrec.data import simulate
        t = time.time()
        base = RecData(ml.users, ml.items, train[['user_id', 'item_id', 'timestamp']], history=train[['user_id', 'item_id', 'timestamp']], name='ml-train')
        world = simulate(base, n_candidates=40, confounding=1.0, seed=args.seed)
        pred, info['causal_bert'] = bert_scores(ml, train, None, allp, args.seed, 'causal', world)
        for by in ('q1', 'tau'):
            evaluate(f'CausalBert (MiniLM frozen, trained on simulated exposure logs) by {"Q1" if by == "q1" else "uplift"}',
                     pred[['user_id', 'item_id']].assign(score=pred[by].values), train, test, cand, ml, pop, rows,
                     note='trained on semi-synthetic exposures of the same users')
        timings['causal_bert_s'] = round(time.time() - t, 1)
    df = pd.DataFrame(rows); secs = time.time() - t0
    if prev is not None:
        old = pd.DataFrame(prev['rows']); old = old[~old.model.isin(df.model)]
        df = pd.concat([old, df], ignore_index=True)
        cmd = prev['command'] + ' ; then ' + cmd; timings = {**prev.get('timings', {}), **timings}; info = {**prev.get('bert', {}), **info}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'evaluate_ranking.json').write_text(json.dumps(dict(command=cmd, seconds=round(secs, 1), timings=timings, bert=info,
                                                              rows=df.to_dict('records')), indent=1, default=float))
    cols = ['model', 'protocol', f'hr@{K}', 'hr_ci', f'ndcg@{K}', f'mrr@{K}', 'coverage', 'gini', 'popularity_lift', 'note']
    lines = ["# Top-10 ranking on MovieLens-100K (leave-one-out by time)", "",
             f"Command: `{cmd}` ({secs:.0f} s, 2 CPU cores; timings {timings}; BERT runs {info})", "",
             f"{len(test)} users; test item = each user's last rating (ties by item id); {len(train)} training ratings, all "
             "treated as implicit positives; training items are excluded from the lists. 'full ranking': all unrated items "
             "(1682 minus the user's training items); '1 + 99 sampled': the test item and 99 items the user never rated "
             f"(seed {args.seed}). HR@10 CI: normal approximation over users. Coverage, Gini and popularity lift (mean "
             "training popularity of recommended items over the catalogue mean) describe the lists.", "",
             md_table(df[cols], index=False), ""]
    for p in ('full ranking', '1 + 99 sampled'):
        sub = df[df.protocol == p].set_index('model')[f'hr@{K}']
        lines.append(f"- {p}: best HR@10 {sub.max():.4f} ({sub.idxmax()})")
    (OUT / 'evaluate_ranking.md').write_text("\n".join(lines) + "\n")
    write_published(OUT / 'evaluate_ranking.md', 'ranking')
    print("\n".join(lines))


if __name__ == '__main__':
    main()

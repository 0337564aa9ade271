"""The MovieLens-100K semi-synthetic protocol of Schnabel et al. (2016), "Recommendations as Treatments".

1. Estimation: naive, IPS and SNIPS estimates of MAE, MSE, DCG@50 and CG@50 of the five prediction matrices
   (REC_ONES, REC_FOURS, ROTATE, SKEWED, COARSENED), over --reps fresh MNAR observation masks (alpha=0.25, 5% observed).
2. Debiased learning: MF trained on the MNAR ratings naively vs with IPS weights (true propensities), scored on all
   entries (the uniform, unbiased test), over --learn-reps masks; with --causalbert-masks N, CausalBert (shipped MiniLM
   encoder, --encoder-steps of encoder fine-tuning, then heads on cached embeddings) trained naively and with
   inverse-propensity weights on the first N of those masks: exposure = observed, outcome = (rating - 1) / 4, predicted
   rating = 1 + 4 * Q1 clipped to [1, 5]. User texts show only the items observed in the mask (what MF sees).
Writes bench/results/evaluate_schnabel.md and .json.

    .venv/bin/python bench/evaluate_schnabel.py [--reps 50] [--learn-reps 5] [--causalbert-masks 1] [--seed 0]
    .venv/bin/python bench/evaluate_schnabel.py --append --causalbert-masks 1   # add CausalBert rows to the existing results
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from evaluate_common import md_table, write_published
from causal_llmrec.data import load_movielens, RecData
from causal_llmrec.schnabel import (schnabel_true_ratings, schnabel_estimation_table, schnabel_learning,
                                    schnabel_propensities, SCHNABEL_MARGINAL)

OUT = Path(__file__).parent / 'results'
BERT_RUNS = []  # one dict per CausalBert fit: name, mask, timings, training summary


def causalbert_learner(ml, user_ids, item_ids, Pmat, ipw, encoder_steps=20, head_epochs=10, unobserved_ratio=1.0):
    """A `schnabel_learning` extra learner: CausalBert on one observation mask.
    Pairs: every observed entry (exposure 1, outcome (r-1)/4, true propensity) and `unobserved_ratio` times as many
    unobserved entries drawn uniformly (exposure 0, outcome 0 -- their rating is unknown; it only trains the Q0 head,
    which the predicted rating does not use). ipw=True weights the outcome loss by 1/propensity (true propensities)."""
    import torch
    from causal_llmrec.text import user_texts, item_texts
    from causal_llmrec.bert import CausalBert, predict
    from causal_llmrec.bert_train import fit
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '1')))

    def learn(u, i, r, p, nU, nI, seed):
        t0 = time.time(); rng = np.random.default_rng(seed)
        obs = pd.DataFrame(dict(user_id=user_ids[u], item_id=item_ids[i], exposure=1, outcome=(r - 1) / 4, propensity=p))
        O = np.zeros((nU, nI), bool); O[u, i] = True
        n_un = int(unobserved_ratio * len(obs)); cand = np.flatnonzero(~O.ravel())
        pick = rng.choice(cand, n_un, replace=False); uu, ii = np.unravel_index(pick, O.shape)
        un = pd.DataFrame(dict(user_id=user_ids[uu], item_id=item_ids[ii], exposure=0, outcome=0.0, propensity=Pmat[uu, ii]))
        pairs = pd.concat([obs, un], ignore_index=True)
        hist = obs[['user_id', 'item_id']]
        rd = RecData(ml.users, ml.items, hist, history=hist, name='schnabel-mask')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ut = user_texts(rd); it = item_texts(rd, popularity=True)
        model = CausalBert.from_encoder(None, seed=seed, objective='causal')
        t1 = time.time()
        res = fit(model, pairs, ut, it, strategy='cached', encoder_steps=encoder_steps, head_epochs=head_epochs,
                  head_batch_size=1024, ipw=ipw, outcome_type='unit', seed=seed, progress=False)
        t2 = time.time()
        allp = pd.DataFrame(dict(user_id=np.repeat(user_ids, nI), item_id=np.tile(item_ids, nU)))
        pred = predict(model, allp, ut, it, batch_size=8192)
        R = np.clip(1 + 4 * pred.q1.to_numpy().reshape(nU, nI), 1, 5)
        BERT_RUNS.append(dict(ipw=ipw, seed=int(seed), n_pairs=len(pairs), n_observed=len(obs), encoder_steps=encoder_steps,
                              head_epochs=head_epochs, texts_s=round(t1 - t0, 1), fit_s=round(t2 - t1, 1),
                              predict_s=round(time.time() - t2, 1), train=res.summary().astype(str).to_dict()))
        print(f"CausalBert ipw={ipw} seed={seed}: {len(pairs)} pairs, fit {t2 - t1:.0f} s, predict {time.time() - t2:.0f} s", flush=True)
        return R
    return learn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=50); ap.add_argument('--learn-reps', type=int, default=5)
    ap.add_argument('--alpha', type=float, default=0.25); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--causalbert-masks', type=int, default=0, help='train CausalBert (naive and IPS) on the first N learning masks')
    ap.add_argument('--encoder-steps', type=int, default=20, help='CausalBert encoder fine-tuning steps (cached strategy)')
    ap.add_argument('--head-epochs', type=int, default=10, help='CausalBert head epochs on cached embeddings')
    ap.add_argument('--append', action='store_true', help='keep the estimation table and the MF learning rows of the existing '
                    'results file; run only the first --causalbert-masks masks (MF and CausalBert on the same masks)')
    args = ap.parse_args()
    cmd = '.venv/bin/python bench/evaluate_schnabel.py ' + ' '.join(sys.argv[1:])
    prev = None
    if args.append:
        if not args.causalbert_masks: ap.error('--append needs --causalbert-masks N (N >= 1)')
        prev = json.loads((OUT / 'evaluate_schnabel.json').read_text())
        if prev.get('alpha', args.alpha) != args.alpha or prev.get('seed', args.seed) != args.seed:
            ap.error(f"--append: the results file has alpha={prev.get('alpha')}, seed={prev.get('seed')}")
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ml = load_movielens()
    Ydf = schnabel_true_ratings(ml.interactions.rename(columns={'outcome': 'rating'}), seed=args.seed); Y = Ydf.values
    P = schnabel_propensities(Y, args.alpha, 0.05)
    world = dict(shares={int(s): float((Y == s).mean()) for s in range(1, 6)}, mean_propensity=float(P.mean()),
                 propensity_by_rating={int(s): float(P[Y == s][0]) for s in range(1, 6)},
                 observed_share_by_rating={int(s): float((P * (Y == s)).sum() / P.sum()) for s in range(1, 6)})
    t1 = time.time()
    if prev is None:
        est = schnabel_estimation_table(Y, n_reps=args.reps, alpha=args.alpha, seed=args.seed, progress=False)
    else:
        est = pd.DataFrame(prev['estimation']).set_index(['metric', 'prediction']); args.reps = prev.get('reps', args.reps)
    t2 = time.time()
    extra = None
    if args.causalbert_masks:
        uids = Ydf.index.values; iids = Ydf.columns.values  # the rows / columns of Y, as user_id / item_id
        extra = {f'CausalBert {nm} (MiniLM, {args.encoder_steps} encoder steps, heads {args.head_epochs} epochs)':
                 causalbert_learner(ml, uids, iids, P, ipw, args.encoder_steps, args.head_epochs) for nm, ipw in (('naive', False), ('IPS', True))}
    n_learn = args.causalbert_masks if prev is not None else args.learn_reps
    learn = schnabel_learning(Y, alpha=args.alpha, n_reps=n_learn, seed=args.seed, progress=False,
                              extra=extra, extra_reps=args.causalbert_masks)
    t3 = time.time()
    seconds = dict(completion=round(t1 - t0, 1), estimation=round(t2 - t1, 1), learning=round(t3 - t2, 1))
    paired = learn if args.causalbert_masks else None   # MF and CausalBert on the same first masks
    if prev is not None:   # the MF rows over all masks come from the previous run; CausalBert rows from this one
        old = pd.DataFrame(prev['learning']).set_index('learner')
        old = old[~old.index.str.startswith('CausalBert')]
        if 'n_masks' not in old: old['n_masks'] = prev.get('learn_reps', 5)
        learn = pd.concat([old, learn[learn.index.str.startswith('CausalBert')]])
        cmd = prev['command'].split(' ; then ')[0] + ' ; then ' + cmd
        seconds = {**{k: v for k, v in prev['seconds'].items() if not k.startswith('append')},
                   **{f'append_{k}': v for k, v in seconds.items() if k != 'estimation'}}
        args.learn_reps = prev.get('learn_reps', 5)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'evaluate_schnabel.json').write_text(json.dumps(dict(
        command=cmd, seconds=seconds, alpha=args.alpha, seed=args.seed, reps=args.reps, learn_reps=args.learn_reps,
        world=world, marginal=list(SCHNABEL_MARGINAL), estimation=est.reset_index().to_dict('records'),
        learning=learn.reset_index().to_dict('records'),
        learning_paired=None if paired is None else paired.reset_index().to_dict('records'),
        causalbert_runs=BERT_RUNS), indent=1, default=float))
    show = est.copy()
    for e in ('naive', 'IPS', 'SNIPS'):
        show[e] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(est[f'{e}_abs_err'], est[f'{e}_abs_err_sd'])]
        show[f'{e} rel'] = est[f'{e}_rel_err']
    show = show[['true', 'naive', 'IPS', 'SNIPS', 'naive rel', 'IPS rel', 'SNIPS rel']]
    obs = {k: round(v, 3) for k, v in world['observed_share_by_rating'].items()}
    lines = ["# Schnabel et al. (2016) semi-synthetic MovieLens-100K protocol", "",
             f"Command: `{cmd}` (seconds {seconds}; 2 CPU cores, load average {os.getloadavg()[0]:.1f} at the end)", "",
             "World: ML-100K completed by rank-16 ALS matrix factorisation (943 x 1682), mapped to 1-5 stars with shares "
             f"{ {k: round(v, 3) for k, v in world['shares'].items()} }; propensity k*alpha^(4-r) (k for r >= 4), alpha={args.alpha}, "
             f"mean propensity {world['mean_propensity']:.4f}. Share of *observed* ratings by star (expected): {obs}.", "",
             f"## Estimation error over {args.reps} observation masks", "",
             "Absolute error |estimate - true| (mean ± sd over masks) of each estimator, and the mean relative error. "
             "MAE and MSE are per entry; DCG@50 and CG@50 are per user (the sum over a user's top 50 by the prediction, "
             "gain = true rating, discount log2(1+rank)).", "",
             md_table(show), "",
             f"## Debiased learning: rating prediction on all entries (uniform test), {args.learn_reps} masks", "",
             "Each MF learner chooses its L2 penalty from (0.02, 0.1, 0.5) on a 20% validation split of the observed "
             "ratings scored by its own estimator (naive mean or IPS-weighted mean); predictions clipped to [1, 5]. "
             "`n_masks`: observation masks the row averages over (CausalBert is trained on the first masks only; the "
             "paired table below compares all learners on exactly those masks).", "",
             md_table(learn), ""]
    if paired is not None:
        lines += [f"### Paired: every learner on the same first {args.causalbert_masks} mask(s)", "", md_table(paired), ""]
    lines += bert_lines(BERT_RUNS, args)
    (OUT / 'evaluate_schnabel.md').write_text("\n".join(lines))
    write_published(OUT / 'evaluate_schnabel.md', 'schnabel')
    print("\n".join(lines))


def bert_lines(runs, args):
    "Markdown lines describing the CausalBert runs (budget and timings)."
    if not runs: return []
    out = ["CausalBert: shipped MiniLM-L6 encoder, `fit(strategy='cached', encoder_steps="
           f"{args.encoder_steps}, head_epochs={args.head_epochs})` on CPU (1 torch thread), pairs = all observed entries "
           "(exposure 1, outcome (rating-1)/4) + as many uniformly drawn unobserved entries (exposure 0, outcome 0, only "
           "for the Q0 head); 'IPS' = `ipw=True` with the true propensities; predicted rating = 1 + 4 Q1 on every "
           "entry, clipped to [1, 5]. User texts list only the mask's observed items; item texts carry the mask's counts.", "",
           "| run | mask seed | pairs | texts s | fit s | predict s | best val loss |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        out.append(f"| {'IPS' if r['ipw'] else 'naive'} | {r['seed']} | {r['n_pairs']} | {r['texts_s']} | {r['fit_s']} | "
                   f"{r['predict_s']} | {float(r['train']['best_val_loss']):.4f} |")
    return out + [""]


if __name__ == '__main__':
    main()

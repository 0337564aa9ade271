"""Throughput and quality of CausalBert against a plain Hugging Face cross-encoder, on the same data.

Data: the semi-synthetic MovieLens world (causal_llmrec.data.simulate, gamma=1, seed 0: 37,720 logged pairs of
943 users x 1,682 items), texts from causal_llmrec.text; 10% of pairs held out (seeded).

Measured (same encoder, the shipped MiniLM-L6, batch 32 pairs, fp32 on CPU / bf16 autocast on CUDA):
  1. cross-encoder baseline: AutoModelForSequenceClassification (1 logit, BCE on the outcome) on the concatenated
     user + item text, trained for --budget-s seconds: training pairs/s, inference pairs/s, held-out AUC;
  2. CausalBert 'full' (encoder in every step, user-grouped batches) on as many training pairs as the cross-encoder
     saw (or --full-pairs): training pairs/s, held-out AUC of P(click) = g Q1 + (1-g) Q0;
  3. CausalBert 'cached' (the CPU path: --encoder-steps fine-tuning steps, every text encoded once, heads for
     --head-epochs epochs on cached embeddings): wall time, pairs/s, held-out AUC of P(click), and inference
     pairs/s of `predict` on the held-out pairs from a cold cache (encoding included);
  4. ranking all MovieLens-100K items for all users (943 x 1,682 = 1,586,126 pairs, seen items excluded) with
     CausalBert from 3, encoding included; the cross-encoder's time for the same is extrapolated from its
     measured inference pairs/s (marked as such).
  On CUDA (--device cuda) it also times one full epoch of the 'full' strategy over --epoch-pairs pairs.

    .venv/bin/python bench/bert_bench.py [--device cpu] [--threads 2] [--budget-s 150]
    smoke run: .venv/bin/python bench/bert_bench.py --budget-s 20 --encoder-steps 5 --head-epochs 3 --eval-pairs 300

The machine load (os.getloadavg) at the start and the end is written next to the figures: timings from a loaded
machine are not comparable.

Writes bench/results/bert_bench_<device>.md and .json.
"""
import argparse, json, math, os, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.data import simulate, load_movielens
from causal_llmrec.text import texts
from causal_llmrec.bert import CausalBert, predict, default_encoder_path, pick_device, _autocast, _resolve_precision
from causal_llmrec.bert_train import fit
from causal_llmrec.rank import rank
from sklearn.metrics import roc_auc_score


def cross_encoder(train, test, ut, it, dev, prec, budget_s, batch=32, max_length=192, seed=0, lr=5e-5):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()      # no load report for the new (randomly initialized) classifier layer
    src = str(default_encoder_path())
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, local_files_only=True).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    def enc(rows):
        e = tok(list(ut.loc[rows.user_id]), list(it.loc[rows.item_id]), truncation=True, max_length=max_length,
                padding=True, return_tensors='pt')
        return {k: v.to(dev) for k, v in e.items()}
    model.train(); n = 0; steps = 0; t_start = None; s = 0; tokens = 0
    t_begin = time.perf_counter()
    while True:
        idx = order[s:s+batch]; s = (s + batch) % len(order)
        rows = train.iloc[idx]
        e = enc(rows); y = torch.as_tensor(rows.outcome.to_numpy(np.float32), device=dev)
        with _autocast(dev, prec): logit = model(**e).logits.squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logit.float(), y)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
        if dev.type == 'cuda': torch.cuda.synchronize()
        steps += 1
        if steps == 2: t_start = time.perf_counter()         # two warm-up steps are not timed
        elif steps > 2: n += len(rows); tokens += int(e['attention_mask'].sum())
        if time.perf_counter() - t_begin > budget_s and steps > 4: break
    train_s = time.perf_counter() - t_start
    model.eval(); preds = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(test), 64):
            rows = test.iloc[s:s+64]
            with _autocast(dev, prec): preds.append(torch.sigmoid(model(**enc(rows)).logits.squeeze(-1).float()).cpu())
    if dev.type == 'cuda': torch.cuda.synchronize()
    inf_s = time.perf_counter() - t0
    p = torch.cat(preds).numpy()
    return dict(train_steps=steps, train_pairs_timed=n, train_seconds_timed=train_s, train_pairs_per_s=n/train_s,
                mean_tokens_per_pair=tokens/max(n, 1), infer_pairs=len(test), infer_pairs_per_s=len(test)/inf_s,
                heldout_auc=float(roc_auc_score(test.outcome, p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cpu'); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--budget-s', type=float, default=150.); ap.add_argument('--eval-pairs', type=int, default=1000)
    ap.add_argument('--encoder-steps', type=int, default=40); ap.add_argument('--head-epochs', type=int, default=30)
    ap.add_argument('--full-pairs', type=int, default=0, help="pairs for the 'full' strategy run (0: as many as the cross-encoder saw)")
    ap.add_argument('--epoch-pairs', type=int, default=100000, help='CUDA only: pairs in the timed full epoch')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter('ignore')
    dev = pick_device(args.device); prec = _resolve_precision('auto', dev)
    cmd = '.venv/bin/python bench/bert_bench.py ' + ' '.join(sys.argv[1:])
    T0 = time.perf_counter()
    def log(*a): print(f'[{time.perf_counter()-T0:6.0f}s, load {os.getloadavg()[0]:.1f}]', *a, flush=True)
    out = dict(command=cmd, device=str(dev), precision=prec, threads=args.threads, cpu_count=os.cpu_count(),
               gpu=torch.cuda.get_device_name(0) if dev.type == 'cuda' else None,
               loadavg_start=[round(x, 2) for x in os.getloadavg()])
    ml = load_movielens()
    world = simulate(ml, confounding=1.0, seed=args.seed)
    inter = world.data.interactions.reset_index(drop=True)
    pairs = inter[['user_id', 'item_id', 'exposure', 'outcome']].astype({'outcome': int})
    t0 = time.perf_counter(); ut, it = texts(world.data); out['text_seconds'] = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed); perm = rng.permutation(len(pairs))
    n_test = int(0.1*len(pairs)); test_all = pairs.iloc[np.sort(perm[:n_test])]; train = pairs.iloc[np.sort(perm[n_test:])]
    test = test_all.sample(n=min(args.eval_pairs, len(test_all)), random_state=args.seed)
    out['data'] = dict(pairs=len(pairs), train=len(train), heldout=len(test_all), eval_pairs=len(test),
                       users=int(pairs.user_id.nunique()), items=int(pairs.item_id.nunique()))
    log('data', out['data'])

    log('1. cross-encoder ...')
    out['cross_encoder'] = cross_encoder(train, test, ut, it, dev, prec, args.budget_s, seed=args.seed)
    log(out['cross_encoder'])

    log("2. CausalBert 'full' ...")
    full_pairs = args.full_pairs or out['cross_encoder']['train_pairs_timed'] + 2*32   # the pairs the cross-encoder saw
    m = CausalBert.from_encoder(max_length=128, seed=args.seed)
    t0 = time.perf_counter()
    r = fit(m, train, ut, it, strategy='full', epochs=1, batch_size=32, max_pairs_per_epoch=full_pairs, val_frac=0.0,
            device=str(dev), progress=False, seed=args.seed)
    wall = time.perf_counter() - t0
    m.clear_cache(); p = predict(m, test, ut, it)
    out['causalbert_full'] = dict(pairs=full_pairs, encoder_steps=r.encoder_steps, train_pairs_per_s=r.encoder_pairs_per_s,
                                  wall_seconds=wall, heldout_auc_pclick=float(roc_auc_score(test.outcome, p.g*p.q1 + (1-p.g)*p.q0)))
    log(out['causalbert_full'])

    log("3. CausalBert 'cached' ...")
    m = CausalBert.from_encoder(max_length=128, seed=args.seed)
    t0 = time.perf_counter()
    r = fit(m, train, ut, it, strategy='cached', encoder_steps=args.encoder_steps, batch_size=32, head_epochs=args.head_epochs,
            head_batch_size=256, patience=4, device=str(dev), progress=False, seed=args.seed)
    wall = time.perf_counter() - t0
    m.clear_cache()
    t1 = time.perf_counter(); p = predict(m, test, ut, it); t_pred = time.perf_counter() - t1
    marg = p.g*p.q1 + (1-p.g)*p.q0; obs = np.where(p.exposure == 1, p.q1, p.q0)
    out['causalbert_cached'] = dict(note=r.note, wall_seconds=wall, encoder_steps=r.encoder_steps, head_epochs_run=int((r.history.phase == 'heads').sum()),
                                    n_train=r.n_train, encoder_pairs_per_s=r.encoder_pairs_per_s, head_pairs_per_s=r.head_pairs_per_s,
                                    pairs_per_s_end_to_end=r.n_train*int((r.history.phase == 'heads').sum())/wall,
                                    heldout_auc_pclick=float(roc_auc_score(test.outcome, marg)),
                                    heldout_auc_observed_arm=float(roc_auc_score(test.outcome, obs)),
                                    predict_seconds_eval_pairs_cold=t_pred, infer_pairs_per_s_cold=len(test)/t_pred)
    log(out['causalbert_cached'])

    log('4. ranking all MovieLens-100K pairs ...')
    t0 = time.perf_counter(); mut, mit = texts(ml); tt = time.perf_counter() - t0
    m.clear_cache()    # cold: every user and item text is encoded (timed), then rank reuses the embeddings (timed)
    t0 = time.perf_counter(); m.encode(mut); m.encode(mit)
    if dev.type == 'cuda': torch.cuda.synchronize()
    es = time.perf_counter() - t0
    t1 = time.perf_counter(); recs = rank(m, mut, mit, k=10, by='uplift', seen=ml, progress=False); hs = time.perf_counter() - t1
    rs = es + hs
    npairs = len(mut)*len(mit)
    out['rank_all_ml100k'] = dict(pairs=npairs, users=len(mut), items=len(mit), seconds=rs, encode_seconds=es,
                                  score_topk_seconds=hs, pairs_per_s=npairs/rs, text_build_seconds=tt, listed=len(recs))
    out['cross_encoder_rank_all_extrapolated_seconds'] = npairs/out['cross_encoder']['infer_pairs_per_s']
    log(out['rank_all_ml100k'])

    if dev.type == 'cuda':
        log('5. one full epoch on CUDA ...')
        nc = max(1, math.ceil(args.epoch_pairs/len(ml.users)))
        big = simulate(ml, confounding=1.0, seed=args.seed, n_candidates=nc)
        bp = big.data.interactions[['user_id', 'item_id', 'exposure', 'outcome']].astype({'outcome': int})
        but, bit = texts(big.data)
        m = CausalBert.from_encoder(max_length=128, seed=args.seed)
        t0 = time.perf_counter()
        r = fit(m, bp, but, bit, strategy='full', epochs=1, batch_size=256, lr=1e-4, val_frac=0.05, device=str(dev), progress=False)
        torch.cuda.synchronize()
        out['cuda_full_epoch'] = dict(pairs=len(bp), n_train=r.n_train, seconds=time.perf_counter()-t0,
                                      train_pairs_per_s=r.encoder_pairs_per_s, precision=r.precision)
        log(out['cuda_full_epoch'])

    out['loadavg_end'] = [round(x, 2) for x in os.getloadavg()]; out['total_seconds'] = time.perf_counter() - T0
    ce, cf, cc, rk = out['cross_encoder'], out['causalbert_full'], out['causalbert_cached'], out['rank_all_ml100k']
    L = [f"# CausalBert benchmark ({out['device']}, {out['precision']}, {args.threads} threads)", '', f'Command: `{cmd}`', '',
         f"Machine: {out['cpu_count']} CPU cores{', ' + out['gpu'] if out['gpu'] else ''}; load average (1, 5, 15 min) "
         f"{out['loadavg_start']} at the start, {out['loadavg_end']} at the end; {out['total_seconds']:.0f}s in all.", '',
         f"Data: semi-synthetic MovieLens world, {out['data']['pairs']:,} pairs ({out['data']['train']:,} train, "
         f"{out['data']['eval_pairs']:,} held-out pairs scored). Encoder: shipped MiniLM-L6 (384 hidden). Batch 32 pairs.", '',
         '| system | training pairs/s | held-out AUC of P(click) | inference pairs/s |', '|---|---|---|---|',
         f"| HF cross-encoder (AutoModelForSequenceClassification, user+item text, {ce['mean_tokens_per_pair']:.0f} tokens/pair), "
         f"{ce['train_seconds_timed']:.0f}s of training | {ce['train_pairs_per_s']:.1f} | {ce['heldout_auc']:.4f} | {ce['infer_pairs_per_s']:.1f} |",
         f"| CausalBert 'full' (encoder in every step, {cf['pairs']:,} pairs, {cf['wall_seconds']:.0f}s wall) | "
         f"{cf['train_pairs_per_s']:.1f} | {cf['heldout_auc_pclick']:.4f} | - |",
         f"| CausalBert 'cached' (CPU path, {cc['encoder_steps']} encoder steps + {cc['head_epochs_run']} head epochs, "
         f"{cc['wall_seconds']:.0f}s wall) | {cc['pairs_per_s_end_to_end']:.1f} end to end (heads {cc['head_pairs_per_s']:.0f}) | "
         f"{cc['heldout_auc_pclick']:.4f} | {cc['infer_pairs_per_s_cold']:.0f} (predict, cold cache); {rk['pairs_per_s']:.0f} (all-pairs ranking) |", '',
         f"Training speed-up over the cross-encoder: 'full' {cf['train_pairs_per_s']/ce['train_pairs_per_s']:.1f}x, "
         f"'cached' end to end {cc['pairs_per_s_end_to_end']/ce['train_pairs_per_s']:.1f}x.", '',
         f"Ranking all MovieLens-100K items for all users ({rk['pairs']:,} pairs, seen items excluded, top-10): "
         f"{rk['seconds']:.1f}s with CausalBert: encoding {rk['users']} user and {rk['items']} item texts {rk['encode_seconds']:.1f}s, "
         f"scoring every pair and keeping the top 10 {rk['score_topk_seconds']:.1f}s (goal: under 120s on CPU, 10s on a GPU). "
         f"The cross-encoder would need about {out['cross_encoder_rank_all_extrapolated_seconds']/3600:.1f} hours "
         f"(EXTRAPOLATED from its measured {ce['infer_pairs_per_s']:.1f} pairs/s, not run).", '',
         f"CausalBert held-out AUC of the observed arm (Q_T): {cc['heldout_auc_observed_arm']:.4f}.", '']
    if 'cuda_full_epoch' in out:
        c = out['cuda_full_epoch']
        L += [f"One full epoch ('full' strategy, batch 256, {c['precision']}) over {c['n_train']:,} pairs: {c['seconds']:.1f}s "
              f"({c['train_pairs_per_s']:.0f} pairs/s).", '']
    else:
        L += ['GPU: not measured in this run (no GPU on this machine).', '']
    md = '\n'.join(L)
    res = ROOT/'bench'/'results'; res.mkdir(parents=True, exist_ok=True)
    tag = dev.type
    (res/f'bert_bench_{tag}.json').write_text(json.dumps(out, indent=1, default=str))
    (res/f'bert_bench_{tag}.md').write_text(md)
    print(md)


if __name__ == '__main__': main()

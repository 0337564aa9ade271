"""Cost of CausalBert at MovieLens scale: train on every pair of the Sato et al. world (943 users x 1,682 items =
1,586,126 pairs) and rank the whole catalogue for every user, on this machine.

CausalBert reads the user/item texts and the world's covariates (`inputs='both'`), fine-tunes the shipped MiniLM
for --encoder-steps steps (CPU path: then every text is encoded once and the heads train on cached embeddings for
--head-epochs epochs), then ranks all 943 x 1,682 pairs by uplift (top 10 per user) with `causal_llmrec.rank.rank`.

    .venv/bin/python bench/bert_cost.py [--encoder-steps 10] [--head-epochs 5] [--threads 2]

Writes bench/results/bert_cost.md and .json.
"""
import argparse, json, os, sys, time, platform, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.worlds import sato_world, SATO_COVARIATES
from causal_llmrec.text import texts
from causal_llmrec.bert import CausalBert
from causal_llmrec.bert_train import fit
from causal_llmrec.rank import rank


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--encoder-steps', type=int, default=10)
    ap.add_argument('--head-epochs', type=int, default=5)
    ap.add_argument('--head-batch-size', type=int, default=1024)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'bert_cost'))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    w = sato_world(seed=0)
    fr = w.frame(); fr['outcome'] = fr.outcome.astype(int)
    ut, it = texts(w.data)
    t_data = time.perf_counter() - t0
    users, items = w.data.users, w.data.items
    def features(p):   # the world's covariates for any pair: user columns and item columns
        u, i = users.loc[p.user_id.to_numpy()], items.loc[p.item_id.to_numpy()]
        return pd.DataFrame({'user_age': u.age.to_numpy(), 'user_female': u.female.to_numpy(), 'user_activity': u.activity.to_numpy(),
                             'item_popularity': i.popularity.to_numpy(), 'item_year': i.year.to_numpy()})
    m = CausalBert.from_encoder(None, seed=0, covariates=SATO_COVARIATES)
    t1 = time.perf_counter()
    r = fit(m, fr, ut, it, strategy='cached' if a.device in ('auto', 'cpu') and not torch.cuda.is_available() else 'auto',
            encoder_steps=a.encoder_steps, head_epochs=a.head_epochs, head_batch_size=a.head_batch_size, batch_size=32,
            patience=2, progress=True, seed=0, device=a.device)
    t_train = time.perf_counter() - t1
    m.clear_cache()     # rank encodes every text again: the timing includes it
    t2 = time.perf_counter()
    recs = rank(m, ut, it, k=10, features=features, progress=True)
    t_rank = time.perf_counter() - t2
    n = len(fr); head_epochs = int((r.to_frame().phase == 'heads').sum())
    res = dict(command='.venv/bin/python bench/' + Path(__file__).name + ' ' + ' '.join(sys.argv[1:]), pairs=n, users=int(w.n_users),
               items=int(w.n_items), data_s=t_data, train_s=t_train, rank_s=t_rank, train_plus_rank_s=t_train + t_rank,
               train_pairs_per_s=n*head_epochs/t_train, rank_pairs_per_s=recs.n_scored/t_rank, strategy=r.strategy, device=r.device,
               encoder_steps=r.encoder_steps, head_epochs_run=head_epochs, note=r.note, threads=a.threads,
               machine=f'{platform.machine()}, {os.cpu_count()} CPUs', load_avg_end=os.getloadavg()[0])
    Path(a.out + '.json').write_text(json.dumps(res, indent=1))
    md = ['# CausalBert cost at MovieLens scale (Sato world, every pair)', '', f"Command: `{res['command']}`", '',
          f"Machine: {res['machine']}, torch threads {a.threads}, device {r.device}; load average at the end {res['load_avg_end']:.1f}.", '',
          '| step | seconds | pairs/s |', '|---|---|---|',
          f"| build the world and the texts | {t_data:.1f} | |",
          f"| train ({r.encoder_steps} encoder steps, all texts encoded, {head_epochs} head epochs over {n:,} pairs) | {t_train:.1f} | {res['train_pairs_per_s']:,.0f} (head pair-epochs per second of the whole training) |",
          f"| rank all {recs.n_scored:,} pairs, top 10 per user (texts encoded again) | {t_rank:.1f} | {res['rank_pairs_per_s']:,.0f} |",
          f"| **train + rank** | **{t_train + t_rank:.1f}** | |", '', r.note]
    Path(a.out + '.md').write_text('\n'.join(md) + '\n'); print('\n'.join(md))


if __name__ == '__main__':
    main()

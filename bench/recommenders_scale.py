"""Fit and scoring time of every baseline of `causal_llmrec.baselines` (the `BASELINES` registry) at two log sizes.

The world is `simulate(ml, confounding=1.0, seed=0, n_candidates=n)` on all 943 MovieLens users, with n = 40 logged
candidates per user (37,720 pairs) and with every unrated item logged (n = 1682: about 1.49 million pairs). Each method
is fitted with its default parameters on the whole log and scores every pair of it; the table gives the seconds and, as
a sanity check of the fit (in sample, so **not** evidence of quality: that is `bert_evidence.py` and `sato_bench.py`),
the share of the oracle's true uplift that its top-10 lists reach (`true_uplift_at_k`'s `share_of_oracle`).

    .venv/bin/python bench/recommenders_scale.py [--candidates 40 1682] [--threads 1]

Writes bench/results/recommenders_scale.md and .json; `nbs/05c_recommenders.ipynb` reads the JSON.
"""
import argparse, json, os, sys, time, warnings, platform
from pathlib import Path
import numpy as np, pandas as pd, torch
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.data import simulate, load_movielens, SIM_COVARIATES
from causal_llmrec.recommenders import BASELINES
from causal_llmrec.evaluate import true_uplift_at_k


def share(frame, score, k=10):
    return float(true_uplift_at_k(frame[['user_id', 'item_id']].assign(score=score), frame[['user_id', 'item_id', 'tau']], k=k)['share_of_oracle'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--candidates', type=int, nargs='+', default=[40, 1682], help='logged candidates per user (1682: every unrated item)')
    ap.add_argument('--methods', nargs='+', default=[m for m in BASELINES if m != 'random' and not BASELINES[m].needs_text], choices=list(BASELINES))
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=str(ROOT/'bench'/'results'/'recommenders_scale'))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ml = load_movielens()
    t0 = time.perf_counter(); rows = []
    for n in args.candidates:
        w = simulate(ml, confounding=1.0, seed=0, n_candidates=n)
        fr = w.frame().reset_index(drop=True); fr['tau'] = w.truth.tau.to_numpy(); fr['outcome'] = fr.outcome.astype(int)
        log = fr.drop(columns='tau')
        for name in args.methods:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                t1 = time.perf_counter(); m = BASELINES[name](covariates=SIM_COVARIATES, random_state=0).fit(log); fit_s = time.perf_counter() - t1
                t1 = time.perf_counter(); s = m.predict(log); score_s = time.perf_counter() - t1
            rows.append(dict(candidates=n, pairs=len(fr), method=name, kind=BASELINES[name].score_kind, fit_s=fit_s, score_s=score_s,
                             share_in_sample=share(fr, np.asarray(s, dtype=float))))
            print(f"{n:>5} candidates ({len(fr):,} pairs) {name:14s} fit {fit_s:7.2f}s score {score_s:6.2f}s share {rows[-1]['share_in_sample']:+.3f}", flush=True)
    R = pd.DataFrame(rows)
    cmd = '.venv/bin/python bench/' + Path(__file__).name + ' ' + ' '.join(sys.argv[1:])
    mach = f'{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {args.threads}; load average at the end {os.getloadavg()[0]:.1f}'
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    json.dump(dict(command=cmd, machine=mach, seconds=time.perf_counter()-t0, rows=rows), open(str(out) + '.json', 'w'), indent=1)
    lines = ['# Baselines at two log sizes: fit and scoring time', '', f'Command: `{cmd}`', '', f'Machine: {mach}; total {time.perf_counter()-t0:.0f} s.', '',
             __doc__.split('\n\n')[1].replace('\n', ' '), '',
             '| candidates | pairs | method | kind | fit s | score s | share of oracle (in sample) |', '|---|---|---|---|---|---|---|']
    lines += [f"| {r.candidates} | {r.pairs:,} | {r.method} | {r.kind} | {r.fit_s:.2f} | {r.score_s:.2f} | {r.share_in_sample:.3f} |" for r in R.itertuples()]
    Path(str(out) + '.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()

"""No regression on the built-in world (issue 23): CausalBert at its DEFAULT settings against the tuned logistic T-learner.

The built-in world (`causal_llmrec.data.simulate` on MovieLens-100K) is one whose truth is a logistic function of six tabular
covariates; its texts add nothing. A CausalBert that reads text must not lose there: the issue asks for a ranking within 0.005
of the best tabular learner. Per world (--n-users users, confounding gamma, seed) the users are split 60/10/30 as in
`bench/bert_evidence.py`; training is on the training users' logged pairs; the test users rank the whole catalogue (every
unrated item); the score is the normalised true uplift gain at 10 (0 = random, 1 = the oracle). The logistic T-learner (the
best tabular learner of `bench/results/bert_evidence_catalogue.md`) is tuned with --budget settings on the validation users;
CausalBert runs `fit` with no setting changed (MiniLM, the texts of `causal_llmrec.text.texts`, the six covariates).

    .venv/bin/python bench/bert_defaults_builtin.py [--gammas 0 1 2] [--seeds 101 102 103] [--threads 1]

Writes bench/results/<--out>.json after every world (a rerun with the same --out resumes) and <--out>.md at the end.
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.data import load_movielens, SIM_COVARIATES
from causal_llmrec.bert import CausalBert, predict
from causal_llmrec.bert_train import fit
from causal_llmrec.baselines import tune
from causal_llmrec.recommenders import BASELINES
from causal_llmrec.evaluate import true_uplift_at_k
sys.path.insert(0, str(ROOT/'bench'))
from bert_evidence import split_world


def gain(frame, score, k=10):
    "Normalised true uplift gain at k of `score` over `frame` (user_id, item_id, tau)."
    return float(true_uplift_at_k(frame[['user_id', 'item_id']].assign(score=score), frame[['user_id', 'item_id', 'tau']], k=k, seed=0)['share_of_oracle'])


def world(ml, gamma, seed, a):
    "CausalBert (defaults) and the tuned logistic T-learner on one world: test gain on the whole catalogue and seconds."
    _, ut, it, tr, va, te = split_world(ml, gamma, seed, a.n_users, 'catalogue')   # the split of bench/bert_evidence.py
    rows = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = tune(BASELINES['logistic_t'], tr, va, lambda v, s: gain(v, s), budget=a.budget, seed=seed, covariates=SIM_COVARIATES)
        rows.append(dict(method='logistic_t (tuned)', gain=gain(te, r.model.predict(te)), seconds=time.perf_counter() - t0,
                         params=json.dumps(r.best_params, default=str)))
    t0 = time.perf_counter()
    m = CausalBert.from_encoder(covariates=SIM_COVARIATES, seed=seed)
    res = fit(m, tr, ut, it, progress=False, seed=seed)
    rows.append(dict(method='CausalBert (defaults)', gain=gain(te, predict(m, te, ut, it).tau.to_numpy()), seconds=time.perf_counter() - t0,
                     params=res.note))
    return [dict(r, gamma=gamma, seed=seed) for r in rows]


def render(res):
    R = pd.DataFrame(res['rows'])
    piv = R.pivot_table(index=['gamma', 'seed'], columns='method', values='gain')
    diff = piv['CausalBert (defaults)'] - piv['logistic_t (tuned)']
    L = ["# No regression on the built-in world: CausalBert (defaults) vs the tuned logistic T-learner", "",
         f"Command: `{res['command']}`", "", f"Machine: {res['machine']}; {res['elapsed_s']:.0f} s in all.", "",
         f"Worlds: `simulate(n_users={res['n_users']})`, test users rank the whole catalogue; normalised true uplift gain at 10; "
         f"the logistic T-learner tuned with {res['budget']} settings on the validation users, CausalBert untuned.", "",
         "| gamma | seed | CausalBert (defaults) | logistic_t (tuned) | difference |", "|---|---|---|---|---|"]
    for (g, s), row in piv.iterrows():
        L.append(f"| {g:g} | {s} | {row['CausalBert (defaults)']:.4f} | {row['logistic_t (tuned)']:.4f} | {diff[(g, s)]:+.4f} |")
    L += ["", f"Difference over {len(diff)} worlds: mean {diff.mean():+.4f}, min {diff.min():+.4f}, max {diff.max():+.4f}; "
          f"within 0.005 of the tuned learner in {int((diff >= -0.005).sum())} of {len(diff)} worlds.", "",
          "Seconds per world (mean): " + ', '.join(f"{k} {v:.0f}" for k, v in R.groupby('method').seconds.mean().items())]
    return '\n'.join(L) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--gammas', type=float, nargs='+', default=[0.0, 1.0, 2.0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[101, 102, 103])
    ap.add_argument('--n-users', type=int, default=200)
    ap.add_argument('--budget', type=int, default=4)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default='bert_defaults_builtin')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = ROOT/'bench'/'results'/a.out
    res = json.loads(out.with_suffix('.json').read_text()) if out.with_suffix('.json').exists() else \
        dict(machine=f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.threads} thread(s)", n_users=a.n_users, budget=a.budget,
             rows=[], done=[], elapsed_s=0.0)
    res['command'] = '.venv/bin/python bench/bert_defaults_builtin.py ' + ' '.join(sys.argv[1:])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ml = load_movielens()
    t_start, el0 = time.perf_counter(), res['elapsed_s']
    for g in a.gammas:
        for s in a.seeds:
            key = f"{g:g}|{s}"
            if key in res['done']: continue
            t0 = time.perf_counter(); rows = world(ml, g, s, a)
            res['rows'] += rows; res['done'].append(key); res['elapsed_s'] = el0 + time.perf_counter() - t_start
            out.with_suffix('.json').write_text(json.dumps(res, indent=1, default=float))
            print(f"[{key}] {time.perf_counter() - t0:.0f}s " + ', '.join(f"{r['method']} {r['gain']:.4f}" for r in rows), flush=True)
    out.with_suffix('.md').write_text(render(res))
    print(render(res))


if __name__ == '__main__':
    main()

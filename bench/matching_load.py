"""The exact 10-D engine on a shared machine (issue 16): torch's intra-op threads against the machine's load.

Times `_knn_kdgemm` (exact 1-NN in 10 dimensions) with torch's thread count chosen by the engine (the free cores less the
helper thread, from the 1-minute load average) and forced to every core (the former behaviour), next to scikit-learn's
KD-tree on the same points, in alternated runs (best of --repeat). --busy N starts N busy-looping processes for the
duration, so the loaded cell does not depend on what else runs on the machine; the load average is reported either way.

Command (from the repository root):
    .venv/bin/python bench/matching_load.py [--n-ref 100000] [--n-query 50000] [--busy 2] [--repeat 2]
Writes bench/results/matching_load.md and .json."""
import argparse, json, multiprocessing as mp, os, sys, time
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
from causal_llmrec.neighbours import _knn_kdgemm, _free_threads

def spin(stop):
    x = 0
    while not stop.is_set(): x += 1

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--n-ref', type=int, default=100_000); ap.add_argument('--n-query', type=int, default=50_000)
    ap.add_argument('--busy', type=int, default=2); ap.add_argument('--repeat', type=int, default=2)
    a = ap.parse_args(); cmd = '.venv/bin/python bench/matching_load.py ' + ' '.join(sys.argv[1:])
    import torch
    from sklearn.neighbors import KDTree
    rng = np.random.default_rng(0); R = rng.standard_normal((a.n_ref, 10)); Q = rng.standard_normal((a.n_query, 10))
    cores = len(os.sched_getaffinity(0)); stop = mp.Event()
    procs = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(a.busy)]
    for p in procs: p.start()
    time.sleep(20 if a.busy else 0)                       # let the load average see the busy processes
    rows = []; ref = None
    for rep in range(a.repeat):
        for lab in ('engine default threads', f'torch threads = {cores} (former behaviour)', 'scikit-learn KDTree'):
            l0 = os.getloadavg()[0]; nt = _free_threads(); t = time.perf_counter()
            if lab.startswith('engine'): ptr, j, d = _knn_kdgemm(Q, R, 1)
            elif lab.startswith('torch'): ptr, j, d = _knn_kdgemm(Q, R, 1, threads=cores)
            else: d2, j2 = KDTree(R).query(Q, k=1); j = j2[:, 0]
            sec = time.perf_counter() - t
            jj = np.asarray(j)[:len(Q)] if not lab.startswith('scikit') else j
            if lab.startswith('engine'): ref = np.asarray(j)[np.asarray(ptr)[:-1]]
            agree = bool((np.asarray(jj if lab.startswith('scikit') else np.asarray(j)[np.asarray(ptr)[:-1]]) == ref).mean() > 0.999)
            rows.append(dict(run=rep, job=lab, seconds=round(sec, 2), load_before=round(l0, 1), threads=(nt if lab.startswith('engine') else cores if lab.startswith('torch') else 1), same_answer=agree))
            print(rows[-1], flush=True)
    stop.set()
    for p in procs: p.join(5)
    best = {}
    for r in rows: best[r['job']] = min(best.get(r['job'], 1e9), r['seconds'])
    md = ['# Exact 10-D nearest neighbours on a loaded machine', '', f'Command: `{cmd}`', '',
          f'{a.n_query:,} queries among {a.n_ref:,} references, 10 dimensions, 1-NN; {cores} cores; {a.busy} busy-looping processes '
          'started by the benchmark on top of whatever else ran. Best of the alternated runs, then every run.', '',
          '| job | best seconds |', '|---|---|'] + [f'| {k} | {v} |' for k, v in best.items()] + ['', '| run | job | seconds | 1-min load before | torch threads | same answer as the engine |', '|---|---|---|---|---|---|']
    md += [f"| {r['run']} | {r['job']} | {r['seconds']} | {r['load_before']} | {r['threads']} | {r['same_answer']} |" for r in rows]
    res = ROOT / 'bench' / 'results'; (res / 'matching_load.md').write_text('\n'.join(md) + '\n')
    json.dump(dict(command=cmd, rows=rows, best=best), open(res / 'matching_load.json', 'w'), indent=1)
    print('\n'.join(md))

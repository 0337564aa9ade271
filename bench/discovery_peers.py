"""Peer side of bench/discovery_bench.py: runs causal-learn's PC on the data files the main script wrote.

Run by .bench-venv-discovery/bin/python (created by bench/peers-discovery.sh); prints one JSON line per data set:
    python bench/discovery_peers.py DATA_DIR
Each data set is DATA_DIR/NAME.csv plus DATA_DIR/NAME.json ({"kind": "continuous"|"discrete"}); the learned
graph goes to DATA_DIR/NAME.pc.json as {"directed": [[a, b], ...], "undirected": [[a, b], ...], "seconds": s, "cpu_seconds": c}.
"""
import json, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
from causallearn.search.ConstraintBased.PC import pc


def run(csv: Path):
    meta = json.loads(csv.with_suffix('.json').read_text())
    df = pd.read_csv(csv)
    cols = list(df.columns)
    if meta['kind'] == 'discrete':
        X = np.column_stack([pd.factorize(df[c], sort=True)[0] for c in cols]).astype(float)
        test = 'chisq'
    else:
        X = df.to_numpy(dtype=float)
        test = 'fisherz'
    t0, c0 = time.perf_counter(), time.process_time()
    cg = pc(X, alpha=0.01, indep_test=test, stable=True, show_progress=False)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    G = cg.G.graph  # G[i, j] == -1 and G[j, i] == 1: i -> j; both -1: i -- j
    directed, undirected = [], []
    d = len(cols)
    for i in range(d):
        for j in range(d):
            if G[i, j] == -1 and G[j, i] == 1: directed.append([cols[i], cols[j]])
            elif i < j and G[i, j] == -1 and G[j, i] == -1: undirected.append([cols[i], cols[j]])
            elif i < j and G[i, j] == 1 and G[j, i] == 1: undirected.append([cols[i], cols[j]])  # bidirected: no orientation
    out = dict(directed=directed, undirected=undirected, seconds=secs, cpu_seconds=cpu, test=test, alpha=0.01)
    csv.with_suffix('.pc.json').write_text(json.dumps(out))
    print(json.dumps(dict(name=csv.stem, seconds=round(secs, 2), n_directed=len(directed), n_undirected=len(undirected))),
          flush=True)


if __name__ == '__main__':
    data = Path(sys.argv[1])
    names = sys.argv[2:]
    for csv in sorted(data.glob('*.csv')):
        if names and csv.stem not in names: continue
        run(csv)

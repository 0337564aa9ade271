"""Speed benchmark of causal_llmrec.matching against causalml, DoWhy and scikit-learn on the same synthetic data.

Command (from the repository root):   .venv/bin/python bench/matching_speed.py [--sizes 1e4 1e5 1e6 1e7]
Data: n units, 10 standard-normal covariates, ~30% treated by a logistic model, Y = X b + tau(x) T + noise with
tau(x) = 2 + 0.5 x0 (the true ATT is the mean of tau over the treated). The propensity score (our logistic fit) is stored
in the data file so every tool matches on the same score. Each cell runs in its own process (time and peak-RSS increase
measured around the matching call only; best of --repeat timings, default 3); the peers run in .bench-venv-matching (made by bench/peers-matching.sh).
Writes bench/results/matching_speed.md and .json (or --out PATH.md/.json). Mahalanobis cells get their own --maha-timeout."""
import argparse, json, os, subprocess, sys, tempfile, time, platform
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ap = argparse.ArgumentParser()
ap.add_argument('--sizes', nargs='+', type=float, default=[1e4, 1e5, 1e6, 1e7])
ap.add_argument('--timeout', type=int, default=300, help='seconds per cell (propensity-score jobs)')
ap.add_argument('--maha-timeout', type=int, default=600, help='seconds per Mahalanobis cell (exact 10-D search: sklearn needs ~230 s at 1e6)')
ap.add_argument('--maha-max', type=float, default=1e5, help='largest n for the Mahalanobis job')
ap.add_argument('--norepl-peer-max', type=float, default=1e5, help='largest n for causalml without replacement (O(n^2))')
ap.add_argument('--dowhy-maha-max', type=float, default=1e4, help='largest n for DoWhy distance matching (Python loop over units)')
ap.add_argument('--peer-max', type=float, default=1e6, help='largest n for the peers')
ap.add_argument('--repeat', type=int, default=3, help='timings per cell (the best is reported; cells over 10 s run once)')
ap.add_argument('--out', default=str(ROOT / 'bench/results/matching_speed'), help='output path without extension (.md and .json are written)')
args = ap.parse_args()

peer_py = subprocess.run(['bash', str(ROOT / 'bench/peers-matching.sh')], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
peer_py = str(ROOT / peer_py) if not os.path.isabs(peer_py) else peer_py
vers = subprocess.run([peer_py, '-c', 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in ("dowhy","causalml","scikit-learn","numpy","pandas")))'],
                      capture_output=True, text=True).stdout.strip()

def make_data(n, seed=0, p=10):
    from causal_llmrec.weighting import propensity_score
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    lin = X @ (np.linspace(0.5, -0.5, p) * 0.6) + np.log(0.3 / 0.7)
    t = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(np.int8)
    tau = 2.0 + 0.5 * X[:, 0]
    y = X @ np.linspace(1, 0.1, p) + tau * t + rng.standard_normal(n)
    df = pd.DataFrame(X, columns=[f'x{i}' for i in range(p)]); df['t'] = t
    ps = propensity_score(df, 't', list(df.columns[:p])).to_numpy()
    return X, t, y, ps, float(tau[t == 1].mean())

tmp = Path(tempfile.mkdtemp(prefix='matching-bench-'))
rows = []
for n in [int(s) for s in args.sizes]:
    X, t, y, ps, att = make_data(n)
    path = tmp / f'data_{n}.npz'; np.savez(path, X=X, t=t, y=y, ps=ps); del X, y
    print(f'n={n:,}: {t.mean():.3f} treated, true ATT {att:.4f}', flush=True)
    cells = [('ours', 'ps_repl'), ('ours', 'ps_repl_full'), ('ours', 'ps_norepl')]
    if n <= args.peer_max: cells += [('causalml', 'ps_repl'), ('dowhy', 'ps_repl')]
    if n <= args.norepl_peer_max: cells += [('causalml', 'ps_norepl')]
    if n <= args.maha_max: cells += [('ours', 'maha'), ('sklearn', 'maha')] + ([('dowhy', 'maha')] if n <= args.dowhy_maha_max else [])
    for tool, job in cells:
        py = str(ROOT / '.venv/bin/python') if tool == 'ours' else peer_py
        try:
            out = subprocess.run([py, str(ROOT / 'bench/matching_worker.py'), tool, job, str(path), str(args.repeat)], capture_output=True,
                                 text=True, timeout=args.maha_timeout if job == 'maha' else args.timeout, cwd=ROOT)
            rec = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else \
                dict(tool=tool, job=job, seconds=float('nan'), peak_mb=float('nan'), estimate=float('nan'), note=f'error (exit {out.returncode}): ' + (out.stderr.strip().splitlines() or ['killed, probably out of memory'])[-1][:120])
        except subprocess.TimeoutExpired:
            rec = dict(tool=tool, job=job, seconds=float('nan'), peak_mb=float('nan'), estimate=float('nan'),
                       note=f"timeout > {args.maha_timeout if job == 'maha' else args.timeout} s")
        rec.update(n=n, true_att=att, load1=round(os.getloadavg()[0], 2))   # 1-minute load average right after the cell
        rows.append(rec)
        print(f"  {tool:9s} {job:13s} {rec['seconds']:9.2f} s  {rec['peak_mb']:8.0f} MB  est {rec['estimate']:.4f}  load {rec['load1']:.1f}  {rec['note']}", flush=True)
    path.unlink()

def md_table(df):
    fmt = lambda v: (f"{v:.4g}" if isinstance(v, float) else str(v))
    return '\n'.join(['| ' + ' | '.join(df.columns) + ' |', '|' + '---|' * len(df.columns)] +
                     ['| ' + ' | '.join(fmt(v) for v in r) + ' |' for r in df.itertuples(index=False)])

res = pd.DataFrame(rows)[['n', 'job', 'tool', 'seconds', 'peak_mb', 'estimate', 'true_att', 'load1', 'note']]
cmd = '.venv/bin/python bench/matching_speed.py ' + ' '.join(sys.argv[1:])
load = os.getloadavg()
hdr = (f"# Matching speed benchmark\n\nCommand: `{cmd}`\n\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
       f"(shared: load average at the end {load[0]:.1f}, so absolute times are inflated; the tools ran one after another under the same load). "
       f"Peers: {vers}. Jobs: `ps_repl` 1:1 ATT matching with replacement on the propensity score (probability scale); "
       f"`ps_repl_full` ours with bias correction and the Abadie-Imbens SE (tie_tol=0: see matching_worker.py); `ps_norepl` 1:1 without replacement (ours: greedy, "
       f"largest score first; causalml: random order); `maha` 1:1 Mahalanobis matching on the 10 covariates (exact nearest neighbours). "
       f"Seconds: the best of --repeat timings in the same process (every tool alike; a call over 10 s runs once). load1: the 1-minute load average just after the cell. Peak MB: increase of the process's peak RSS during the call (0 = the call stayed below the peak reached while loading the data). Timeouts are stated; cells not run: causalml without replacement above --norepl-peer-max (O(n^2) pandas loop: it timed out at 300 s at 1e5 in an earlier run), DoWhy distance matching above --dowhy-maha-max (timed out at 300 s at 1e5 in an earlier run), Mahalanobis above --maha-max, peers above --peer-max.\n\n")
open(args.out + '.md', 'w').write(hdr + md_table(res) + '\n')
res.to_json(args.out + '.json', orient='records', indent=1)
print(res.to_string(index=False))

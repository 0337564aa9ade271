"""Speed benchmark of causal_llmrec.matching against causalml, DoWhy, scikit-learn and a bare numpy sorted search on the same data.

Command (from the repository root):   .venv/bin/python bench/matching_speed.py [--sizes 1e4 1e5 1e6] [--rounds 3]
                                      .venv/bin/python bench/matching_speed.py --sizes 1e6 --compare bench/results/matching_speed.json
                                      .venv/bin/python bench/matching_speed.py --compare bench/results/matching_speed.json --against NEW.json
Data: n units, 10 standard-normal covariates, ~30% treated by a logistic model, Y = X b + tau(x) T + noise with
tau(x) = 2 + 0.5 x0 (the true ATT is the mean of tau over the treated). The propensity score (our logistic fit) is stored
in the data file so every tool matches on the same score. Each cell runs in its own process: an untimed warm-up call (skipped
when a call takes over 10 s), then one timed call (time and peak-RSS increase measured around the matching call only). The
cells run in --rounds rounds, in alternating order (reversed every other round), so that load on a shared machine hits every
tool alike; a cell's time is the best of its rounds, and ours/peer ratios are also taken within each round. The 1-minute load
average (`uptime`) is recorded before every cell. The peers run in .bench-venv-matching (made by bench/peers-matching.sh).
Writes bench/results/matching_speed.md and .json (or --out PATH.md/.json).

--compare REF.json compares this run (or --against NEW.json, without running) with REF: every path of ours (n, job) is timed
relative to a reference measured in the same run (the bare numpy search for the propensity-score jobs, scikit-learn's KD-tree
for the Mahalanobis job; CPU seconds where both runs have them, which other load inflates less than wall seconds), and a path whose relative time grew by more than --threshold (default 20%) is named; the exit
status is 1 if any did (2 if no path could be compared)."""
import argparse, json, os, subprocess, sys, tempfile, platform, math
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the reference each job of ours is timed against in --compare (a tool measured in the same run, on the same data)
CALIBRATOR = {'ps_repl': 'numpy', 'ps_repl_full': 'numpy', 'ps_norepl': 'numpy', 'maha': 'sklearn'}
PEERS = {'ps_repl': ('causalml', 'numpy', 'dowhy'), 'ps_norepl': ('causalml',), 'maha': ('sklearn', 'dowhy')}

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', nargs='+', type=float, default=[1e4, 1e5, 1e6])
    ap.add_argument('--rounds', type=int, default=3, help='rounds over all cells (best of rounds is reported)')
    ap.add_argument('--timeout', type=int, default=300, help='seconds per cell (propensity-score jobs)')
    ap.add_argument('--maha-timeout', type=int, default=600, help='seconds per Mahalanobis cell (exact 10-D search: sklearn needs ~150-250 s at 1e6)')
    ap.add_argument('--maha-max', type=float, default=1e5, help='largest n for the Mahalanobis job')
    ap.add_argument('--maha-rounds', type=int, default=None, help='rounds for the Mahalanobis cells (default --rounds)')
    ap.add_argument('--long', type=float, default=60, help='a cell whose first round took longer (seconds) runs in that round only')
    ap.add_argument('--norepl-peer-max', type=float, default=1e4, help='largest n for causalml without replacement (O(n^2): 164 s at 1e5)')
    ap.add_argument('--dowhy-max', type=float, default=1e5, help='largest n for DoWhy propensity matching (6.5 s at 1e6)')
    ap.add_argument('--dowhy-maha-max', type=float, default=1e4, help='largest n for DoWhy distance matching (Python loop over units)')
    ap.add_argument('--peer-max', type=float, default=1e6, help='largest n for the peers')
    ap.add_argument('--jobs', nargs='+', default=['ps_repl', 'ps_repl_full', 'ps_norepl', 'maha'], help='jobs to run')
    ap.add_argument('--out', default=str(ROOT / 'bench/results/matching_speed'), help='output path without extension (.md and .json are written)')
    ap.add_argument('--compare', default=None, help='committed results (.json) to compare this run with')
    ap.add_argument('--against', default=None, help='with --compare: compare this results file instead of running')
    ap.add_argument('--threshold', type=float, default=0.2, help='relative slow-down that --compare reports (0.2 = 20%%)')
    return ap.parse_args(argv)

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

def cells_for(n, a):
    "The (tool, job) cells run at size n."
    c = [('ours', j) for j in ('ps_repl', 'ps_repl_full', 'ps_norepl') if j in a.jobs]
    if n <= a.peer_max and 'ps_repl' in a.jobs:
        c += [('causalml', 'ps_repl'), ('numpy', 'ps_repl')] + ([('dowhy', 'ps_repl')] if n <= a.dowhy_max else [])
    if n <= min(a.peer_max, a.norepl_peer_max) and 'ps_norepl' in a.jobs: c += [('causalml', 'ps_norepl')]
    if n <= a.maha_max and 'maha' in a.jobs:
        c += [('ours', 'maha')] + ([('sklearn', 'maha')] if n <= a.peer_max else []) + ([('dowhy', 'maha')] if n <= min(a.peer_max, a.dowhy_maha_max) else [])
    return c

def run_cell(tool, job, path, a, peer_py):
    py = str(ROOT / '.venv/bin/python') if tool == 'ours' else peer_py
    limit = a.maha_timeout if job == 'maha' else a.timeout
    try:
        out = subprocess.run([py, str(ROOT / 'bench/matching_worker.py'), tool, job, str(path)], capture_output=True, text=True, timeout=limit, cwd=ROOT)
        if out.returncode == 0: return json.loads(out.stdout.strip().splitlines()[-1])
        why = (out.stderr.strip().splitlines() or ['killed, probably out of memory'])[-1][:120]
        return dict(seconds=math.nan, cpu_s=math.nan, peak_mb=math.nan, estimate=math.nan, note=f'error (exit {out.returncode}): {why}')
    except subprocess.TimeoutExpired:
        return dict(seconds=math.nan, cpu_s=math.nan, peak_mb=math.nan, estimate=math.nan, note=f'timeout > {limit} s')

def run(a):
    peer_py = subprocess.run(['bash', str(ROOT / 'bench/peers-matching.sh')], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    peer_py = str(ROOT / peer_py) if not os.path.isabs(peer_py) else peer_py
    vers = subprocess.run([peer_py, '-c', 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in ("dowhy","causalml","scikit-learn","numpy","pandas")))'],
                          capture_output=True, text=True).stdout.strip()
    ours_np = subprocess.run([str(ROOT / '.venv/bin/python'), '-c', 'import numpy, torch; print(f"numpy=={numpy.__version__} torch=={torch.__version__}")'],
                             capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix='matching-bench-'))
    rows, rounds = [], []
    for n in [int(s) for s in a.sizes]:
        X, t, y, ps, att = make_data(n)
        path = tmp / f'data_{n}.npz'; np.savez(path, X=X, t=t, y=y, ps=ps); del X, y
        print(f'n={n:,}: {t.mean():.3f} treated, true ATT {att:.4f}', flush=True)
        cells = cells_for(n, a)
        for r in range(max(a.rounds, a.maha_rounds or 0)):
            order = cells if r % 2 == 0 else cells[::-1]           # alternate the order: load drifts hit every tool alike
            for tool, job in order:
                if r >= ((a.maha_rounds or a.rounds) if job == 'maha' else a.rounds): continue
                first = [x['seconds'] for x in rounds if (x['n'], x['tool'], x['job'], x['round']) == (n, tool, job, 1)]
                if r > 0 and first and not first[0] <= a.long: continue     # long (or failed) cells run once
                load = os.getloadavg()[0]
                rec = run_cell(tool, job, path, a, peer_py)
                rec.update(n=n, job=job, tool=tool, round=r + 1, load1=round(load, 2))
                rounds.append(rec)
                print(f"  round {r+1} {tool:9s} {job:13s} {rec['seconds']:9.3f} s  cpu {rec['cpu_s']:8.3f} s  {rec['peak_mb']:8.0f} MB  est {rec['estimate']:.4f}  "
                      f"load {load:.1f}  {rec['note']}", flush=True)
        for tool, job in cells:
            rs = [x for x in rounds if (x['n'], x['tool'], x['job']) == (n, tool, job)]
            ok = [x for x in rs if x['seconds'] == x['seconds']]
            best = min(ok, key=lambda x: x['seconds']) if ok else rs[-1]
            times = ', '.join(f"{x['seconds']:.3g}" if x['seconds'] == x['seconds'] else 'n/a' for x in rs)
            cpus = [x['cpu_s'] for x in ok]
            rows.append(dict(n=n, job=job, tool=tool, seconds=best['seconds'], cpu_s=min(cpus) if cpus else math.nan, peak_mb=best['peak_mb'], estimate=best['estimate'],
                             true_att=att, load1=best['load1'], rounds=len(rs),
                             note='; '.join(s for s in (best['note'], f'rounds: {times} s' if len(rs) > 1 else '') if s)))
        path.unlink()
    return rows, rounds, vers, ours_np

def ratios(rows, rounds):
    "peer / ours for every job run by both: from the best wall times, within each round, and from the best CPU times."
    out = []
    best = {(r['n'], r['job'], r['tool']): r for r in rows}
    for (n, job, tool), b in best.items():
        if tool == 'ours' or (n, job, 'ours') not in best: continue
        o_best = best[(n, job, 'ours')]; per = []
        for rr in sorted({x['round'] for x in rounds if x['n'] == n}):
            o = [x['seconds'] for x in rounds if (x['n'], x['job'], x['tool'], x['round']) == (n, job, 'ours', rr)]
            p = [x['seconds'] for x in rounds if (x['n'], x['job'], x['tool'], x['round']) == (n, job, tool, rr)]
            if o and p and o[0] == o[0] and p[0] == p[0]: per.append(p[0] / o[0])
        out.append(dict(n=n, job=job, peer=tool, ours_s=o_best['seconds'], peer_s=b['seconds'], ratio_best=b['seconds'] / o_best['seconds'],
                        ratio_rounds=', '.join(f'{v:.2f}' for v in per), ratio_cpu=b.get('cpu_s', math.nan) / o_best.get('cpu_s', math.nan)))
    return out

def md_table(df):
    fmt = lambda v: (f"{v:.4g}" if isinstance(v, float) else str(v))
    return '\n'.join(['| ' + ' | '.join(df.columns) + ' |', '|' + '---|' * len(df.columns)] +
                     ['| ' + ' | '.join(fmt(v) for v in r) + ' |' for r in df.itertuples(index=False)])

def write(a, rows, rounds, vers, ours_np):
    res = pd.DataFrame(rows)[['n', 'job', 'tool', 'seconds', 'cpu_s', 'peak_mb', 'estimate', 'true_att', 'load1', 'rounds', 'note']]
    rat = pd.DataFrame(ratios(rows, rounds))
    cmd = '.venv/bin/python bench/matching_speed.py ' + ' '.join(sys.argv[1:])
    loads = [x['load1'] for x in rounds]
    hdr = (f"# Matching speed benchmark\n\nCommand: `{cmd}`\n\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared: "
           f"1-minute load average (`uptime`) from {min(loads):.1f} to {max(loads):.1f} during the run (column load1: before each cell's best round), so absolute times "
           f"are inflated and the ratios below, taken between tools of the same run, are what to read. Ours: {ours_np}. "
           f"Peers: {vers}. Jobs: `ps_repl` 1:1 ATT matching with replacement on the propensity score (probability scale); "
           f"`ps_repl_full` ours with bias correction and the Abadie-Imbens SE (tie_tol=0: see matching_worker.py); `ps_norepl` 1:1 without replacement (ours: greedy, "
           f"largest score first; causalml: random order); `maha` 1:1 Mahalanobis matching on the 10 covariates (exact nearest neighbours). Tool `numpy` is a bare "
           f"sorted search in the peers' numpy (argsort the controls, searchsorted the treated, take the nearer neighbour; no ties, no checks). "
           f"Seconds: the best of {a.rounds} rounds (Mahalanobis: {a.maha_rounds or a.rounds}; a cell whose first round took over {a.long:g} s, or failed, runs once), "
           f"each cell in its own process after an untimed warm-up call "
           f"(none for calls over 10 s), the cells in alternating order. Peak MB: increase of the process's peak RSS during the call "
           f"(0 = the call stayed below the peak reached while loading the data). Cells not run: causalml without replacement above --norepl-peer-max "
           f"(O(n^2) pandas loop: 164 s at 1e5 in an earlier run), DoWhy above --dowhy-max / --dowhy-maha-max, Mahalanobis above --maha-max, peers above --peer-max.\n\n")
    body = hdr + md_table(res) + '\n'
    if len(rat):
        body += ("\n## Ratios in this run (peer seconds / ours; > 1: ours is faster)\n\nratio_best: best peer time over best time of ours; "
                 "ratio_rounds: the same ratio within each round; ratio_cpu: the same from the CPU seconds of each process (all its threads), "
                 "which other load inflates less than wall time.\n\n" + md_table(rat) + '\n')
    open(a.out + '.md', 'w').write(body)
    json.dump(dict(command=cmd, machine=f"{platform.machine()}, {os.cpu_count()} cores", ours=ours_np, peers=vers,
                   rows=json.loads(res.to_json(orient='records')), rounds=json.loads(pd.DataFrame(rounds).to_json(orient='records')),
                   ratios=json.loads(rat.to_json(orient='records'))), open(a.out + '.json', 'w'), indent=1)
    print(res.to_string(index=False)); print(rat.to_string(index=False))

def load_rows(path):
    "The per-cell rows of a results file (this format, or the older list of rows)."
    d = json.loads(Path(path).read_text())
    return d['rows'] if isinstance(d, dict) else d

def compare(ref_rows, new_rows, threshold):
    """Each path of ours (n, job) in both runs, timed relative to its same-run reference (CALIBRATOR); returns (table, slower):
    slower lists the paths whose relative time grew by more than threshold. CPU seconds are compared where both runs have
    them (less sensitive to other load than wall time), wall seconds otherwise."""
    def rel(rows, key):
        b = {(r['n'], r['job'], r['tool']): r.get(key) for r in rows}
        b = {k: v for k, v in b.items() if v is not None and v == v and v > 0}
        return {(n, job): (s, b.get((n, 'ps_repl' if CALIBRATOR[job] == 'numpy' else job, CALIBRATOR[job])))
                for (n, job, tool), s in b.items() if tool == 'ours'}
    table, slower = [], []
    for key in sorted(set(rel(ref_rows, 'seconds')) & set(rel(new_rows, 'seconds'))):
        for clock in ('cpu_s', 'seconds'):
            r0, r1 = rel(ref_rows, clock), rel(new_rows, clock)
            if key in r0 and key in r1: break
        (s0, c0), (s1, c1) = r0[key], r1[key]
        if c0 and c1: change = (s1 / c1) / (s0 / c0) - 1; how = f"{'CPU' if clock == 'cpu_s' else 'wall'} time relative to {CALIBRATOR[key[1]]} in the same run"
        else: change = s1 / s0 - 1; how = f"raw {'CPU' if clock == 'cpu_s' else 'wall'} seconds (no same-run reference in both)"
        table.append(dict(n=key[0], job=key[1], ref_s=s0, new_s=s1, ref_calib_s=c0, new_calib_s=c1, change=change, basis=how))
        if change > threshold: slower.append(f"n={key[0]:,} {key[1]}: {100 * change:+.0f}% ({how})")
    return pd.DataFrame(table), slower

def main(argv=None):
    a = parse_args(argv)
    if a.against: new_rows = load_rows(a.against)
    else:
        rows, rounds, vers, ours_np = run(a)
        write(a, rows, rounds, vers, ours_np); new_rows = rows
    if not a.compare: return 0
    table, slower = compare(load_rows(a.compare), new_rows, a.threshold)
    if not len(table): print(f"no path of ours is in both {a.compare} and this run"); return 2
    print(f"\nComparison with {a.compare} (change of ours' time relative to the same-run reference; threshold {a.threshold:.0%}):")
    print(table.to_string(index=False, float_format=lambda v: f'{v:.4g}'))
    if slower: print('\nSLOWER by more than the threshold:\n  ' + '\n  '.join(slower)); return 1
    print('\nno path got slower by more than the threshold'); return 0

if __name__ == '__main__':
    sys.exit(main())

"""Estimation at scale: the in-memory estimators against map-reduce over Parquet parts on Dask (causal_llmrec.scale).

Command (from the repository root):
    .venv/bin/python bench/scale_bench.py --sizes 1e6 1e7 --workers 1 2 [--data /tmp/scale_bench] [--timeout 900]
Data: `causal_llmrec.scale.simulate_log` (seed 0): n impressions in parts of 10^6 rows over 2 days (hive partitions),
4 covariates, a logistic logging propensity, both potential outcomes' click probabilities; its true ATE/ATT.
Each cell runs in its own process, timed from the outside, peak RSS measured by /usr/bin/time -v (the driver) and, on Dask,
by each worker's getrusage (the largest worker and their sum); the cell's estimates are compared with the in-memory cell's.
Cells: 'memory' reads the log whole (only the needed columns; the memory check refuses a log that does not fit) and runs
weighting.ipw, scale.aipw_in_memory (2 folds) and matching.match on the logged propensity (ATT, k=1, var_matches=4);
'dask-W' runs scale.ipw_scale, aipw_scale and match_scale on an embedded LocalCluster of W single-threaded workers.
'check-data' runs the CLI's check-data on the folder of parts and on the same log as one Parquet file.
Writes bench/results/scale_bench.md and .json (or --out PATH without extension)."""
import argparse, json, os, subprocess, sys, time, platform, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', PYTHONHASHSEED='0', MPLBACKEND='Agg')
COVS = ['user_age', 'user_activity', 'item_popularity', 'item_age']

def cell(path, mode, workers):
    "One measured cell, run in this (child) process; prints a JSON line."
    import warnings, resource; warnings.simplefilter('ignore')
    import numpy as np
    from causal_llmrec import scale
    out = dict(mode=mode, workers=workers, times={}, est={})
    t0 = time.perf_counter()
    if mode == 'memory':
        from causal_llmrec.files import read_dataset
        from causal_llmrec.compute import LogTooLargeError
        from causal_llmrec.weighting import ipw
        from causal_llmrec.matching import match
        try: df = read_dataset(path, COVS + ['exposure', 'outcome', 'propensity'])
        except LogTooLargeError as e: out['refused'] = str(e).split(': the in-memory')[0].split(': ', 1)[1]; print('RESULT ' + json.dumps(out)); return
        out['times']['read'] = time.perf_counter() - t0
        t = time.perf_counter(); r = ipw(df, 'exposure', 'outcome', COVS); out['times']['ipw'] = time.perf_counter() - t; out['est']['ipw'] = [r.estimate, r.se]
        t = time.perf_counter(); a = scale.aipw_in_memory(df, 'exposure', 'outcome', COVS, n_folds=2); out['times']['aipw'] = time.perf_counter() - t; out['est']['aipw'] = list(a)
        t = time.perf_counter(); m = match(df, 'exposure', 'outcome', COVS, propensity=df['propensity']); out['times']['match'] = time.perf_counter() - t
        out['est']['match'] = [m.estimate, m.se]
    else:
        from causal_llmrec.compute import Engine
        with Engine(dict(engine='dask', n_workers=workers), verbose=False) as eng:
            out['times']['start'] = time.perf_counter() - t0
            t = time.perf_counter(); r = scale.ipw_scale(path, 'exposure', 'outcome', COVS, compute=eng); out['times']['ipw'] = time.perf_counter() - t; out['est']['ipw'] = [r.estimate, r.se]
            t = time.perf_counter(); a = scale.aipw_scale(path, 'exposure', 'outcome', COVS, n_folds=2, compute=eng); out['times']['aipw'] = time.perf_counter() - t; out['est']['aipw'] = [a.estimate, a.se]
            t = time.perf_counter(); m = scale.match_scale(path, 'exposure', 'outcome', score='propensity', compute=eng); out['times']['match'] = time.perf_counter() - t
            out['est']['match'] = [m.estimate, m.se]
            rss = eng.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            out['worker_peak_rss'] = max(rss.values()); out['workers_rss_sum'] = sum(rss.values())
    out['times']['total'] = time.perf_counter() - t0
    print('RESULT ' + json.dumps(out))

def timed(cmd, timeout):
    "Run a command under /usr/bin/time -v: (stdout, wall s, peak RSS bytes of the process itself, return code)."
    t = time.perf_counter()
    try: p = subprocess.run(['/usr/bin/time', '-v'] + cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired: return '', timeout, None, 'timeout'
    wall = time.perf_counter() - t
    m = re.search(r'Maximum resident set size \(kbytes\): (\d+)', p.stderr)
    return p.stdout, wall, int(m.group(1)) * 1024 if m else None, p.returncode if p.returncode == 0 else (p.returncode, p.stderr[-800:])

def single_file(folder, dest):
    "The log's parts as one Parquet file, written batch by batch."
    import pyarrow.dataset as ds, pyarrow.parquet as pq
    d = ds.dataset(str(folder), format='parquet', partitioning='hive'); w = None
    for b in d.to_batches(batch_size=1_000_000, use_threads=False):
        if w is None: w = pq.ParquetWriter(str(dest), b.schema)
        w.write_batch(b)
    w.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', nargs='+', type=float, default=[1e6])
    ap.add_argument('--workers', nargs='+', type=int, default=[1, 2])
    ap.add_argument('--data', default='/tmp/scale_bench')
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--skip-memory-above', type=float, default=float('inf'), help='do not run the in-memory cell above this many rows')
    ap.add_argument('--check-data', action='store_true', help='also time check-data on the largest size (folder and one file)')
    ap.add_argument('--only-check-data', action='store_true', help='keep the estimation cells of an earlier run (from the .json) and time check-data only')
    ap.add_argument('--out', default=str(ROOT / 'bench/results/scale_bench'))
    ap.add_argument('--cell', nargs=3, metavar=('PATH', 'MODE', 'WORKERS'))
    a = ap.parse_args()
    if a.cell: return cell(a.cell[0], a.cell[1], int(a.cell[2]))
    sys.path.insert(0, str(ROOT))
    from causal_llmrec.scale import simulate_log
    res = dict(command='.venv/bin/python bench/scale_bench.py ' + ' '.join(sys.argv[1:]), machine=platform.platform(), cpus=os.cpu_count(),
               load_before=os.getloadavg(), sizes={})
    prev = {}
    if Path(a.out + '.json').exists():
        old = json.loads(Path(a.out + '.json').read_text()); prev = old.get('sizes', {})
        if a.only_check_data: res.update(command=old['command'] + '; then ' + res['command'], load_before=old['load_before'])
    for n in map(int, a.sizes):
        folder = Path(a.data) / f'log_{n}'
        meta = folder.parent / f'log_{n}.json'
        if not meta.exists():
            t = time.perf_counter(); truth = simulate_log(folder, n_rows=n, seed=0, compute=dict(engine='dask', n_workers=2))
            truth['write_s'] = time.perf_counter() - t; meta.write_text(json.dumps(truth))
        truth = json.loads(meta.read_text())
        cells = prev.get(str(n), {}).get('cells', {}) if a.only_check_data else {}
        modes = [] if a.only_check_data else ([('memory', 0)] if n <= a.skip_memory_above else []) + [('dask', w) for w in a.workers]
        for mode, w in modes:
            load = os.getloadavg()
            out, wall, rss, rc = timed([sys.executable, str(Path(__file__).resolve()), '--cell', str(folder), mode, str(w)], a.timeout)
            line = next((l for l in out.splitlines() if l.startswith('RESULT ')), None)
            c = json.loads(line[7:]) if line else dict(mode=mode, workers=w, error=str(rc))
            c.update(wall_s=wall, driver_peak_rss=rss, load_1min_at_start=load[0])
            cells[f'{mode}-{w}' if mode == 'dask' else mode] = c
            print(n, mode, w, f'{wall:.1f}s', rss, c.get('est'), c.get('refused', ''), c.get('error', ''), flush=True)
        if 'memory' in cells and 'est' in cells['memory'] and cells['memory']['est']:
            for k, c in cells.items():
                if k != 'memory' and c.get('est'):
                    c['max_abs_diff_vs_memory'] = max(abs(x - y) for e in c['est'] for x, y in zip(c['est'][e], cells['memory']['est'][e]))
        entry = dict(truth=truth, cells=cells)
        if a.check_data and n == int(max(a.sizes)):
            one = folder.parent / f'log_{n}_one.parquet'
            if not one.exists(): single_file(folder, one)
            cd = {}
            for name, p in (('folder of parts', folder), ('one Parquet file', one)):
                spec = folder.parent / f"spec_{n}_{'parts' if p == folder else 'one'}.yaml"
                spec.write_text(f"interactions: {p}\ntreatment: exposure\n")
                out, wall, rss, rc = timed([str(ROOT / '.venv/bin/causal-llmrec'), 'check-data', str(spec)], a.timeout)
                probs = re.findall(r'^  - (.*)$', out, re.M)
                cd[name] = dict(wall_s=wall, peak_rss=rss, rc=rc if isinstance(rc, int) else rc[0] if isinstance(rc, tuple) else str(rc), ok='no problems found' in out,
                                problems=[re.sub(r'/\S*/', '', x)[:300] for x in probs])
                print('check-data', name, f'{wall:.1f}s', rss, cd[name]['ok'], flush=True)
            entry['check_data'] = cd
        prev[str(n)] = entry
    res['sizes'] = prev; res['load_after'] = os.getloadavg()
    Path(a.out + '.json').write_text(json.dumps(res, indent=1, default=str))
    write_md(res, a.out + '.md')

def write_md(res, path):
    L = ["# Estimation at scale: in memory vs map-reduce over Parquet parts on Dask", "",
         f"Command: `{res['command']}` (bench/scale_bench.py; the docstring says what each cell does). Machine: {res['machine']}, "
         f"{res['cpus']} cores shared with other engineers' jobs: 1-minute load {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after "
         "(load at each cell's start in the table). Wall times on a loaded 2-core machine are upper bounds, not speeds.", "",
         "Estimators: IPW (Hajek, logistic propensity on the 4 covariates), AIPW (2-fold cross-fitting, folds `fold_ids` of the row "
         "position, logistic propensity and per-arm logistic outcome models), matching on the logged propensity (ATT, k=1, "
         "Abadie-Imbens 2006 se with var_matches=4). 'max diff' is the largest absolute difference of any estimate or se from the "
         "in-memory cell's.", ""]
    for n, e in sorted(res['sizes'].items(), key=lambda x: int(x[0])):
        t = e['truth']
        L += [f"## {int(n):,} rows ({t['parts']} parts): true ATE {t['ate']:.5f}, ATT {t['att']:.5f}", "",
              "| cell | load | wall s | ipw s | aipw s | match s | peak RSS (time -v: the cell's largest process) | largest worker RSS | workers' RSS sum | IPW (se) | AIPW (se) | matching ATT (se) | max diff |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for k, c in e['cells'].items():
            gb = lambda b: f"{b / 1e9:.2f} GB" if b else '-'
            est = c.get('est') or {}
            f = lambda key: f"{est[key][0]:.5f} ({est[key][1]:.5f})" if key in est else '-'
            tm = c.get('times', {})
            note = c.get('refused') and f"refused by the memory check: {c['refused']}" or c.get('error', '')
            L.append(f"| {k} | {c.get('load_1min_at_start', 0):.1f} | {c['wall_s']:.1f} | {tm.get('ipw', float('nan')):.1f} | {tm.get('aipw', float('nan')):.1f} | "
                     f"{tm.get('match', float('nan')):.1f} | {gb(c.get('driver_peak_rss'))} | {gb(c.get('worker_peak_rss'))} | {gb(c.get('workers_rss_sum'))} | "
                     f"{f('ipw')} | {f('aipw')} | {f('match')} | {c['max_abs_diff_vs_memory']:.1e} |" if 'max_abs_diff_vs_memory' in c else
                     f"| {k} | {c.get('load_1min_at_start', 0):.1f} | {c['wall_s']:.1f} | {tm.get('ipw', float('nan')):.1f} | {tm.get('aipw', float('nan')):.1f} | "
                     f"{tm.get('match', float('nan')):.1f} | {gb(c.get('driver_peak_rss'))} | {gb(c.get('worker_peak_rss'))} | {gb(c.get('workers_rss_sum'))} | "
                     f"{f('ipw')} | {f('aipw')} | {f('match')} | {note or '-'} |")
        if 'check_data' in e:
            L += ["", "check-data (the CLI, streaming the log in batches of 10^6 rows):", "", "| log as | wall s | peak RSS | problems found |", "|---|---|---|---|"]
            for k, c in e['check_data'].items():
                pr = c.get('problems', [])
                L.append(f"| {k} | {c['wall_s']:.1f} | {(c['peak_rss'] or 0) / 1e9:.2f} GB | {len(pr)}" + (f", e.g. {pr[0]}" if pr else '') + " |")
            L += ["", "The simulated log draws (user, item) pairs at random, so a few pairs repeat: check-data reports them (treatment "
                  "'exposure' wants one row per pair), which is the point of the run: each problem names its part and rows."]
        L.append("")
    Path(path).write_text('\n'.join(L) + '\n')

if __name__ == '__main__': main()

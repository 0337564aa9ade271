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
Writes bench/results/scale_bench.md and .json (or --out PATH without extension).
--pipeline: the pipeline end to end on a files dataset (`simulate_log(..., tables=True)`), in memory until the estimate stage and on Dask
until estimate, recommend and evaluate (on Dask: the off-policy values of the recommend stage's lists, checked against
`scale.sim_policy_truth`); writes bench/results/scale_pipeline.md and .json:
    .venv/bin/python bench/scale_bench.py --pipeline --sizes 1e6 --workers 2 [--no-memory] [--check-data]
--memory-limit SIZE: with --pipeline, compute.memory_limit per Dask worker (default 'auto'); the cells also record each role's peak RSS
(the cell's own process, the largest worker), the tree's peak within each stage and a coarse timeline:
    nice -n 10 .venv/bin/python bench/scale_bench.py --pipeline --sizes 1e8 --workers 2 --no-memory --memory-limit 2.5GB --label 'memory_limit 2.5GB'
--ope RUN: the off-policy values (as the evaluate stage on Dask computes them) of a finished Dask run's lists, in a measured process:
    .venv/bin/python bench/scale_bench.py --pipeline --sizes 1e8 --workers 2 --no-memory --ope /tmp/scale_bench/run_100000000_dask2"""
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

# ---- the pipeline end to end (--pipeline): data, discover, estimate, train, recommend on a files dataset -------------------
PIPE_OUT = ROOT / 'bench/results/scale_pipeline'

def _dask(workers, mem=None):
    "The compute setting of a Dask cell: W workers, and compute.memory_limit per worker when given (else the default, 'auto')."
    return dict(engine='dask', n_workers=max(workers, 1), **({'memory_limit': mem} if mem else {}))

def pipeline_cell(ds, mode, workers, out, last='evaluate', mem=None):
    "One pipeline run in this (child) process: in memory until 'estimate', or on Dask until 'estimate' then 'recommend'; prints a JSON line."
    import warnings; warnings.simplefilter('ignore')
    import pandas as pd
    from causal_llmrec.pipeline import run_pipeline, PipelineConfig, check_compute
    from causal_llmrec.compute import LogTooLargeError
    comp = {} if mode == 'memory' else _dask(workers, mem)
    cfg = PipelineConfig.from_dict(dict(data={'source': 'files', 'path': ds}, estimate={'adjustment': 'all'}, compute=comp))
    res = dict(mode=mode, workers=workers, stages={})
    t0 = time.perf_counter()
    try:
        for until in (('estimate',) if mode == 'memory' else ('estimate', 'recommend', 'evaluate')[:('estimate', 'recommend', 'evaluate').index(last) + 1]):
            r = run_pipeline(out=out, config=cfg, until=until, progress=False)
            for s in r.stages.itertuples():
                if s.status == 'ran': res['stages'][s.stage] = s.seconds
    except LogTooLargeError as e:
        res['refused'] = str(e); res['refused_after_s'] = time.perf_counter() - t0; print('RESULT ' + json.dumps(res)); return
    res['total_s'] = time.perf_counter() - t0
    eff = pd.read_csv(Path(out) / 'estimate' / 'effects.csv')
    res['effects'] = eff[['method', 'estimand', 'estimate', 'se', 'ci_low', 'ci_high']].to_dict('records')
    summ = json.loads((Path(out) / 'estimate' / 'summary.json').read_text())
    res['max_abs_smd'] = [summ.get('max_abs_smd_before'), summ.get('max_abs_smd_after_weighting')]
    if (Path(out) / 'estimate' / 'balance.csv').exists(): res['balance'] = pd.read_csv(Path(out) / 'estimate' / 'balance.csv').to_dict('records')
    if mode != 'memory' and last != 'estimate':
        rec = pd.read_csv(Path(out) / 'recommend' / 'recommendations.csv')
        res['recommend'] = dict(users=int(rec.user_id.nunique()), rows=len(rec), mean_tau=float(rec.tau.mean()))
        res['data'] = {k: v for k, v in json.loads((Path(out) / 'data' / 'summary.json').read_text()).items() if k in ('n_pairs', 'exposure_rate', 'compute')}
        if last == 'evaluate': res['ope'] = ope_truth(ds, out, workers, mem=mem)
    print('RESULT ' + json.dumps(res, default=str))

def ope_truth(ds, out, workers, pv=None, mem=None):
    "The evaluate stage's policy values (policy_values.csv, or `pv`) with each policy's true value (`scale.sim_policy_truth`, timed apart)."
    import pandas as pd
    from causal_llmrec.scale import sim_policy_truth
    pv = pd.read_csv(Path(out) / 'evaluate' / 'policy_values.csv') if pv is None else pv
    rec = pd.read_csv(Path(out) / 'recommend' / 'recommendations.csv'); base = pd.read_csv(Path(out) / 'recommend' / 'baseline_outcome.csv')
    k = int(rec['rank'].max()); names = [n for n in pd.unique(pv.policy) if n != 'logged']
    pols = dict(zip(names, [rec[rec['rank'] <= k], base[base['rank'] <= k]]))
    t = time.perf_counter(); truth = sim_policy_truth(ds, pols, compute=_dask(workers, mem))
    rows = pv.assign(truth=pv.policy.map(truth).fillna(truth['logged']))
    rows['covered'] = (rows.ci_low <= rows.truth) & (rows.truth <= rows.ci_high)
    return dict(values=rows.to_dict('records'), truth=truth, truth_s=time.perf_counter() - t)

def ope_cell(ds, out, workers, mem=None):
    """The evaluate stage's computation on Dask (`pipeline._evaluate_on_dask`: `scale.policy_value_scale` of the recommend stage's
    two lists, logged propensities, the train stage's T-learner for DM/DR) on a finished run's folder, outside the runner; prints a JSON line."""
    import warnings; warnings.simplefilter('ignore')
    import pandas as pd
    from causal_llmrec import scale as SC
    from causal_llmrec.pipeline import _uplift_models
    from causal_llmrec.compute import Engine
    t0 = time.perf_counter()
    m = json.loads((Path(out) / 'train' / 'uplift_model.json').read_text()); covs = m['covariates']
    rec = pd.read_csv(Path(out) / 'recommend' / 'recommendations.csv'); base = pd.read_csv(Path(out) / 'recommend' / 'baseline_outcome.csv'); k = int(rec['rank'].max())
    pols = {f'top-{k} by uplift': rec[['user_id', 'item_id']], f'top-{k} by click probability (baseline)': base[['user_id', 'item_id']]}
    feats = {'user_id': pd.read_parquet(Path(ds) / 'users.parquet').set_index('user_id').add_prefix('user_'),
             'item_id': pd.read_parquet(Path(ds) / 'items.parquet').set_index('item_id').add_prefix('item_')}
    with Engine(_dask(workers, mem), verbose=False) as eng:
        pv = SC.policy_value_scale(Path(ds) / 'interactions', 'exposure', 'outcome', pols, propensity='propensity', covariates=covs,
                                   models=_uplift_models(m), compute=eng, features=feats)
    res = dict(mode='ope', workers=workers, stages={'off-policy (evaluate on dask)': time.perf_counter() - t0})
    res['ope'] = ope_truth(ds, out, workers, pv, mem=mem)
    print('RESULT ' + json.dumps(res, default=str))

def _role(proc, root_pid)->str:
    "A process of the tree by its part: 'driver' (the cell), 'dask worker', 'nanny' (the worker's parent), 'other'."
    try: cl = ' '.join(proc.cmdline())
    except Exception: return 'other'
    if 'spawn_main' in cl: return 'dask worker'
    if '--pcell' in cl or 'check-data' in cl: return 'driver'
    return 'other'

TREE = {}    # the last tree_timed run's peaks by role and its timeline (seconds, tree RSS, per-role RSS), filled by tree_timed

def tree_timed(cmd, timeout):
    """Run a command; wall s, the largest single process RSS (time -v) and the peak of the whole process tree's RSS sum (psutil, every 0.5 s).
    Also (in TREE): each role's peak (driver: the cell's own process with the scheduler; dask worker: the largest worker) and a timeline every ~5 s."""
    import psutil, threading
    t = time.perf_counter()
    p = subprocess.Popen(['/usr/bin/time', '-v'] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    peak = [0]; stop = threading.Event(); TREE.clear(); TREE.update(roles={}, timeline=[], start_epoch=time.time())
    def watch():
        try: root = psutil.Process(p.pid)
        except psutil.Error: return
        roles, last = {}, -10.0
        while not stop.is_set():
            try:
                ps = [root] + root.children(recursive=True); rs = {}
                for x in ps:
                    try: rs[x.pid] = (x.memory_info().rss, roles.setdefault(x.pid, _role(x, p.pid)) if x.pid != p.pid else 'time')
                    except psutil.Error: pass
                tot = sum(r for r, _ in rs.values()); peak[0] = max(peak[0], tot)
                by = {}
                for r, role in rs.values():
                    if role == 'time': continue
                    TREE['roles'][role] = max(TREE['roles'].get(role, 0), r); by[role] = max(by.get(role, 0), r)
                el = time.perf_counter() - t
                if el - last >= 5 or tot == peak[0]:
                    if TREE['timeline'] and el - last < 5: TREE['timeline'][-1] = [round(el, 1), tot] + [by.get(k, 0) for k in ('driver', 'dask worker')]
                    else: TREE['timeline'].append([round(el, 1), tot] + [by.get(k, 0) for k in ('driver', 'dask worker')]); last = el
            except psutil.Error: pass
            time.sleep(0.5)
    th = threading.Thread(target=watch, daemon=True); th.start()
    try: out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired: p.kill(); out, err = p.communicate(); stop.set(); return out, timeout, None, peak[0], 'timeout'
    stop.set(); wall = time.perf_counter() - t
    m = re.search(r'Maximum resident set size \(kbytes\): (\d+)', err)
    return out, wall, int(m.group(1)) * 1024 if m else None, peak[0], p.returncode if p.returncode == 0 else (p.returncode, err[-1500:])

def thin(tl, every=30.0)->list:
    "A timeline kept for the .json: one sample per `every` seconds, and the sample with the tree's peak; each as one string 'seconds tree driver worker' (bytes)."
    peak = max(tl, key=lambda r: r[1]) if tl else None; out, last = [], -every
    for r in tl:
        if r[0] - last >= every or r is peak: out.append(' '.join(str(x) for x in r)); last = r[0]
    return out

STAGES = ('data', 'discover', 'estimate', 'train', 'recommend', 'evaluate')

def stage_peaks(out, tree)->dict:
    """The process tree's RSS peak within each stage, from the timeline: a stage ends when its folder's last file was written
    (its mtime) and starts where the one before it ended (the first at the cell's start); a sample every ~5 s, so a shorter spike may be missed."""
    out = Path(out); t0 = tree.get('start_epoch'); tl = tree.get('timeline', []); res = {}; start = 0.0
    if t0 is None or not tl: return res
    for s in STAGES:
        d = out / s
        if not d.is_dir(): continue
        fs = [f.stat().st_mtime for f in d.rglob('*') if f.is_file()]
        if not fs: continue
        end = max(fs) - t0; xs = [r for r in tl if start <= r[0] <= end + 1]
        if xs: res[s] = dict(start_s=round(start, 1), end_s=round(end, 1), tree=max(r[1] for r in xs), driver=max(r[2] for r in xs), worker=max(r[3] for r in xs))
        start = end
    return res

def pipeline_main(a):
    import shutil
    from causal_llmrec.scale import simulate_log
    res = dict(command='.venv/bin/python bench/scale_bench.py ' + ' '.join(sys.argv[1:]), machine=platform.platform(), cpus=os.cpu_count(),
               load_before=os.getloadavg(), sizes={})
    if Path(str(PIPE_OUT) + '.json').exists():       # the earlier runs' cells are kept (a size run again is replaced cell by cell), and their commands
        old = json.loads(Path(str(PIPE_OUT) + '.json').read_text()); res['sizes'] = old.get('sizes', {})
        res['command'] = old.get('command', '') + '; ' + res['command']
    for n in map(int, a.sizes):
        ds = Path(a.data) / f'ds_{n}'; meta = Path(a.data) / f'ds_{n}.json'
        if not meta.exists():
            t = time.perf_counter(); truth = simulate_log(ds, n_rows=n, seed=0, tables=True, compute=dict(engine='dask', n_workers=2))
            truth['write_s'] = time.perf_counter() - t; meta.write_text(json.dumps(truth))
        truth = json.loads(meta.read_text()); print(n, 'truth', truth, flush=True)
        entry = res['sizes'].get(str(n), {}); entry['truth'] = truth; cells = entry.setdefault('cells', {}); ran = {}
        modes = ([('memory', 0)] if not a.no_memory else []) + [('dask', w) for w in a.workers if w > 0]   # --workers 0: the in-memory run only
        if a.ope: modes = [('ope', w) for w in a.workers if w > 0]
        for mode, w in modes:
            out = Path(a.ope) if mode == 'ope' else Path(a.data) / (f'run_{n}_{mode}{w}' + (('_' + re.sub(r'\W+', '_', a.label)) if a.label else ''))
            if mode != 'ope': shutil.rmtree(out, ignore_errors=True)
            load = os.getloadavg()
            o, wall, rss, tree, rc = tree_timed([sys.executable, str(Path(__file__).resolve()), '--pcell', str(ds), mode, str(w), str(out), '--until', a.until]
                                                + (['--memory-limit', a.memory_limit] if a.memory_limit else []), a.timeout)
            line = next((l for l in o.splitlines() if l.startswith('RESULT ')), None)
            c = json.loads(line[7:]) if line else dict(mode=mode, workers=w, error=str(rc))
            c.update(wall_s=wall, largest_process_rss=rss, tree_rss_peak=tree, load_1min_at_start=load[0], role_peaks=dict(TREE.get('roles', {})),
                     timeline=thin(TREE.get('timeline', [])), memory_limit=a.memory_limit or 'auto', stage_peaks=stage_peaks(out, TREE))
            key = (f'{mode}-{w}' if mode in ('dask', 'ope') else mode) + (f' ({a.label})' if a.label else ''); cells[key] = ran[key] = c
            print(n, mode, w, f'{wall:.1f}s', rss, tree, c.get('stages'), c.get('refused', '')[:200], c.get('error', '')[:1500], flush=True)
        if 'memory' in cells and cells['memory'].get('effects'):
            M = {e['method']: e for e in cells['memory']['effects']}
            for k, c in cells.items():
                if k != 'memory' and c.get('effects'):
                    c['diff_vs_memory'] = {e['method']: [e['estimate'] - M[e['method']]['estimate'], e['se'] - M[e['method']]['se']] for e in c['effects'] if e['method'] in M}
        if a.check_data:       # the command line's check-data on the files dataset (the data contract, streamed over the parts)
            load = os.getloadavg()
            o, wall, rss, tree, rc = tree_timed([str(ROOT / '.venv/bin/causal-llmrec'), 'check-data', str(ds)], a.timeout)
            entry['check_data'] = dict(wall_s=wall, largest_process_rss=rss, tree_rss_peak=tree, load_1min_at_start=load[0], ok='no problems found' in o,
                                       rc=rc if isinstance(rc, int) else str(rc)[:800], tail=o[-600:])
            print(n, 'check-data', f'{wall:.1f}s', rss, entry['check_data']['ok'], flush=True)
        if Path(str(PIPE_OUT) + '.json').exists():    # another invocation may have written meanwhile: merge this size's cells into the file as it is now
            now = json.loads(Path(str(PIPE_OUT) + '.json').read_text()); res['sizes'] = now.get('sizes', {})
            if now.get('command', '') and res['command'] not in now['command']: res['command'] = now['command'] + '; ' + res['command'].rsplit('; ', 1)[-1]
            cur = res['sizes'].get(str(n), {}); cur.setdefault('cells', {}).update(ran); cur['truth'] = truth     # only the cells this invocation ran
            for k in ('check_data',):
                if k in entry: cur[k] = entry[k]
            entry = cur
        res['sizes'][str(n)] = entry
        res['load_after'] = os.getloadavg()
        Path(str(PIPE_OUT) + '.json').write_text(json.dumps(res, indent=1, default=str)); write_pipeline_md(res, str(PIPE_OUT) + '.md')

def write_pipeline_md(res, path):
    L = ["# The pipeline on Dask: data, discover, estimate, train, recommend and the off-policy stage over a Parquet log's parts", "",
         f"Command: `{res['command']}` (bench/scale_bench.py --pipeline). Machine: {res['machine']}, {res['cpus']} cores shared with another "
         f"engineer's benchmarks: 1-minute load {res['load_before'][0]:.1f} before, {res.get('load_after', [float('nan')])[0]:.1f} after. Wall times are upper bounds.", "",
         "Data: `simulate_log(..., tables=True, seed=0)`: a files dataset (interactions/ as hive-partitioned Parquet parts of 10^6 rows with ids, "
         "exposure, outcome and the logged propensity, one row per (user, item) pair; users.parquet and items.parquet with the 4 covariates). "
         "Settings: `estimate.adjustment: all` (so both paths adjust for the same set), the rest default (ATT, matching k=1 with caliper 0.2, IPW, AIPW). "
         "'memory' runs the pipeline in memory until the estimate stage; 'dask-W' runs it with `compute.engine: dask`, W worker processes, until "
         "'estimate' and then 'recommend' (train on Dask is the T-learner; recommend ranks the whole catalogue for every user). "
         "RSS: the largest single process (time -v) and the peak of the whole process tree's sum (psutil, sampled every 0.5 s).", ""]
    for n, e in sorted(res['sizes'].items(), key=lambda x: int(x[0])):
        t = e['truth']
        L += [f"## {int(n):,} rows ({t['parts']} parts): true ATT {t['att']:.5f}, ATE {t['ate']:.5f}", "",
              "| cell | load | wall s | stage seconds | largest process RSS | process tree RSS peak | matching ATT (se) | IPW (se) | AIPW (se) | truth in CI | max abs diff vs memory (matching, IPW) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for k, c in e['cells'].items():
            gb = lambda b: f"{b / 1e9:.2f} GB" if b else '-'
            E = {x['method']: x for x in c.get('effects', [])}
            f = lambda m: f"{E[m]['estimate']:.5f} ({E[m]['se']:.5f})" if m in E else '-'
            cov = ', '.join(f"{m}: {'yes' if E[m]['ci_low'] <= t['att'] <= E[m]['ci_high'] else 'no'}" for m in ('matching', 'IPW', 'AIPW') if m in E)
            d = c.get('diff_vs_memory', {})
            dd = f"{max(abs(v) for m in ('matching', 'IPW', 'IPW (logged propensities)') if m in d for v in d[m]):.1e}" if d else '-'
            st = ', '.join(f"{s} {v:.0f}" for s, v in c.get('stages', {}).items())
            note = c.get('refused') and (f"refused after {c.get('refused_after_s', float('nan')):.2f} s: " + c['refused'][:600]) or ('failed, see below' if c.get('error') else '')
            L.append(f"| {k} | {c.get('load_1min_at_start', 0):.1f} | {c['wall_s']:.1f} | {st or note} | {gb(c.get('largest_process_rss'))} | {gb(c.get('tree_rss_peak'))} | "
                     f"{f('matching')} | {f('IPW')} | {f('AIPW')} | {cov or '-'} | {dd} |")
        for k, c in e['cells'].items():
            if c.get('note'): L.append(f"\n{k}: {c['note']}")
            if c.get('ope'):
                o = c['ope']
                L += [f"\n{k}: off-policy values (evaluate on Dask, `scale.policy_value_scale` over the parts; truth from `scale.sim_policy_truth` in {o['truth_s']:.0f} s; "
                      f"true value of showing nothing {o['truth']['none']:.5f}, of showing every logged pair {o['truth']['all']:.5f}):", "",
                      "| policy | estimator | value | se | 95% CI | truth | truth in CI | ess | pairs shown |", "|---|---|---|---|---|---|---|---|---|"]
                for v in o['values']:
                    sh = v.get('shown'); sh = '-' if sh is None or sh != sh else f"{int(sh):,}"
                    L.append(f"| {v['policy']} | {v['estimator']} | {v['value']:.5f} | {v['se']:.5f} | [{v['ci_low']:.5f}, {v['ci_high']:.5f}] | {v['truth']:.5f} | "
                             f"{'yes' if v['covered'] else 'no'} | {v['ess']:,.0f} | {sh} |")
            if c.get('recommend'): L.append(f"\n{k}: recommend wrote top-10 lists for {c['recommend']['users']:,} users (mean estimated uplift {c['recommend']['mean_tau']:+.4f}); "
                                            f"balance |SMD| max before {c['max_abs_smd'][0]:.3f}, after weighting {c['max_abs_smd'][1]:.3f}.")
            if c.get('role_peaks'):
                gb = lambda b: f"{b / 1e9:.2f} GB" if b else '-'; r = c['role_peaks']
                L.append(f"\n{k}: compute.memory_limit {c.get('memory_limit', 'auto')} per worker; peak RSS by process: the cell's own process (the runner, "
                         f"Dask's scheduler and client) {gb(r.get('driver'))}, the largest Dask worker {gb(r.get('dask worker'))}, others {gb(r.get('other'))}; "
                         "the process tree's peak within each stage (sampled every ~5 s; a stage runs from the previous stage's last file to its own):")
                sp = c.get('stage_peaks', {})
                if sp: L += ["", "| stage | seconds | tree RSS peak | cell's process | largest worker |", "|---|---|---|---|---|"] + [
                    f"| {s} | {('%.0f' % c['stages'][s]) if s in c.get('stages', {}) else '-'} | {gb(v['tree'])} | {gb(v['driver'])} | {gb(v['worker'])} |" for s, v in sp.items()]
        if e.get('check_data'):
            c = e['check_data']; gb = lambda b: f"{b / 1e9:.2f} GB" if b else '-'
            L.append(f"\ncheck-data (`causal-llmrec check-data DATASET`, the data contract streamed over the parts): {c['wall_s']:.0f} s, largest process "
                     f"{gb(c['largest_process_rss'])}, load {c['load_1min_at_start']:.1f}; {'no problems found' if c['ok'] else 'problems or failure: ' + str(c['rc'])[:300]}")
        for note in e.get('notes', []): L.append(f"\n{note}")
        L.append("")
    Path(path).write_text('\n'.join(L) + '\n')

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
    ap.add_argument('--pipeline', action='store_true', help='run the pipeline end to end (bench/results/scale_pipeline.md/.json) instead of the estimators')
    ap.add_argument('--no-memory', action='store_true', help='with --pipeline: skip the in-memory run')
    ap.add_argument('--pcell', nargs=4, metavar=('DATASET', 'MODE', 'WORKERS', 'OUT'))
    ap.add_argument('--until', default='evaluate', choices=['estimate', 'recommend', 'evaluate'], help='with --pipeline: the last Dask stage')
    ap.add_argument('--label', default='', help='with --pipeline: a label added to the cell names')
    ap.add_argument('--memory-limit', default='', help="with --pipeline: compute.memory_limit per Dask worker (e.g. '2.5GB'; default 'auto')")
    ap.add_argument('--ope', metavar='RUN', help='with --pipeline: only the off-policy values of a finished Dask run (RUN: its folder), in a measured process')
    a = ap.parse_args()
    if a.cell: return cell(a.cell[0], a.cell[1], int(a.cell[2]))
    if a.pcell:
        ds, mode, w, out = a.pcell
        return ope_cell(ds, out, int(w), a.memory_limit) if mode == 'ope' else pipeline_cell(ds, mode, int(w), out, a.until, a.memory_limit)
    if a.pipeline: sys.path.insert(0, str(ROOT)); return pipeline_main(a)
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

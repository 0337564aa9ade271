"""Discovery on the Open Bandit frame the pipeline uses: one node per dummy (before) vs one node per variable (after; issue 13).

    OMP_NUM_THREADS=1 .venv/bin/python bench/discovery_categorical.py --threads 1     # -> bench/results/discovery_categorical.*

Data: the Open Bandit sample shipped with `obp` (`bts` policy, all campaigns, 10,000 impressions), written out as a
user's own files and read through the data contract exactly as bench/obd_end_to_end.py does (`causal_llmrec.files`,
treatment `position`: top slot vs lower slots, rare_level_min 1). The frame is `RecData.frame()`; the covariates are
the pipeline's (`pipeline._covariates`: numeric, non-constant, not ids/exposure/outcome/propensity/position); the rows
are the pipeline's discover stage's: `DiscoverSettings.max_rows` (4,000) sampled with the run seed (0), covariates
constant in the sample dropped, the recommendation knowledge (`rec_knowledge`), threshold `DiscoverSettings.threshold`.

Runs:
- flat: what stage_discover did before issue 13: `learn_structure` on the flat frame (one node per dummy; 'auto' picks
  NOTEARS because the item price is continuous);
- grouped: `learn_structure(df, groups=recdata_groups(data, df.columns), n_bins=5)` with the knowledge over the
  variables: one node per categorical variable, the price cut into 5 quantile bins, 'auto' picks the hybrid learner;
- grouped_notears (--grouped-notears): the same groups, NOTEARS forced (sibling dummies tied, weights per variable).
Wall and CPU (process) seconds of the learn_structure call; a shared 2-core machine.
"""
import argparse, json, os, platform, sys, tempfile, textwrap, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def obd_files(folder:Path, policy:str='bts'):
    "The Open Bandit log as a user would export it (as bench/obd_end_to_end.py's write_files)."
    from causal_llmrec.data import load_open_bandit
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); d = load_open_bandit(policy, 'all')
    folder.mkdir(parents=True, exist_ok=True)
    d.interactions[['user_id', 'item_id', 'position', 'outcome', 'propensity', 'timestamp']].to_csv(folder/'impressions.csv', index=False)
    d.users.reset_index().to_csv(folder/'users.csv', index=False)
    d.items.reset_index().to_csv(folder/'items.csv', index=False)
    (folder/'data.yaml').write_text(textwrap.dedent('''\
        interactions: impressions.csv
        users: users.csv
        items: items.csv
        treatment: position
        rare_level_min: 1
    '''))


def discover_settings():
    "DiscoverSettings' defaults, read from causal_llmrec/settings.py's source (importing settings pulls in the BERT stack; reading the source keeps this bench independent of it)."
    import ast, types
    tree = ast.parse((ROOT/'causal_llmrec'/'settings.py').read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == 'DiscoverSettings')
    return types.SimpleNamespace(**{a.target.id: ast.literal_eval(a.value) for a in cls.body if isinstance(a, ast.AnnAssign)})


def pipeline_rows(data, seed:int):
    "The frame stage_discover learns from: covariates + exposure + outcome, max_rows sampled, constant columns dropped."
    import pandas as pd
    s = discover_settings()
    frame = data.frame()
    skip = {'user_id', 'item_id', 'exposure', 'outcome', 'propensity', 'timestamp', 'position', 'slate'}  # as pipeline._covariates
    covs = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 1]
    df = frame[covs + ['exposure', 'outcome']]
    if len(df) > s.max_rows: df = df.sample(s.max_rows, random_state=seed).reset_index(drop=True)
    const = [c for c in covs if df[c].nunique() < 2]
    return df.drop(columns=const), const, s


def run(name, df, learner_kw, knowledge, s, seed):
    from causal_llmrec import discovery as D
    w0, c0 = time.perf_counter(), time.process_time()
    cg = D.learn_structure(df, knowledge=knowledge, threshold=s.threshold, seed=seed, verbose=False, progress=False,
                           max_columns=s.max_columns, **learner_kw)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    try: adj, note = list(D.adjustment_set(cg, 'exposure', 'outcome', minimal=False)), ''
    except D.NoAdjustmentSetError as e: adj, note = [], str(e)
    cols = cg.frame_columns(adj)
    r = dict(run=name, learner=cg.method, nodes=len(cg.nodes), edges=cg.graph.number_of_edges(), seconds=round(wall, 2),
             cpu_seconds=round(cpu, 2), adjustment_set_size=len(adj), adjustment_columns=len(cols), adjustment_set=adj,
             adjustment_note=note, edge_list=[[str(u), str(v), round(float(d.get('weight', 0)), 4)] for u, v, d in cg.graph.edges(data=True)],
             removed_cycle_edges=len(cg.removed_cycle_edges))
    print(f"{name}: {cg.method}, {r['nodes']} nodes, {r['edges']} edges, {wall:.2f} s wall, {cpu:.2f} s CPU; "
          f"adjustment set {adj} -> {len(cols)} frame columns")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--n-bins', type=int, default=5)
    ap.add_argument('--grouped-notears', action='store_true')
    ap.add_argument('--skip-flat', action='store_true', help='only the grouped runs (the flat one takes minutes)')
    args = ap.parse_args()
    import torch; torch.set_num_threads(args.threads)
    from causal_llmrec import discovery as D
    from causal_llmrec.files import load_data
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        obd_files(Path(tmp)/'bts')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); data = load_data(Path(tmp)/'bts')
    df, const, s = pipeline_rows(data, args.seed)
    groups = D.recdata_groups(data, df.columns)
    print(f"frame: {len(df)} rows x {df.shape[1]} columns ({len(groups.columns)} dummies of {len(groups.variables)} variables); "
          f"left out as constant in the sample: {const}")
    runs = []
    if not args.skip_flat:
        runs.append(run('flat', df, {}, D.rec_knowledge(list(df.columns)), s, args.seed))
    kn = D.rec_knowledge(groups.nodes(df.columns))
    runs.append(run('grouped', df, dict(groups=groups, n_bins=args.n_bins), kn, s, args.seed))
    if args.grouped_notears:
        runs.append(run('grouped_notears', df, dict(groups=groups, method='notears'), kn, s, args.seed))
    cmd = ('OMP_NUM_THREADS=1 .venv/bin/python bench/discovery_categorical.py ' + ' '.join(sys.argv[1:])).strip()
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), torch threads {args.threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    out = dict(command=cmd, machine=machine, total_seconds=round(time.perf_counter() - t0, 1), rows=len(df), columns=df.shape[1],
               dummies=len(groups.columns), variables=groups.variables, constant_dropped=const, threshold=s.threshold,
               n_bins=args.n_bins, runs=runs)
    res = ROOT/'bench'/'results'
    (res/'discovery_categorical.json').write_text(json.dumps(out, indent=1))
    write_md(out, res/'discovery_categorical.md')


def write_md(out, path):
    L = [f"# Discovery on the Open Bandit frame: one node per dummy vs one per variable (issue 13)", '',
         f"Command: `{out['command']}`", '', f"Machine: {out['machine']}; total {out['total_seconds']} s.", '',
         f"Data: the Open Bandit `bts` sample read through the data contract (treatment `position`), the rows stage_discover uses: "
         f"{out['rows']:,} rows x {out['columns']} columns ({out['dummies']} dummy columns of {len(out['variables'])} categorical "
         f"variables, the item price, exposure, outcome); recommendation knowledge; threshold {out['threshold']} (NOTEARS only).", '',
         '| run | learner | nodes | edges | wall s | CPU s | adjustment set (nodes) | frame columns adjusted for |', '|---|---|---|---|---|---|---|---|']
    for r in out['runs']:
        L.append(f"| {r['run']} | {r['learner']} | {r['nodes']} | {r['edges']} | {r['seconds']} | {r['cpu_seconds']} | "
                 f"{r['adjustment_set_size']} | {r['adjustment_columns']} |")
    for r in out['runs']:
        L += ['', f"## Edges: {r['run']} ({r['learner']})", '']
        L += [f"- {u} -> {v} ({w:+.4f})" for u, v, w in sorted(r['edge_list'], key=lambda e: -abs(e[2]))[:40]]
        if len(r['edge_list']) > 40: L.append(f"- ... {len(r['edge_list']) - 40} more (in the JSON)")
        L.append('')
        L.append(f"Adjustment set (minimal=False): {r['adjustment_set'] or '(empty)'}" + (f"; {r['adjustment_note']}" if r['adjustment_note'] else ''))
    path.write_text('\n'.join(L) + '\n')
    print('\n'.join(L[:12 + len(out['runs'])]))


if __name__ == '__main__':
    main()

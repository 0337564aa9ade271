"""Structure-recovery benchmark for causal_llmrec.discovery (issues 3 and 17), not part of the default tests.

Issue 17 (discrete data, the hybrid learner against causal-learn's PC):

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/discovery_bench.py --suite discrete     # -> bench/results/discovery_discrete.*

five of pgmpy's bnlearn networks shipped with pgmpy (asia, sachs, child, insurance, alarm), n = 1,000 and 5,000,
sampling seeds 0, 1, 2 (the learner's settings were chosen on seeds 100-102, which are not scored). Methods: causal-learn
0.1.4's PC (PC-stable, chi-square, alpha 0.01; own venv) and learn_structure's defaults (method='auto', which picks
the hybrid for all-discrete data), with and without partial knowledge (true roots and sinks). CPU seconds are the
process time of the fit call on each side. Adjustment sets: for up to 15 (treatment, outcome) pairs per network with
the treatment an ancestor of the outcome in the true graph, the full backdoor set read off each learned graph
(`adjustment_set(minimal=False)`; PC's CPDAG is first extended to a DAG by orienting its undirected edges along a
topological order of its directed part) is checked in the true graph (`is_valid_adjustment`).

Issue 3 (the original suite, below):

    .venv/bin/python bench/discovery_bench.py            # everything (data, causal-learn PC peer, ours, report)
    .venv/bin/python bench/discovery_bench.py --only-small   # only n = 1000 data sets

Data: samples from pgmpy's bnlearn networks (asia, sachs, alarm; discrete) and from linear-Gaussian Erdos-Renyi DAGs
(d = 10, 20, 50; expected degree 2; weights +-U(0.5, 2); unit noise), n = 1000 and 10000, written as CSV to
--data-dir so that both sides read the same files. Methods:

- causalnex_default: CausalNex linear NOTEARS as it comes: raw (unscaled) encoded data, no knowledge, |w| > 0.3;
- module: learn_structure defaults (every encoded column standardized, |w| > 0.3), no knowledge;
- module+knowledge: the same with partial domain knowledge: the true root nodes as `roots` and the true leaf nodes
  as `sinks` (what one typically knows: demographics have no causes, the outcome causes nothing);
- module+knowledge+bootstrap: bootstrap_edges (n_boot resamples) with that knowledge, edges seen in >= 50%;
- pc (causal-learn 0.1.4, own venv from bench/peers-discovery.sh): PC-stable, alpha 0.01, Fisher-z (continuous) or
  chi-square (discrete). Its undirected CPDAG edges are scored as edges in both directions (SHD counts such a pair
  once; directed precision counts one wrong direction).

Discrete bnlearn data are one-hot encoded by the module (categories -> dummies; scored on the original variables).
Wall time is on a shared 2-core machine (other jobs were running); CPU seconds are given beside it.
Also: on the semi-synthetic MovieLens world (causal_llmrec.data.simulate), does the learned graph recover the
confounding paths (user features -> exposure, popularity -> exposure and outcome)?
"""
import argparse, json, os, subprocess, sys, time, warnings
from itertools import permutations
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from causal_llmrec.discovery import (DomainKnowledge, bootstrap_edges, graph_metrics, learn_structure, random_dag,
                                     rec_knowledge, sample_linear_sem, adjustment_set,
                                     is_valid_adjustment, NoAdjustmentSetError)

warnings.filterwarnings('ignore')


def bnlearn(name, n, seed=0):
    from pgmpy.utils import get_example_model
    from pgmpy.sampling import BayesianModelSampling
    m = get_example_model(name)
    df = BayesianModelSampling(m).forward_sample(size=n, seed=seed, show_progress=False)
    G = nx.DiGraph(); G.add_nodes_from(m.nodes); G.add_edges_from(m.edges)
    df = df[list(G.nodes)]
    # sampling can leave a rare state unseen or a column constant; constant columns are dropped (and reported)
    const = [c for c in df.columns if df[c].nunique() < 2]
    return df.drop(columns=const), G.subgraph([c for c in G.nodes if c not in const]).copy(), const


def datasets(only_small):
    ns = [1000] if only_small else [1000, 10000]
    out = []
    for n in ns:
        for name in ['asia', 'sachs', 'alarm']:
            out.append((f'{name}_n{n}', 'discrete', lambda name=name, n=n: bnlearn(name, n)))
        for d in [10, 20, 50]:
            def er(d=d, n=n):
                G = random_dag(d, expected_degree=2, seed=d)
                return sample_linear_sem(G, n, seed=1), G, []
            out.append((f'er{d}_n{n}', 'continuous', er))
    return out


def partial_knowledge(G):
    roots = [v for v in G.nodes if G.in_degree(v) == 0 and G.out_degree(v) > 0]
    sinks = [v for v in G.nodes if G.out_degree(v) == 0 and G.in_degree(v) > 0]
    return DomainKnowledge(roots=roots, sinks=sinks)


def to_md(df):
    "A markdown table without the tabulate package."
    cols = list(df.columns)
    lines = ['| ' + ' | '.join(map(str, cols)) + ' |', '|' + '---|' * len(cols)]
    lines += ['| ' + ' | '.join('' if pd.isna(v) else str(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(lines)


def timed(f):
    t0, c0 = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - t0, time.process_time() - c0


def score(name, method, learned, G, secs, cpu, extra=''):
    m = graph_metrics(learned, G)
    row = dict(data=name, method=method, d=G.number_of_nodes(), true_edges=m.n_true, learned_edges=m.n_learned,
               shd=m.shd, precision=round(m.precision, 3), recall=round(m.recall, 3), f1=round(m.f1, 3),
               skeleton_f1=round(m.skeleton_f1, 3), orientation=round(m.orientation_accuracy, 3),
               wall_s=round(secs, 1), cpu_s=round(cpu, 1), note=extra)
    print(json.dumps(row), flush=True)
    return row


def run_ours(name, df, G, n_boot, do_boot):
    rows = []
    cg, s, c = timed(lambda: learn_structure(df, standardize=False, threshold=0.3))
    rows.append(score(name, 'causalnex_default', cg, G, s, c))
    cg, s, c = timed(lambda: learn_structure(df))
    rows.append(score(name, 'module', cg, G, s, c))
    k = partial_knowledge(G)
    cg, s, c = timed(lambda: learn_structure(df, knowledge=k))
    rows.append(score(name, 'module+knowledge', cg, G, s, c, f'{len(k.roots)} roots, {len(k.sinks)} sinks'))
    if do_boot:
        st, s, c = timed(lambda: bootstrap_edges(df, n_boot=n_boot, knowledge=k, seed=0, progress=False))
        rows.append(score(name, 'module+knowledge+bootstrap', st.graph(0.5), G, s, c, f'n_boot={n_boot}, min_freq=0.5'))
    return rows


def run_pc(name, data_dir, G, peers_py):
    if peers_py is None: return []
    subprocess.run([str(peers_py), str(ROOT / 'bench' / 'discovery_peers.py'), str(data_dir), name], check=True)
    r = json.loads((data_dir / f'{name}.pc.json').read_text())
    L = nx.DiGraph(); L.add_nodes_from(G.nodes)
    L.add_edges_from(map(tuple, r['directed']))
    for a, b in r['undirected']: L.add_edge(a, b); L.add_edge(b, a)
    return [score(name, 'pc (causal-learn)', L, G, r['seconds'], r['cpu_seconds'],
                  f"{len(r['undirected'])} undirected, {r['test']}, alpha={r['alpha']}")]


def sim_world(n_users):
    from causal_llmrec.data import simulate
    w = simulate(n_users=n_users, seed=0)
    f = w.frame().drop(columns=['user_id', 'item_id'])
    T = w.true_graph()
    rows, paths = [], []
    k = rec_knowledge(f.columns)
    for label, kw in [('causalnex_default', dict(standardize=False)), ('module (no knowledge)', {}),
                      ('module+rec_knowledge', dict(knowledge=k)),
                      ('module, threshold 0.1', dict(threshold=0.1)),
                      ('module+rec_knowledge, threshold 0.1', dict(knowledge=k, threshold=0.1))]:
        cg, s, c = timed(lambda: learn_structure(f, **kw))
        rows.append(score(f'sim_movielens_n{len(f)}', label, cg, T, s, c))
        want = [(x, 'exposure') for x in ['user_age', 'user_activity', 'item_popularity', 'affinity']] + \
               [(x, 'outcome') for x in ['user_age', 'user_activity', 'item_popularity', 'affinity', 'user_female']] + \
               [('exposure', 'outcome')]
        try:
            adj = ' '.join(adjustment_set(cg, 'exposure', 'outcome', minimal=False))
            adj += ' (valid in truth)' if is_valid_adjustment(T, 'exposure', 'outcome',
                                                               adjustment_set(cg, 'exposure', 'outcome', minimal=False)) else ' (NOT valid in truth)'
        except NoAdjustmentSetError as e:
            adj = 'none: ' + str(e).split('(')[1].split(')')[0]
        paths.append(dict(method=label, adjustment_set_full=adj, **{f'{a}->{b}': ('yes' if cg.graph.has_edge(a, b) else
                                                          'reversed' if cg.graph.has_edge(b, a) else 'no')
                                            for a, b in want}))
    return rows, pd.DataFrame(paths)


# ------------------------------------------------------------------ issue 17: discrete networks, hybrid vs PC
DISCRETE_NETS = ['asia', 'sachs', 'child', 'insurance', 'alarm']


def pc_dag(L_directed, undirected, nodes):
    "A DAG from PC's output: its directed edges (cycles broken), undirected edges oriented along a topological order."
    D = nx.DiGraph(); D.add_nodes_from(nodes); D.add_edges_from(L_directed)
    while not nx.is_directed_acyclic_graph(D):
        D.remove_edge(*nx.find_cycle(D)[0])
    order = {v: i for i, v in enumerate(nx.lexicographical_topological_sort(D, key=str))}
    for a, b in undirected:
        u, v = (a, b) if order[a] < order[b] else (b, a)
        D.add_edge(u, v)
    return D


def adjustment_pairs(T, k=15, seed=0):
    pairs = sorted((t, y) for t, y in permutations(sorted(T.nodes, key=str), 2) if nx.has_path(T, t, y))
    rng = np.random.default_rng(seed)
    return [pairs[i] for i in sorted(rng.choice(len(pairs), size=min(k, len(pairs)), replace=False))]


def adjustment_valid(L, T, pairs):
    ok = 0
    for t, y in pairs:
        try:
            Z = adjustment_set(L, t, y, minimal=False)
            ok += is_valid_adjustment(T, t, y, Z)
        except NoAdjustmentSetError:
            pass
    return ok


def discrete_suite(a, peers_py, cmd):
    data_dir = Path(a.data_dir) / 'discrete'; data_dir.mkdir(parents=True, exist_ok=True)
    ns = [1000] if a.only_small else [1000, 5000]
    nets = a.networks or DISCRETE_NETS
    sets = []
    for name in nets:
        for n in ns:
            for seed in a.seeds:
                df, G, const = bnlearn(name, n, seed)
                key = f'{name}_n{n}_s{seed}'
                df.to_csv(data_dir / f'{key}.csv', index=False)
                (data_dir / f'{key}.json').write_text(json.dumps(dict(kind='discrete')))
                sets.append((key, name, n, seed, df, G, const))
    if peers_py is not None:
        subprocess.run([str(peers_py), str(ROOT / 'bench' / 'discovery_peers.py'), str(data_dir)] + [s[0] for s in sets], check=True)
    rows = []
    for key, name, n, seed, df, G, const in sets:
        pairs = adjustment_pairs(G, seed=seed)
        base = dict(network=name, n=int(n), seed=int(seed), d=G.number_of_nodes(), true_edges=G.number_of_edges(), n_pairs=len(pairs),
                    constant_dropped=','.join(const))
        if peers_py is not None:
            r = json.loads((data_dir / f'{key}.pc.json').read_text())
            L = nx.DiGraph(); L.add_nodes_from(G.nodes); L.add_edges_from(map(tuple, r['directed']))
            for u, v in r['undirected']: L.add_edge(u, v); L.add_edge(v, u)
            m = graph_metrics(L, G)
            rows.append(dict(base, method='pc (causal-learn)', shd=m.shd, skeleton_f1=round(m.skeleton_f1, 3),
                             learned_edges=m.n_learned, cpu_s=r['cpu_seconds'], wall_s=r['seconds'],
                             adj_valid=adjustment_valid(pc_dag(r['directed'], r['undirected'], list(G.nodes)), G, pairs)))
        for label, kw in [('module (auto -> hybrid)', {}), ('module+knowledge', dict(knowledge=partial_knowledge(G)))]:
            t0, c0 = time.perf_counter(), time.process_time()
            cg = learn_structure(df, verbose=False, progress=False, **kw)
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            m = graph_metrics(cg, G)
            rows.append(dict(base, method=label, shd=m.shd, skeleton_f1=round(m.skeleton_f1, 3), learned_edges=m.n_learned,
                             cpu_s=cpu, wall_s=secs, adj_valid=adjustment_valid(cg.graph, G, pairs)))
        print(' | '.join(f"{r['method']}: SHD {r['shd']} cpu {r['cpu_s']:.2f}s adj {r['adj_valid']}/{r['n_pairs']}"
                         for r in rows if r['network'] == name and r['n'] == n and r['seed'] == seed), f'<- {key}', flush=True)
    res = pd.DataFrame(rows)
    g = res.groupby(['network', 'n', 'method'], sort=False)
    summ = g.agg(shd_mean=('shd', 'mean'), shd_sd=('shd', 'std'), cpu_mean=('cpu_s', 'mean'),
                 adj_valid=('adj_valid', 'sum'), adj_pairs=('n_pairs', 'sum')).reset_index()
    out_rows = []
    for (net, n), blk in res.groupby(['network', 'n'], sort=False):
        pc = blk[blk.method == 'pc (causal-learn)'].set_index('seed')
        for meth in blk.method.unique():
            b = blk[blk.method == meth].set_index('seed')
            s = summ[(summ.network == net) & (summ.n == n) & (summ.method == meth)].iloc[0]
            out_rows.append(dict(network=net, n=int(n), method=meth, shd=f"{s.shd_mean:.1f} ± {s.shd_sd:.1f}",
                                 shd_per_seed=' '.join(str(int(x)) for x in b.shd),
                                 seeds_at_or_below_pc=(f"{int((b.shd <= pc.shd).sum())}/{len(b)}" if len(pc) else ''),
                                 cpu_s=round(s.cpu_mean, 3),
                                 cpu_vs_pc=(round(s.cpu_mean / pc.cpu_s.mean(), 2) if len(pc) and pc.cpu_s.mean() > 0 else None),
                                 adj_valid=f"{int(s.adj_valid)}/{int(s.adj_pairs)}"))
    table = pd.DataFrame(out_rows)
    print(table.to_string(), flush=True)
    ours = res[res.method == 'module (auto -> hybrid)'].set_index(['network', 'n', 'seed'])
    pcs = res[res.method == 'pc (causal-learn)'].set_index(['network', 'n', 'seed'])
    verdict = []
    if len(pcs):
        worse = ours.shd[ours.shd > pcs.shd]
        mean_ok = (ours.groupby(['network', 'n']).shd.mean() <= pcs.groupby(['network', 'n']).shd.mean())
        cpu_ratio = ours.groupby(['network', 'n']).cpu_s.mean() / pcs.groupby(['network', 'n']).cpu_s.mean()
        verdict = [f"- mean SHD at or below PC's on {int(mean_ok.sum())}/{len(mean_ok)} network x n cells; "
                   f"per seed on {int((ours.shd <= pcs.shd).sum())}/{len(ours)} data sets"
                   + (f" (above PC's: {', '.join(f'{k[0]} n={k[1]} seed {k[2]}: {ours.shd[k]} vs {pcs.shd[k]}' for k in worse.index)})" if len(worse) else ''),
                   f"- CPU time / PC's CPU time per cell (mean over seeds): min {cpu_ratio.min():.2f}, max {cpu_ratio.max():.2f} "
                   f"({', '.join(f'{k[0]} n={k[1]}: {v:.2f}' for k, v in cpu_ratio.items())})",
                   f"- adjustment sets valid in the true graph: module {int(ours.adj_valid.sum())}/{int(ours.n_pairs.sum())}, "
                   f"PC {int(pcs.adj_valid.sum())}/{int(pcs.n_pairs.sum())}"]
        for v in verdict: print(v, flush=True)
    out = Path(a.out + '_discrete') if not a.out.endswith('_discrete') else Path(a.out)
    md = ['# Discrete structure recovery: the hybrid learner against causal-learn\'s PC (issue 17)', '',
          f'Command: `{cmd}`', '',
          f'Run {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on a {os.cpu_count()}-core CPU machine shared with other jobs '
          f'(load average {os.getloadavg()[0]:.1f} at the end; OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}). '
          'SHD: mean ± sd over the sampling seeds (PC\'s undirected edges count as one error each). cpu_s: process time of the '
          'fit. adj_valid: full backdoor sets read off the learned graph that are valid in the true graph, summed over seeds. '
          'See the docstring of bench/discovery_bench.py.', '', 'Verdict:', ''] + verdict + ['', to_md(table), '', '## Every run', '',
          to_md(res.assign(cpu_s=res.cpu_s.round(3), wall_s=res.wall_s.round(3))), '']
    Path(str(out) + '.md').write_text('\n'.join(md))
    Path(str(out) + '.json').write_text(json.dumps(dict(command=cmd, rows=res.to_dict('records'), summary=out_rows,
                                                        verdict=verdict), indent=1, default=float))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default='/tmp/discovery-bench-data')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'discovery'))
    ap.add_argument('--only-small', action='store_true', help='only the n = 1000 data sets')
    ap.add_argument('--n-boot', type=int, default=5)
    ap.add_argument('--boot-max-d', type=int, default=20, help='bootstrap only data sets with at most this many columns')
    ap.add_argument('--sim-users', type=int, default=200)
    ap.add_argument('--no-peers', action='store_true')
    ap.add_argument('--sim-only', action='store_true', help='only the semi-synthetic MovieLens world')
    ap.add_argument('--names', nargs='*', help='only these data sets (e.g. er10_n1000 asia_n10000)')
    ap.add_argument('--no-sim', action='store_true', help='skip the semi-synthetic MovieLens world')
    ap.add_argument('--resume', action='store_true', help='keep the rows of data sets already in the results json and skip them')
    ap.add_argument('--notears-max-cells', type=float, default=float('inf'),
                    help='skip the NOTEARS methods (the PC peer still runs) when n x encoded columns exceeds this')
    ap.add_argument('--suite', choices=['issue3', 'discrete'], default='issue3',
                    help="'discrete': issue 17's bnlearn networks against PC (results in OUT_discrete.*)")
    ap.add_argument('--networks', nargs='*', help='discrete suite: only these networks')
    ap.add_argument('--seeds', nargs='*', type=int, default=[0, 1, 2], help='discrete suite: sampling seeds')
    a = ap.parse_args()
    cmd = '.venv/bin/python bench/discovery_bench.py ' + ' '.join(sys.argv[1:])
    if a.suite == 'discrete':
        peers_py = None
        if not a.no_peers:
            subprocess.run(['bash', str(ROOT / 'bench' / 'peers-discovery.sh')], check=True)
            peers_py = ROOT / '.bench-venv-discovery' / 'bin' / 'python'
        return discrete_suite(a, peers_py, cmd)
    load0 = os.getloadavg()[0]
    data_dir = Path(a.data_dir); data_dir.mkdir(parents=True, exist_ok=True)
    peers_py = None
    if not (a.no_peers or a.sim_only):
        subprocess.run(['bash', str(ROOT / 'bench' / 'peers-discovery.sh')], check=True)
        peers_py = ROOT / '.bench-venv-discovery' / 'bin' / 'python'
    rows, notes = [], []
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if a.resume and Path(str(out) + '.json').exists():
        old = json.loads(Path(str(out) + '.json').read_text())
        rows = [r for r in old['rows'] if not r['data'].startswith('sim_')]; notes = old.get('notes', [])
        done = {r['data'] for r in rows}
        notes.append(f'- resumed: the rows of {sorted(done)} come from the interrupted run `{old["command"]}`')

    def write(sim_paths=None):
        res = pd.DataFrame(rows)
        md = [f'# Structure recovery benchmark (issue 3)', '', f'Command: `{cmd}`', '',
              f'Run {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on a {os.cpu_count()}-core CPU machine '
              f'(load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} when this file was written: other jobs '
              'inflate wall_s; cpu_s is this process\'s CPU time; OMP_NUM_THREADS=' + os.environ.get('OMP_NUM_THREADS', 'unset') + '). See the docstring of bench/discovery_bench.py for the methods.', '']
        md += notes + ([''] if notes else [])
        if len(res): md += [to_md(res), '']
        if sim_paths is not None:
            md += ['## Semi-synthetic MovieLens world: confounding paths recovered', '',
                   'Cells: yes = the edge is in the learned graph, reversed = only b -> a, no = absent.', '',
                   to_md(sim_paths), '']
        Path(str(out) + '.md').write_text('\n'.join(md))
        Path(str(out) + '.json').write_text(json.dumps(dict(command=cmd, rows=rows,
                                                            sim_paths=None if sim_paths is None else sim_paths.to_dict('records'),
                                                            notes=notes), indent=1))

    for name, kind, make in ([] if a.sim_only else datasets(a.only_small)):
        if a.names and name not in a.names: continue
        if name in done: continue
        df, G, const = make()
        if const: notes.append(f'- {name}: constant columns dropped after sampling: {const}')
        df.to_csv(data_dir / f'{name}.csv', index=False)
        (data_dir / f'{name}.json').write_text(json.dumps(dict(kind=kind)))
        print(f'== {name}: n={len(df)}, d={df.shape[1]}, true edges {G.number_of_edges()}', flush=True)
        rows += run_pc(name, data_dir, G, peers_py)
        d_enc = pd.get_dummies(df.astype(str), drop_first=True).shape[1] if kind == 'discrete' else df.shape[1]
        if len(df) * d_enc > a.notears_max_cells:
            notes.append(f'- {name}: NOTEARS methods skipped (n x encoded columns = {len(df)} x {d_enc} > --notears-max-cells '
                         f'{a.notears_max_cells:g}); only the PC peer ran')
        else:
            rows += run_ours(name, df, G, a.n_boot, df.shape[1] <= a.boot_max_d)
        write()
    if a.no_sim: return
    srows, paths = sim_world(a.sim_users)
    rows += srows
    print(paths.to_string(), flush=True)
    write(paths)


if __name__ == '__main__':
    main()

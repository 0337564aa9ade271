"""Time the two end-to-end examples of issue 13 from the command line, with no Python: the Open Bandit sample (obd)
and MovieLens-100K as real ratings (movielens), judged without a known truth.

For each example the console script runs exactly as the docs page (nbs/09_examples.ipynb) tells a reader:

    causal-llmrec example-data NAME DIR/data
    causal-llmrec check-data DIR/data
    causal-llmrec demo --data DIR/data --config DIR/data/config.yaml --out DIR/run

each in a subprocess, the last one into a fresh folder with its progress output (stderr) captured. Recorded: the wall
and CPU time, the load average of the shared machine before and after, the stages' seconds and headlines from the
run's manifest, what check-data printed, the report's findings (its summary section), key numbers, and a screenshot of
the report in headless Chromium (nbs/images/cli_example_NAME.png, used by the docs page). Writes
bench/results/cli_examples.md and .json.

    .venv/bin/python bench/cli_examples.py [--examples obd movielens] [--threads 1]
"""
import argparse, json, os, platform, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'bench'/'results'
IMAGES = ROOT/'nbs'/'images'
EXE = Path(sys.executable).with_name('causal-llmrec')
LIMIT = 10*60                       # issue 13: each example under 10 minutes on 2 CPU cores


def cli(args, env, **kw):
    "Run the console script; return (CompletedProcess, wall seconds, CPU seconds of the child)."
    c0, t0 = os.times(), time.perf_counter()
    r = subprocess.run([str(EXE)] + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=ROOT, **kw)
    wall, c1 = time.perf_counter() - t0, os.times()
    return r, wall, (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)


def stage_lines(stderr:str)->list:
    "The pipeline's stage log lines (`[stage] done in ...`, warnings) from the progress output, without the bars."
    out = []
    for part in re.split(r'[\r\n]', stderr):
        m = re.search(r'(\[[a-z]+\] .*|warning: .*)', part)
        if m and m.group(1).strip() not in out: out.append(m.group(1).strip())
    return out


def findings(report:Path)->dict:
    "What the report says: its sections, the summary's sentences, its figures."
    from bs4 import BeautifulSoup
    s = BeautifulSoup(report.read_text(), 'html.parser')
    return dict(sections=[x.get('id') for x in s.find_all('section')],
                summary=[li.get_text(' ', strip=True) for li in s.select('#summary li')],
                figures=[i.get('alt') for i in s.find_all('img')])


def screenshot(report:Path, dest:Path):
    "A screenshot of the report in headless Chromium, and how many of its figures rendered; None when Chromium is absent."
    sys.path.insert(0, str(ROOT/'tools'))
    from docs.browser import find_chromium, headless_dom
    if find_chromium() is None: return None
    from bs4 import BeautifulSoup
    dom = BeautifulSoup(headless_dom(report, screenshot=dest, size=(1280, 2400)), 'html.parser')
    loaded = dom.body.get('data-images-loaded') if dom.body else None
    return dict(png=str(dest.relative_to(ROOT)), bytes=dest.stat().st_size, images_loaded=loaded)


def key_numbers(run:Path)->dict:
    "The numbers the docs quote: effect estimates, held-out AUUC/Qini, AUCs, refutations, sanity warnings."
    import pandas as pd
    met = json.loads((run/'evaluate'/'metrics.json').read_text())
    eff = {}
    for st in ('estimate', 'train'):
        for r in pd.read_csv(run/st/'effects.csv').itertuples():
            eff[f"{st}: {r.estimand} {r.method}"] = [float(r.estimate), float(r.ci_low), float(r.ci_high)]
    keep = ('note', 'n_test_users', 'n_test_pairs', 'auc_propensity', 'auc_outcome', 'auuc_uplift', 'qini_uplift', 'refutations_passed', 'warnings')
    return dict(effects=eff, metrics={k: met.get(k) for k in keep}, refutations=met.get('refutations'))


def example(name:str, folder:Path, env:dict)->dict:
    data, run = folder/'data', folder/'run'
    if folder.exists(): shutil.rmtree(folder)
    w, t_write, _ = cli(['example-data', name, data], env)
    assert w.returncode == 0, w.stderr
    chk, _, _ = cli(['check-data', data], env)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    cmd = ['demo', '--data', data, '--config', data/'config.yaml', '--out', run]
    load0 = os.getloadavg()
    r, wall, cpu = cli(cmd, env)
    load1 = os.getloadavg()
    (RESULTS/f'cli_examples_{name}.log').write_text(r.stderr.replace(str(ROOT) + '/', ''))   # no machine paths
    if r.returncode != 0: raise SystemExit(f"{name}: exit status {r.returncode}\n{r.stderr[-3000:]}")
    man = json.loads((run/'manifest.json').read_text())['stages']
    rel = lambda p: str(Path(p).relative_to(ROOT)) if str(p).startswith(str(ROOT)) else str(p)
    shot = screenshot(run/'report.html', IMAGES/f'cli_example_{name}.png')
    return dict(name=name, commands=[f"causal-llmrec example-data {name} {rel(data)}", f"causal-llmrec check-data {rel(data)}",
                                     'causal-llmrec ' + ' '.join(rel(a) if isinstance(a, Path) else a for a in cmd)],
                date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), example_data=w.stdout.replace(str(data), rel(data)), write_seconds=round(t_write, 1),
                data_spec=(data/'data.yaml').read_text(), config=(data/'config.yaml').read_text(),
                check_data=chk.stdout.replace(str(data), rel(data)),
                wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1), load_avg_start=[round(x, 1) for x in load0],
                load_avg_end=[round(x, 1) for x in load1], limit_seconds=LIMIT, within_limit=wall < LIMIT,
                stage_seconds={k: v['seconds'] for k, v in man.items()},
                headlines={k: (v.get('summary') or {}).get('headline') for k, v in man.items()},
                progress=stage_lines(r.stderr), progress_log=rel(RESULTS/f'cli_examples_{name}.log'),
                report=findings(run/'report.html'), screenshot=shot, **key_numbers(run))


def markdown(info:dict)->str:
    L = ['# The end-to-end examples from the command line (issue 13)', '', f"Command: `{info['command']}`  ", f"Date: {info['date']}  ",
         f"Machine: {info['machine']}", '',
         'Each example runs the console script as the docs page (nbs/09_examples.ipynb) tells a reader, into a fresh folder. '
         'Wall time is what a user waits; CPU time is the run\'s own user+system time. The machine\'s 2 cores are shared '
         'with other work: the load average (1, 5, 15 min) before and after each run shows how busy it was, and a load above 2 '
         'means the run waited for a core part of the time.', '',
         '| example | wall time | CPU time | load avg before / after | limit | stages (s) |', '|---|---|---|---|---|---|']
    for r in info['examples']:
        st = ', '.join(f"{k} {v:.0f}" for k, v in r['stage_seconds'].items())
        L.append(f"| {r['name']} | {r['wall_seconds']/60:.1f} min ({r['wall_seconds']:.0f} s) | {r['cpu_seconds']/60:.1f} min | "
                 f"{', '.join(map(str, r['load_avg_start']))} / {', '.join(map(str, r['load_avg_end']))} | 10 min: "
                 f"{'within' if r['within_limit'] else 'EXCEEDED'} | {st} |")
    for r in info['examples']:
        L += ['', f"## {r['name']}", '', f"Run {r['date']}; code: {r.get('code', '?')}." + (f" {r['note']}" if r.get('note') else ''), '', 'Commands:', '', '```sh'] + r['commands'] + ['```', '', 'Data spec (`data.yaml`):', '', '```yaml',
              r['data_spec'].rstrip(), '```', '', 'Settings (`config.yaml`):', '', '```yaml', r['config'].rstrip(), '```', '',
              'check-data printed:', '', '```', r['check_data'].rstrip(), '```', '', 'Stage headlines (from the manifest):', '']
        L += [f"- {k} ({r['stage_seconds'][k]:.0f} s): {h}" for k, h in r['headlines'].items()]
        L += ['', 'Effect estimates:', '', '| estimate | value | 95% CI |', '|---|---|---|']
        L += [f"| {k} | {v[0]:+.4f} | [{v[1]:+.4f}, {v[2]:+.4f}] |" for k, v in r['effects'].items()]
        L += ['', 'Held-out evaluation without truth:', '', '```json', json.dumps(r['metrics'], indent=1), '```', '',
              'What the report says (its summary section):', '']
        L += [f"- {s}" for s in r['report']['summary']]
        L += ['', f"Report sections: {', '.join(r['report']['sections'])}; figures: {', '.join(r['report']['figures'])}."]
        sh = r['screenshot']
        L += ['', f"Screenshot: `{sh['png']}` (figures rendered in headless Chromium: {sh['images_loaded']})" if sh else 'Screenshot: skipped (no Chromium).']
    return '\n'.join(L) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--examples', nargs='+', default=['obd', 'movielens'], choices=['obd', 'movielens'])
    ap.add_argument('--threads', type=int, default=1, help='OMP/MKL threads of the runs (torch follows OMP_NUM_THREADS); the machine is shared')
    ap.add_argument('--out', default=str(ROOT/'runs'/'cli-examples'), help='folder of the example folders')
    ap.add_argument('--note', default='', help='a sentence on the code or the machine that the results should carry')
    a = ap.parse_args()
    env = {**os.environ, 'PYTHONHASHSEED': '0', 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false',
           'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': str(a.threads), 'MKL_NUM_THREADS': str(a.threads)}
    RESULTS.mkdir(parents=True, exist_ok=True); IMAGES.mkdir(parents=True, exist_ok=True)
    old = json.loads((RESULTS/'cli_examples.json').read_text()) if (RESULTS/'cli_examples.json').exists() else {}
    done = {r['name']: r for r in old.get('examples', []) if r['name'] not in a.examples}    # keep the examples not rerun
    code = subprocess.run([sys.executable, '-c', 'import causal_llmrec; print(causal_llmrec.__file__)'], capture_output=True, text=True, env=env,
                          cwd=Path(EXE).parent).stdout.strip()      # as the console script resolves it (its folder first, then PYTHONPATH)
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    for n in a.examples:
        done[n] = example(n, Path(a.out)/n, env)
        done[n].update(code=f"causal_llmrec from {code.replace(str(ROOT) + '/', '')} (repository HEAD {head})" + (f"; PYTHONPATH={os.environ['PYTHONPATH']}" if os.environ.get('PYTHONPATH') else ''), note=a.note)
        print(f"{n}: {done[n]['wall_seconds']:.0f} s", flush=True)
    info = dict(command='.venv/bin/python bench/cli_examples.py ' + ' '.join(sys.argv[1:]), date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                machine=f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), OMP_NUM_THREADS={a.threads}, Python {platform.python_version()}",
                examples=[done[n] for n in ('obd', 'movielens') if n in done])
    (RESULTS/'cli_examples.json').write_text(json.dumps(info, indent=1, default=str))
    md = markdown(info); (RESULTS/'cli_examples.md').write_text(md); print(md)


if __name__ == '__main__':
    main()

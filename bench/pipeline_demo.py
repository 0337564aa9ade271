"""Time `causal-llmrec demo` (the README's main job) on this machine, default and --quick settings.

Runs the console script exactly as `make demo` does, each into a fresh folder, and records the wall time, the
per-stage times from the run's manifest, the headline metrics, and a screenshot of the report (bench/report.png,
headless Chromium). Writes bench/results/pipeline_demo.md and .json.

    .venv/bin/python bench/pipeline_demo.py            # both runs
    .venv/bin/python bench/pipeline_demo.py --quick    # the --quick run only
"""
import argparse, json, os, platform, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXE = Path(sys.executable).with_name("causal-llmrec")
ENV = {**os.environ, "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}
LIMITS = {"default": 15 * 60, "quick": 3 * 60}


def run(name, out, extra):
    if out.exists(): shutil.rmtree(out)
    cmd = [str(EXE), "demo", "--out", str(out), "--no-progress"] + extra
    load0 = os.getloadavg()[0]
    c0 = os.times()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    load1 = os.getloadavg()[0]
    if r.returncode != 0:
        print(r.stdout, r.stderr, file=sys.stderr)
        raise SystemExit(f"{name}: exit status {r.returncode}")
    man = json.loads((out / "manifest.json").read_text())
    met = json.loads((out / "evaluate" / "metrics.json").read_text()) if (out / "evaluate" / "metrics.json").exists() else {}
    stages = {k: v["seconds"] for k, v in man["stages"].items()}
    eff = {}
    for st_ in ("estimate", "train"):
        p = out / st_ / "effects.csv"
        if p.exists():
            import pandas as pd
            for r_ in pd.read_csv(p).itertuples(): eff[f"{st_}: {r_.estimand} {r_.method}"] = [r_.estimate, r_.ci_low, r_.ci_high]
    return dict(name=name, command=" ".join(["causal-llmrec", "demo", "--out", str(out.relative_to(ROOT)), "--no-progress"] + extra),
                wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1), load_avg_start_end=[round(load0, 1), round(load1, 1)],
                limit_seconds=LIMITS[name], within_limit=wall < LIMITS[name], stage_seconds=stages,
                truth=json.loads((out / "data" / "summary.json").read_text()).get("truth"), effects=eff,
                metrics={k: met.get(k) for k in ("candidates", "candidates_per_user", "corr_tau", "auc_propensity", "auc_outcome", "true_uplift_at_k_uplift_ranking",
                                                 "true_uplift_at_k_outcome_ranking", "ab_test_uplift_vs_click_ranking", "auuc", "normalised_gain", "coverage_over_worlds")},
                report_bytes=(out / "report.html").stat().st_size, out=out)


def screenshot(report, dest):
    sys.path.insert(0, str(ROOT / "tools"))
    from docs.browser import find_chromium, headless_dom
    if find_chromium() is None: return "no chromium: screenshot skipped"
    headless_dom(report, screenshot=dest, size=(1280, 3600))
    return f"{dest.relative_to(ROOT)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="time the --quick run only")
    a = ap.parse_args()
    runs = []
    runs.append(run("quick", ROOT / "runs" / "bench-quick", ["--quick"]))
    if not a.quick: runs.append(run("default", ROOT / "runs" / "bench-demo", []))
    shot = screenshot(runs[-1]["out"] / "report.html", ROOT / "bench" / "report.png")
    cpu = os.cpu_count()
    try: import torch; threads = torch.get_num_threads()
    except Exception: threads = None
    info = dict(command=f".venv/bin/python bench/pipeline_demo.py{' --quick' if a.quick else ''}", date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                machine=f"{platform.machine()}, {cpu} CPU cores, torch threads {threads}, Python {platform.python_version()}",
                screenshot=shot, runs=[{k: v for k, v in r.items() if k != "out"} for r in runs])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline_demo.json").write_text(json.dumps(info, indent=1, default=str))
    lines = [f"# `causal-llmrec demo` timing", "", f"Command: `{info['command']}`  ", f"Date: {info['date']}  ", f"Machine: {info['machine']}", "",
             "Wall time is what a user waits; CPU time is the run's own user+system time (it can use both cores, so on an idle",
             "2-core machine the wall time is at least CPU time / 2). The load average shows how busy the shared machine was.", "",
             "| run | command | wall time | CPU time | load avg (start, end) | limit | stages (s) |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        st = ", ".join(f"{k} {v:.0f}" for k, v in r["stage_seconds"].items())
        lines.append(f"| {r['name']} | `{r['command']}` | {r['wall_seconds']/60:.1f} min ({r['wall_seconds']:.0f} s) | "
                     f"{r['cpu_seconds']/60:.1f} min | {r['load_avg_start_end'][0]}, {r['load_avg_start_end'][1]} | "
                     f"{r['limit_seconds']//60} min: {'within' if r['within_limit'] else 'EXCEEDED'} | {st} |")
    for r in runs:
        lines += ["", f"## {r['name']}: estimates and metrics", "", f"Truth: {json.dumps(r['truth'])}", "",
                  "| estimate | value | 95% CI |", "|---|---|---|"]
        lines += [f"| {k} | {v[0]:+.4f} | [{v[1]:+.4f}, {v[2]:+.4f}] |" for k, v in r["effects"].items()]
        lines += ["", "```json", json.dumps(r["metrics"], indent=1), "```"]
    lines += ["", f"Report screenshot: `{shot}`"]
    (RESULTS / "pipeline_demo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

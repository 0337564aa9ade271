"""`causal-llmrec` as a user runs it: the console script in a subprocess, help, exit codes and one-line errors.

The quick run folder is shared with test_pipeline.py / test_report_browser.py (conftest.py's `quick_run`): `demo --quick`
on it reuses every stage, so the command's own path is tested without paying for a second run."""
import os, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest, yaml

from causal_llmrec.pipeline import PipelineConfig

EXE = Path(sys.executable).with_name("causal-llmrec")
# one BLAS/torch thread per subprocess, as conftest.CLI_ENV and `make test-py` set: with torch's default (a thread per core) the
# default demo's thousands of small L-BFGS steps stall on a busy 2-core machine (over 30 min at load 10, against 3.3 min with one thread)
ENV = {**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def inproc(capsys, *args):
    "`main` in this process (fast): (status, stdout, stderr)."
    from causal_llmrec.cli import main
    rc = main([str(a) for a in args])
    o = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, o.out, o.err)


def cli(*args, cwd=None, timeout=600):
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-c", "import sys; from causal_llmrec.cli import main; sys.exit(main())"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(quick_run):
    return quick_run[0]


def test_console_script_is_installed():
    assert EXE.exists(), f"{EXE} missing: `pip install -e .` declares it (settings.ini console_scripts)"


def test_help():
    r = cli("--help")
    assert r.returncode == 0
    for c in ("demo", "discover", "estimate", "train", "recommend", "evaluate", "report", "config", "check-data", "example-data"):
        assert c in r.stdout
    r = cli("recommend", "--help")
    assert r.returncode == 0 and "--user" in r.stdout and "-k K" in r.stdout and "--seed" in r.stdout and "--device" in r.stdout
    assert cli().returncode == 2


def test_example_names_match_the_library():
    "The parser's example names (kept light: no import of causal_llmrec.files) are the library's examples."
    from causal_llmrec.cli import EXAMPLE_NAMES
    from causal_llmrec.files import EXAMPLES
    assert list(EXAMPLE_NAMES) == list(EXAMPLES)
    r = cli("example-data", "--help")
    assert r.returncode == 0 and "--users N" in r.stdout and "{obd,movielens,textworld}" in r.stdout


def test_config_prints_readable_settings(capsys):
    r = inproc(capsys, "config")
    assert r.returncode == 0 and PipelineConfig.from_dict(yaml.safe_load(r.stdout)) == PipelineConfig()
    assert "# tokens per text field" in r.stdout


def test_demo_quick_reuses_and_recommend_answers(run_dir):
    r = cli("demo", "--quick", "--out", run_dir, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "reused" in r.stdout and "report:" in r.stdout
    users = pd.read_csv(run_dir / "recommend" / "recommendations.csv").user_id
    u = int(users.iloc[0])
    r = cli("recommend", "--out", run_dir, "--user", u, "-k", "4", "--no-progress")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith(f"top 4 for user {u}") and len(lines) == 6 and "effect " in lines[2]
    # without --quick/--config, a command in an existing run folder uses its config.yaml
    r = cli("recommend", "--out", run_dir, "--user", u, "--no-progress")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 12


@pytest.mark.parametrize("args, needle", [
    (["recommend", "--user", "999999"], "error: unknown user id '999999': {out} has recommendations for 40 users (ids "),
    (["recommend", "--user", "abc"], "error: unknown user id 'abc'"),
    (["recommend", "--user", "1", "-k", "0"], "error: -k must be >= 1"),
    (["train", "--quick", "--seed", "7"], "error: {out} holds a run made with other settings (settings changed: seed: 0 -> 7)"),
    (["demo", "--device", "gpu"], "error: setting device must be"),
    (["demo", "--quick", "--config", "x.yaml"], "error: give --quick or --config, not both"),
])
def test_bad_input_one_line_exit_2(run_dir, args, needle, capsys):
    r = inproc(capsys, *args, "--out", run_dir, "--no-progress")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(needle.format(out=run_dir)), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_files(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("train:\n  encoder_steps: [1\n")
    (tmp_path / "typo.yaml").write_text("estimate:\n  estimant: ATE\n")
    for f, needle in (("missing.yaml", "does not exist"), ("bad.yaml", "is not valid YAML (line 3"),
                      ("typo.yaml", "unknown setting estimate.estimant (did you mean 'estimand'?)")):
        r = inproc(capsys, "demo", "--config", tmp_path / f, "--out", tmp_path / "run", "--no-progress")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()
    r = inproc(capsys, "demo", "--quick", "--out", tmp_path / "bad.yaml", "--no-progress")    # --out names a file
    assert r.returncode == 2 and r.stderr == f"error: --out {tmp_path / 'bad.yaml'} is a file, not a folder; choose a folder\n", r.stderr


def test_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    r = cli("estimate", "--out", tmp_path, "--quick", "--no-progress")  # a subprocess: the exit status as a shell sees it
    assert r.returncode == 2 and "not a causal_llmrec run folder" in r.stderr and "--force" in r.stderr


def test_force_recomputes_with_the_folders_settings(run_dir, tmp_path, capsys):
    "--force means recompute, with the folder's config.yaml (not the defaults) unless --config is given."
    run = tmp_path / "run"; shutil.copytree(run_dir, run)
    r = inproc(capsys, "estimate", "--force", "--out", run, "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = [l.split()[:2] for l in r.stdout.splitlines() if l.startswith("  ") and not l.strip().startswith("report:")]
    assert rows == [["data", "ran"], ["discover", "ran"], ["estimate", "ran"]], r.stdout
    assert PipelineConfig.from_yaml(run / "config.yaml") == PipelineConfig.quick() and "report:" not in r.stdout
    assert (run / "estimate" / "effects.csv").read_bytes() == (run_dir / "estimate" / "effects.csv").read_bytes()


@pytest.mark.slow   # the default settings: minutes on CPU (make test-slow)
def test_full_demo_main_job(tmp_path):
    "The README's main job with the default settings (minutes on CPU): the folder, the report, a real user's list."
    out = tmp_path / "demo"
    r = cli("demo", "--out", out, "--no-progress", timeout=30 * 60)
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").exists() and (out / "train" / "model" / "causal_bert.json").exists()
    u = int(pd.read_csv(out / "recommend" / "recommendations.csv").user_id.iloc[0])
    r = cli("recommend", "--out", out, "--user", u, "-k", "5", "--no-progress")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 7


def test_compute_options(capsys):
    "--compute and --compute-address set the compute section; a source the Dask path cannot read is a one-line error."
    from causal_llmrec.cli import _config, _parser
    a = _parser().parse_args(["estimate", "--data", "logs/", "--compute", "dask", "--compute-address", "tcp://10.0.0.5:8786"])
    assert (_config(a).compute.engine, _config(a).compute.address) == ("dask", "tcp://10.0.0.5:8786")
    r = inproc(capsys, "demo", "--quick", "--compute", "dask")
    assert r.returncode == 2 and r.stderr.startswith("error: setting compute.engine 'dask'") and r.stderr.count("\n") == 1

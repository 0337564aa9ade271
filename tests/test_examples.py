"""The end-to-end examples of issue 13 as a user runs them, from the command line with no Python: `example-data` writes
an example's files, `check-data` accepts them, and `demo --data` on a small slice writes a report that says there is no
known truth and renders in headless Chromium with its figures.

The full-size runs and their timings are bench/cli_examples.py's (bench/results/cli_examples.md)."""
import json, os, struct, subprocess, sys
from pathlib import Path

import pytest, yaml
from bs4 import BeautifulSoup

from conftest import TINY, CLI_ENV as ENV

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("causal-llmrec")
# the full examples: tables and rows written, and what check-data says about the treatment
FULL = {"obd": ({"impressions.csv": 10_000, "users.csv": 253, "items.csv": 80}, "treatment 'position'"),
        "movielens": ({"ratings.csv": 100_000, "users.csv": 943, "items.csv": 1682}, "treatment 'shown'")}
# a small slice runs end to end in about a minute on 2 shared cores with conftest.py's TINY settings: tiny BERT, few rows
# for discovery, two baselines (discovery needs a click among its rows: OBD clicks 0.3% of impressions, so 500 rows; a
# 40-user OBD slice left an item feature level without a lower-slot impression, which matching refuses, and the 50-user
# slice does not)
USERS = {"obd": 50, "movielens": 40}


def cli(*args, timeout=600):
    return subprocess.run([str(EXE)] + [str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("name", ["obd", "movielens"])
def test_example_data_writes_what_check_data_accepts(name, tmp_path):
    r = cli("example-data", name, tmp_path/name)
    assert r.returncode == 0, r.stderr
    rows, treatment = FULL[name]
    for f, n in rows.items():
        assert f"{f}" in r.stdout and f"{n:,} rows" in r.stdout, r.stdout
        assert sum(1 for _ in open(tmp_path/name/f)) == n + 1                 # header + rows
    assert f"causal-llmrec demo --data {tmp_path/name} --config {tmp_path/name/'config.yaml'}" in r.stdout
    spec, cfg = (tmp_path/name/"data.yaml").read_text(), (tmp_path/name/"config.yaml").read_text()
    assert spec.count("\n") <= 15 and cfg.count("\n") <= 15
    # the committed spec and settings are the ones the command writes
    assert spec == (ROOT/"examples"/name/"data.yaml").read_text() and cfg == (ROOT/"examples"/name/"config.yaml").read_text()
    from causal_llmrec.settings import PipelineConfig
    PipelineConfig.from_yaml(tmp_path/name/"config.yaml")                   # valid settings
    c = cli("check-data", tmp_path/name)
    assert c.returncode == 0 and "no problems found" in c.stdout and treatment in c.stdout, c.stdout
    for f, n in rows.items(): assert f"{f} — {n:,} rows" in c.stdout


def test_example_data_bad_input_one_line_status_2(tmp_path):
    assert cli("example-data", "obd", tmp_path/"o", "--users", "30").returncode == 0
    for args, needle in [(("obd", tmp_path/"o"), "already has"), (("movielens", tmp_path/"m", "--policy", "bts"), "no option(s) ['policy']"),
                         (("obd", tmp_path/"x", "--users", "1"), "users must be an integer >= 2"),
                         (("obd", tmp_path/"o"/"users.csv"), "is a file, not a folder")]:
        r = cli("example-data", *args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert not (tmp_path/"m").exists() and not (tmp_path/"x").exists()    # nothing written on bad input
    assert cli("example-data", "obd", tmp_path/"o", "--users", "20", "--force").returncode == 0
    assert sum(1 for _ in open(tmp_path/"o"/"users.csv")) == 21
    assert cli("example-data", "nope", tmp_path/"n").returncode == 2       # argparse: an unknown example


@pytest.mark.slow   # two end-to-end runs, about a minute each on 2 cores (make test-slow)
@pytest.mark.parametrize("name", ["obd", "movielens"])
def test_small_slice_end_to_end_report_in_chromium(name, tmp_path, request):
    "`example-data --users N`, then `demo --data` with tiny settings: the report judges without truth and renders."
    data, run = tmp_path/"data", tmp_path/"run"
    assert cli("example-data", name, data, "--users", USERS[name]).returncode == 0
    (tmp_path/"tiny.yaml").write_text(yaml.safe_dump(TINY))
    r = cli("demo", "--data", data, "--config", tmp_path/"tiny.yaml", "--out", run, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[report] done" in r.stderr and "pipeline:" in r.stderr                  # progress shown (stderr)
    met = json.loads((run/"evaluate"/"metrics.json").read_text())
    assert met["note"].startswith("no causal truth") and {x["test"] for x in met["refutations"]} == {"placebo", "random_common_cause", "subset"}
    assert "auuc_uplift" in met and "corr_tau" not in met and "true_uplift_at_k_uplift_ranking" not in met
    summary = json.loads((run/"data"/"summary.json").read_text())
    assert summary["truth"] is None and summary["n_users"] == USERS[name]
    html = (run/"report.html").read_text()
    soup = BeautifulSoup(html, "html.parser")
    assert {"summary", "data", "graph", "balance", "effects", "training", "uplift", "recommendations", "run"} <= {s["id"] for s in soup.find_all("section")}
    found = " ".join(li.get_text(" ", strip=True) for li in soup.select("#summary li"))
    assert "There is no known truth for this data" in found and "refutation" in found
    said = " ".join(soup.select_one(f"#{s}").get_text(" ", strip=True) for s in ("summary", "data", "graph", "effects", "uplift"))
    for claim in ("cover the truth", "true ATT", "true uplift", "oracle", "simulated world", "vs the true graph"):
        assert claim not in said, claim
    browser = request.getfixturevalue("browser")            # skips here when Chromium is not installed
    browser.resize((1280, 2400))
    browser.goto((run/"report.html").resolve().as_uri())
    browser.wait_for("document.body.hasAttribute('data-images-loaded')", 30)
    dom = BeautifulSoup(browser.dom(), "html.parser")
    shot = browser.screenshot(tmp_path/"report.png")
    loaded, total = map(int, dom.body["data-images-loaded"].split("/"))
    assert total >= 5 and loaded == total, f"only {loaded} of {total} figures rendered"
    assert "no known truth" in dom.select_one("#summary").get_text()
    b = shot.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", b[16:24]) == (1280, 2400) and len(b) > 30_000

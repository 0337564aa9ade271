"""The HTML report of a run opened in headless Chromium: it renders offline with its figures and sections.

`find_chromium` and `headless_dom` are also used by test_faults.py (hostile names in the report)."""
import os, re, shutil, struct, subprocess, tempfile
from pathlib import Path

import pytest
from bs4 import BeautifulSoup



def find_chromium():
    "A headless-capable Chromium/Chrome binary ($CHROMIUM first), or None."
    for c in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if c and shutil.which(c): return shutil.which(c)
    return None


def headless_dom(path, screenshot=None, size=(1280, 2000), timeout=90):
    "Load a local HTML file in headless Chromium, offline with a throw-away profile; return the DOM after its scripts ran."
    exe = find_chromium()
    url = Path(path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="chromium-") as prof:
        flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", f"--user-data-dir={prof}", "--hide-scrollbars",
                 f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=5000"]
        if screenshot:
            r = subprocess.run(flags + [f"--screenshot={Path(screenshot).resolve()}", url], capture_output=True, text=True, timeout=timeout)
            assert r.returncode == 0 and Path(screenshot).exists(), r.stderr[-500:]
        r = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-500:]
    return r.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from test_pipeline import shared_run
    out, _ = shared_run(tmp_path_factory)
    return out


def test_report_is_self_contained(run_dir):
    html = (run_dir / "report.html").read_text()
    soup = BeautifulSoup(html, "html.parser")
    srcs = [i["src"] for i in soup.find_all("img")]
    assert len(srcs) >= 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not soup.find_all(["link", "script"], src=True) and not soup.find_all("link", href=True)  # nothing fetched
    ids = {s["id"] for s in soup.find_all("section")}
    assert {"summary", "data", "graph", "balance", "effects", "training", "uplift", "recommendations", "run"} <= ids
    assert [s["id"] for s in soup.find_all("section")][0] == "summary"      # the plain-sentence findings come first
    found = [li.get_text() for li in soup.select("#summary li")]
    assert len(found) >= 5 and any("intervals cover the truth" in t for t in found) and any("held-out users" in t for t in found)
    assert str(run_dir.parent) not in html                                 # no machine path
    alts = {i["alt"] for i in soup.find_all("img")}
    assert {"love plot", "propensity overlap", "effect estimates", "training curves", "uplift curves"} <= alts


@pytest.mark.skipif(find_chromium() is None,
                    reason="headless Chromium not installed: `make setup-browser` (Debian packages chromium, chromium-driver)")
def test_report_renders_in_chromium(run_dir, tmp_path):
    shot = tmp_path / "report.png"
    dom = BeautifulSoup(headless_dom(run_dir / "report.html", screenshot=shot, size=(1280, 3000)), "html.parser")
    assert dom.title.get_text() == "causal_llmrec run report"
    loaded, total = map(int, dom.body["data-images-loaded"].split("/"))
    assert total >= 5 and loaded == total, f"only {loaded} of {total} figures rendered"
    assert dom.select_one("#effects table") is not None and dom.select_one("#recommendations table") is not None
    b = shot.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", b[16:24]) == (1280, 3000) and len(b) > 50_000


# ---- an honest report without a truth (issue 23): verdict first, disagreement counted, plug-in intervals dropped,
# ---- the sensitivity analysis beside the headline estimates; and no page wider than the window, no raw Markdown
import json, sys, yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from docs.browser import Browser, page_problems  # noqa: E402

EXE = Path(sys.executable).with_name("causal-llmrec")
ENV = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
TINY = {"discover": {"max_rows": 500}, "train": {"encoder": "tiny", "max_length": 32, "encoder_steps": 5, "head_epochs": 5, "cross_fit_folds": 2},
        "evaluate": {"baselines": ["popularity", "click_gb"]}, "report": {"n_example_users": 2}}


@pytest.fixture(scope="module")
def own_logs_run(tmp_path_factory):
    "A run on own logs without a truth: `example-data movielens --users 40`, then `demo --data` with tiny settings (about a minute)."
    tmp = tmp_path_factory.mktemp("own-logs")
    data, run = tmp / "data", tmp / "run"
    cli = lambda *a: subprocess.run([str(EXE)] + [str(x) for x in a], capture_output=True, text=True, env=ENV, timeout=900, cwd=ROOT)
    r = cli("example-data", "movielens", data, "--users", 40)
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    r = cli("demo", "--data", data, "--config", tmp / "tiny.yaml", "--out", run, "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def _summary(html):
    soup = BeautifulSoup(html, "html.parser")
    return soup, soup.select_one("#summary")


def test_report_without_truth_is_honest(own_logs_run):
    from causal_llmrec.report import verdict, report_warnings, effects_table, headline_sensitivity
    soup, summ = _summary((own_logs_run / "report.html").read_text())
    v = summ.select_one("p.verdict").get_text()
    assert v == verdict(own_logs_run) and summ.find("p") is summ.select_one("p.verdict")             # the verdict comes first
    assert v.startswith(("The estimators agree", "Caution:")) and "confounder that is not in the data" in v or v.startswith("Caution:")
    n = len(report_warnings(own_logs_run))
    assert (f"{n} warning" if n else "No warnings.") in summ.get_text() and sum(li.get_text().startswith("Warning:") for li in summ.select("li")) == n
    eff = soup.select_one("#effects").get_text(" ", strip=True)
    assert "No refutation can detect a confounder that is not in the data" in eff
    sens = headline_sensitivity(own_logs_run)
    assert len(sens) == 3 and all(("E-value" in w) for w in sens.in_words[1:]) and "robustness values" in sens.in_words.iloc[0]
    for w in sens.in_words: assert w in eff
    # CausalBert's plug-in rows: estimate kept, interval dropped and said why
    t = effects_table(own_logs_run)
    plug = t[t.method == "plug-in"]
    assert len(plug) == 2 and plug.ci_low.isna().all() and plug.se.isna().all() and plug.note.str.contains("ignores").all()
    # the refutations are a table, not a printed list of dicts
    assert "{'test'" not in soup.get_text() and soup.select_one("#effects h3 + p + div table") is not None
    said = " ".join(soup.select_one(f"#{x}").get_text(" ", strip=True) for x in ("summary", "data", "graph", "effects", "uplift"))
    for claim in ("cover the truth", "true ATT", "true uplift", "oracle", "simulated world", "vs the true graph"):
        assert claim not in said, claim
    assert soup.select_one("#uplift p.absent") is not None and not soup.select("#uplift p.missing")   # an expected absence, not an error


def test_disagreement_is_a_counted_warning(own_logs_run, tmp_path):
    "CausalBert's AIPW moved far from matching/IPW/AIPW in a copy of the run: the verdict says Caution and the warning is counted."
    from causal_llmrec.report import build_report, report_warnings
    run = tmp_path / "run"; shutil.copytree(own_logs_run, run)
    eff = (run / "train" / "effects.csv")
    import pandas as pd
    e = pd.read_csv(eff); a = (e.method == "AIPW") & (e.estimand == "ATT")
    e.loc[a, ["estimate", "ci_low", "ci_high"]] = e.loc[a, ["estimate", "ci_low", "ci_high"]].to_numpy() - 1.0   # far below the others
    e.to_csv(eff, index=False)
    w = report_warnings(run)
    assert len(w) == 1 and w[0].startswith("The ATT estimates disagree beyond their 95% intervals") and "AIPW (CausalBert)" in w[0]
    soup, summ = _summary(build_report(run))
    assert summ.select_one("p.verdict.caution").get_text().startswith("Caution: the estimators disagree beyond their intervals (ATT)")
    assert "1 warning (" in summ.get_text() and summ.select("li")[0].get_text() == "Warning: " + w[0]
    assert "this report counts 1 warning(s)" in soup.select_one("#run").get_text()    # the stage's own headline counted none


def test_report_with_truth_verdict_and_sensitivity(run_dir):
    from causal_llmrec.report import verdict
    soup, summ = _summary((run_dir / "report.html").read_text())
    v = summ.select_one("p.verdict").get_text()
    assert v == verdict(run_dir) and ("intervals cover the true effect" in v or "miss the true effect" in v or "disagree" in v)
    assert "E-value" in soup.select_one("#effects").get_text() and "no interval" in soup.select_one("#effects").get_text()


def test_page_problems_finds_overflow_and_raw_markdown(tmp_path):
    "The checker itself: a page wider than the window and Markdown left as text are found; a clean page passes."
    if find_chromium() is None: pytest.skip("headless Chromium not installed: `make setup-browser`")
    bad, good = tmp_path / "bad.html", tmp_path / "good.html"
    bad.write_text("<html><body><div style='width:3000px'>wide</div><p>see [the data](data.html) and **bold**</p>"
                   "<pre><code>def f(x:[RecData](https://example.org/data.html#recdata)): pass</code></pre></body></html>")
    good.write_text("<html><body><p>see <a href='data.html'>the data</a> and <b>bold</b>, <code>**kwargs</code></p>"
                    "<pre><code>def f(**kw): return x[0](1)</code></pre><pre><code>print('[a](b.html)')</code></pre><div style='overflow-x:auto'><div style='width:3000px'>wide</div></div></body></html>")
    with Browser(size=(1280, 900)) as b:
        b.goto(bad.as_uri()); p = page_problems(b)
        assert any(x.startswith("horizontal overflow") for x in p) and any("Markdown link) in text" in x for x in p)
        assert any("Markdown bold" in x for x in p) and any("link) in code" in x for x in p)
        b.goto(good.as_uri()); assert page_problems(b) == []


@pytest.mark.skipif(find_chromium() is None,
                    reason="headless Chromium not installed: `make setup-browser` (Debian packages chromium, chromium-driver)")
@pytest.mark.parametrize("kind", ["with truth", "own logs, no truth"])
def test_report_fits_the_window_and_has_no_raw_markdown(kind, request):
    run = request.getfixturevalue("run_dir" if kind == "with truth" else "own_logs_run")
    with Browser(size=(1280, 900)) as b:
        b.goto((run / "report.html").resolve().as_uri())
        assert page_problems(b) == []

"""The HTML report of a run opened in headless Chromium: it renders offline with its figures and sections; the report
of a run without a truth is honest; no report is wider than the window or shows raw Markdown.

The runs are conftest.py's session fixtures (`quick_run`, with a truth; `own_logs_run`, own logs without one) and the
browser is its `browser` (one headless Chromium for every browser test)."""
import shutil, struct
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from conftest import needs_chromium


@pytest.fixture(scope="module")
def run_dir(quick_run):
    return quick_run[0]


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


@needs_chromium
def test_report_renders_in_chromium(run_dir, tmp_path, browser):
    browser.resize((1280, 3000))
    browser.goto((run_dir / "report.html").resolve().as_uri())
    browser.wait_for("document.body.hasAttribute('data-images-loaded')", 30)     # the page's own script counted its figures
    dom = BeautifulSoup(browser.dom(), "html.parser")
    assert dom.title.get_text() == "causal_llmrec run report"
    loaded, total = map(int, dom.body["data-images-loaded"].split("/"))
    assert total >= 5 and loaded == total, f"only {loaded} of {total} figures rendered"
    assert dom.select_one("#effects table") is not None and dom.select_one("#recommendations table") is not None
    b = browser.screenshot(tmp_path / "report.png").read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", b[16:24]) == (1280, 3000) and len(b) > 50_000


# ---- an honest report without a truth (issue 23): verdict first, disagreement counted, plug-in intervals dropped,
# ---- the sensitivity analysis beside the headline estimates; and no page wider than the window, no raw Markdown
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


@needs_chromium
def test_page_problems_finds_overflow_and_raw_markdown(tmp_path, browser):
    "The checker itself: a page wider than the window and Markdown left as text are found; a clean page passes."
    from docs.browser import page_problems
    bad, good = tmp_path / "bad.html", tmp_path / "good.html"
    bad.write_text("<html><body><div style='width:3000px'>wide</div><p>see [the data](data.html) and **bold**</p>"
                   "<pre><code>def f(x:[RecData](https://example.org/data.html#recdata)): pass</code></pre>"
                   "<div class='nb-output'><table><tr><td>see [the report](report.html)</td></tr></table></div></body></html>")
    good.write_text("<html><body><p>see <a href='data.html'>the data</a> and <b>bold</b>, <code>**kwargs</code></p>"
                    "<pre><code>def f(**kw): return x[0](1)</code></pre><pre><code>print('[a](b.html)')</code></pre><div style='overflow-x:auto'><div style='width:3000px'>wide</div></div>"
                    "<div class='nb-output'><table><tr><td>y ~ C(sex) + I(age**2) + I(smokeintensity**2)</td><td>`x`</td></tr></table></div></body></html>")
    b = browser
    b.goto(bad.as_uri()); p = page_problems(b)
    assert any(x.startswith("horizontal overflow") for x in p) and any("Markdown link) in text" in x for x in p)
    assert any("Markdown bold" in x for x in p) and any("link) in code" in x for x in p)
    assert any("Markdown link) in text" in x and "the report" in x for x in p)      # a link in a notebook's output table still counts
    b.goto(good.as_uri()); assert page_problems(b) == []


@needs_chromium
@pytest.mark.parametrize("kind", ["with truth", "own logs, no truth"])
def test_report_fits_the_window_and_has_no_raw_markdown(kind, request, browser):
    from docs.browser import page_problems
    run = request.getfixturevalue("run_dir" if kind == "with truth" else "own_logs_run")
    browser.goto((run / "report.html").resolve().as_uri())
    assert page_problems(browser) == []

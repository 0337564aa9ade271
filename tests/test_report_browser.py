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

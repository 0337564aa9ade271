"""The HTML report of a run opened in headless Chromium: it renders offline with its figures and sections."""
import re, struct
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from causal_llmrec.docsite import find_chromium, headless_dom


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
    assert {"data", "graph", "balance", "effects", "training", "uplift", "recommendations", "run"} <= ids
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

"""The docs site built without Quarto (`python -m causal_llmrec.docsite`, what `make docs` runs).

Builds the real site once into a temp folder, checks its pages, API sections and internal links, that README.md is
in sync with nbs/index.ipynb, and loads the home page and an API page in headless Chromium."""
import subprocess, sys, struct
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from causal_llmrec.docsite import (build_site, site_config, site_pages, readme_in_sync, check_links, headless_dom,
                                   find_chromium, page_name, main)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("docs") / "_site", ROOT, progress=False, n_workers=2)


def _soup(site, name):
    return BeautifulSoup((site.out / name).read_text(encoding="utf-8"), "html.parser")


def test_every_sidebar_notebook_is_a_page(site):
    pages = site_pages(site_config(ROOT))
    assert [p.name for p in site.pages] == [p.name for p in pages]
    assert pages[0].name == "index.html" and "data.html" in [p.name for p in pages]
    for p in pages:
        soup = _soup(site, p.name)
        assert soup.title.string.endswith(site_config(ROOT)["title"]), p.name
        assert [a["href"] for a in soup.select("nav.sidebar a")] == [q.name for q in pages], p.name
        assert soup.select_one("nav.sidebar a.active")["href"] == p.name
        assert soup.select_one("main h1.title").get_text(strip=True) == p.title


def test_api_sections_from_show_doc(site):
    soup = _soup(site, "data.html")
    for name in ("recdata", "load_movielens", "simulate"):
        h = soup.find(id=name)
        assert h is not None and h.name in ("h2", "h3", "h4"), f"no API section #{name} on data.html"
        assert h.find_next("pre") is not None  # the signature
    assert "#| export" not in soup.get_text()  # exported cells hidden, as Quarto hides them


def test_no_broken_internal_links(site):
    assert site.broken == [], "broken internal links:\n" + "\n".join(map(str, site.broken))
    assert check_links(site.out) == []


def test_figures_embedded(site):
    imgs = [img["src"] for p in site.pages for img in _soup(site, p.name).find_all("img")]
    assert imgs and all(s.startswith("data:image/") for s in imgs), "figures must be embedded as data URIs"


def test_readme_in_sync():
    stale = readme_in_sync(ROOT)
    assert stale == [], f"out of date with nbs/index.ipynb: {stale}; run `make docs`"


def test_cli_one_line_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "causal_llmrec.docsite", "--root", str(tmp_path), "--out", str(tmp_path / "s")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: no settings.ini found") and "Traceback" not in r.stderr
    (tmp_path / "settings.ini").write_text("[DEFAULT]\nlib_name = x\nnbs_path = nbs\n")
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "sidebar.yml").write_text("website:\n  sidebar:\n    contents:\n      - 01_missing.ipynb\n")
    assert main(["--root", str(tmp_path), "--out", str(tmp_path / "s")]) == 2
    assert page_name("07_pipeline.ipynb") == "pipeline.html"


def _png_size(path):
    b = Path(path).read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", b[16:24])


@pytest.mark.skipif(find_chromium() is None,
                    reason="headless Chromium not installed: `make setup-browser` (Debian packages chromium, chromium-driver)")
def test_browser_renders_home_and_api_page(site, tmp_path):
    title = site_config(ROOT)["title"]
    n_pages = len(site.pages)
    images = {}
    for name in ("index.html", "data.html"):
        shot = tmp_path / f"{name}.png"
        dom = BeautifulSoup(headless_dom(site.out / name, screenshot=shot), "html.parser")
        assert dom.title.get_text().endswith(title)
        assert len(dom.select("nav.sidebar a")) == n_pages
        loaded, total = map(int, dom.body["data-images-loaded"].split("/"))
        assert loaded == total, f"{name}: only {loaded} of {total} images rendered"
        images[name] = total
        w, h = _png_size(shot)
        assert (w, h) == (1280, 2000) and shot.stat().st_size > 20_000
    assert images["index.html"] >= 1, "the home page should show a figure"
    assert dom.find(id="recdata") is not None  # data.html's API section, as the browser sees it

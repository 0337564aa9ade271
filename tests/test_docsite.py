"""The docs site: MkDocs + Material from nbdev's processed notebooks (`python tools/docs/build.py`, what `make docs` runs).

Builds the real site once (`mkdocs build --strict`, so any broken Markdown link or anchor fails it) into a temp folder and
checks its pages, navigation, subtitles, API sections, source links, maths, internal links of the HTML, and that README.md
is in sync with nbs/index.ipynb; unit-checks the notebook-to-Markdown steps; builds a tiny project whose broken link must
fail the build; and, in headless Chromium, screenshots three pages, checks the maths typeset, search answers and the
mobile navigation opens."""
import json, re, struct, subprocess, sys, shutil
from pathlib import Path

import markdown
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
from docs import build as B  # noqa: E402
from docs.readme import readme_in_sync  # noqa: E402
from docs.browser import serve, page_problems  # noqa: E402
from conftest import needs_chromium  # noqa: E402


@pytest.fixture(scope="module")
def site(docs_site):
    "conftest.py's `docs_site`: the real site, built once per session."
    return docs_site


_SOUPS = {}

def _soup(site, name):
    "A page of the built site, parsed once per session (tests read the tree, none changes it)."
    path = site.out / name
    if path not in _SOUPS: _SOUPS[path] = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return _SOUPS[path]


def _text_outside(soup, selector):
    "The page's text without the text of the elements `selector` matches (and of their descendants)."
    skip = {id(el) for el in soup.select(selector)}
    return "".join(s for s in soup.find_all(string=True)
                   if type(s).__name__ == "NavigableString" and not any(id(e) in skip for e in s.parents))


def _text(el):
    return re.sub(r"\s+", " ", el.get_text()).strip()


def test_every_notebook_is_a_page_in_sidebar_order(site):
    cfg = B.site_config(ROOT)
    pages = B.site_pages(cfg)
    listed = list(B._sidebar_entries(B._sidebar(cfg) or []))
    on_disk = sorted(p.name for p in cfg['nbs_path'].glob('*.ipynb') if not p.name.startswith(('_', '.')))
    assert sorted(p.src.name for p in pages) == on_disk, "every notebook is published, listed in sidebar.yml or not"
    order = [p.src.name for p in pages]
    assert [n for n in order if n in listed] == [n for n in listed if n in order], "sidebar.yml order kept"
    assert pages[0].html == "index.html" and "data.html" in [p.html for p in pages]
    for p in pages:
        soup = _soup(site, p.html)
        nav = [a["href"] for a in soup.select("nav.md-nav--primary a.md-nav__link[href]") if a["href"].endswith(".html")]
        assert nav == [q.html for q in pages], f"{p.html}: navigation {nav}"
        assert soup.select_one("nav.md-nav--primary a.md-nav__link--active")["href"] == p.html
        h1 = soup.select_one("article h1")
        assert _text(h1).rstrip("¶").strip() == p.title, p.html
        assert soup.title.string.strip().endswith(cfg["title"]), p.html


def test_subtitles_are_whole(site):
    for p in B.site_pages(B.site_config(ROOT)):
        if not p.description: continue
        sub = _soup(site, p.html).select_one("article p.page-subtitle")
        assert sub is not None, f"{p.html}: no subtitle"
        want = _text(BeautifulSoup(markdown.markdown(p.description), "html.parser"))  # every `>` line, as Markdown renders it
        assert _text(sub) == want and len(want) >= len(re.sub(r"[`*]", "", p.description)) - 5, p.html


def test_api_sections_from_show_doc(site):
    soup = _soup(site, "data.html")
    for name in ("recdata", "recdata.frame", "load_movielens", "simulate"):
        h = soup.find(id=name)
        assert h is not None and h.name in ("h2", "h3", "h4"), f"no API section #{name} on data.html"
        assert h.find_next("pre") is not None  # the signature
    assert "#| export" not in soup.get_text() and "show_doc(" not in soup.get_text()


def test_source_links_point_at_the_definition(site):
    cfg = B.site_config(ROOT)
    base = f"{cfg['git_url'].rstrip('/')}/blob/{cfg['branch']}/"
    n = 0
    for p in site.pages:
        for a in _soup(site, p.html).select("a.doc-source-link"):
            n += 1
            assert a.get_text(strip=True) == "source" and a["href"].startswith(base), a
            m = re.fullmatch(re.escape(base) + r"(.+)#L(\d+)", a["href"])
            assert m, f"{p.html}: source link without a line anchor: {a['href']}"
            lines = (ROOT / m.group(1)).read_text(encoding="utf-8").splitlines()
            name = _text(a.find_next(["h2", "h3", "h4"])).rstrip("¶").strip().split(".")[-1]
            near = "\n".join(lines[int(m.group(2)) - 1:int(m.group(2)) + 3])  # decorators come first
            assert re.search(rf"^\s*(@.*\n\s*)*(async\s+)?(def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*[:=]", near, re.M), \
                f"{p.html}: {a['href']} does not point at {name}:\n{near}"
    assert n > 50, f"only {n} source links"


def test_no_broken_links(site):
    assert site.broken == [], "broken internal links:\n" + "\n".join(map(str, site.broken))
    assert B.check_links(site.out, "/" + B.site_config(ROOT)["doc_baseurl"].strip("/")) == []


def test_maths_is_marked_up_and_mathjax_vendored(site):
    assert (site.out / "assets/mathjax/MathJax.js").is_file()
    assert (site.out / "assets/mathjax/config/TeX-AMS-MML_HTMLorMML-full.js").is_file()
    n = 0
    for p in site.pages:
        soup = _soup(site, p.html)
        assert not soup.select('script[src^="http"], link[href^="http"][rel="stylesheet"]'), f"{p.html} fetches from outside"
        n += len(soup.select(".arithmatex"))
        raw = re.findall(r"\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", _text_outside(soup, "pre, code, .arithmatex, script, style, .nb-output"))
        assert not raw, f"{p.html}: maths left as raw text: {raw[:3]}"
    assert n > 20, f"only {n} formulas on the site"


def test_figures_are_files_of_the_site(site):
    imgs = [img["src"] for p in site.pages for img in _soup(site, p.html).select("article img")]
    assert imgs and all((site.out / s).is_file() for s in imgs)


def test_processed_notebooks_are_stale_when_a_module_is_newer(tmp_path):
    import os
    (tmp_path/'_proc').mkdir(); (tmp_path/'lib').mkdir()
    nb, mod = tmp_path/'_proc'/'a.ipynb', tmp_path/'lib'/'a.py'
    nb.write_text('{}'); mod.write_text('x = 1\n')
    cfg = dict(root=tmp_path, lib_path=tmp_path/'lib')
    os.utime(nb, (2_000, 2_000)); os.utime(mod, (1_000, 1_000))
    assert not B._proc_is_stale(cfg), "a module older than every processed notebook: nbdev's cache is good"
    os.utime(mod, (3_000, 3_000))
    assert B._proc_is_stale(cfg), "a module newer than a processed notebook moves its source lines: reprocess"
    assert not B._proc_is_stale(dict(root=tmp_path/'none', lib_path=tmp_path/'lib')), "no cache yet: nothing to force"


def test_readme_in_sync():
    stale = readme_in_sync(ROOT)
    assert stale == [], f"out of date with nbs/index.ipynb: {stale}; run `make docs`"


def test_callouts_become_admonitions():
    md = '::: {.callout-warning title="Careful"}\nSome *text*.\n\n- a list\n:::\n\n::: {.column-page}\nwide\n:::'
    out = B.callouts_to_admonitions(md)
    assert out.splitlines()[:4] == ['!!! warning "Careful"', '    Some *text*.', '', '    - a list']
    assert ':::' not in out and 'wide' in out
    assert B.callouts_to_admonitions('::: {.callout-tip collapse="true"}\nx\n:::').startswith('??? tip')


def test_links_rewritten_for_mkdocs():
    cfg = B.site_config(ROOT)
    pages = B.site_pages(cfg)
    fix = B.LinkFixer(cfg, pages, {"data.md": {"recdata", "simulate"}})
    md = (f"[`RecData`]({cfg['doc_url']}/data.html#recdata) and [m]({cfg['doc_url']}/data.html#recdata.frame_x) "
          "[nb](00_data.ipynb#simulate) [bench](../bench/results) [ext](https://example.org/a.html)\n"
          "```python\n[x](data.html)\n```")
    out = fix(md, "index.md")
    assert "(data.md#recdata)" in out and "(data.md#recdata)" in out.split(" and ")[1], out  # method without a section: its class
    assert "(data.md#simulate)" in out and "(https://example.org/a.html)" in out
    assert f"({cfg['git_url']}/tree/{cfg['branch']}/bench/results)" in out
    assert "[x](data.html)" in out  # code is left alone


def test_notebook_markdown(tmp_path):
    nb = {"cells": [
        {"cell_type": "raw", "metadata": {}, "source": "---\ntitle: T\ndescription: first line\n---"},
        {"cell_type": "markdown", "metadata": {}, "source": "The effect $\\tau = E[Y(1) - Y(0)]$.\n\n::: {.callout-note}\nN\n:::"},
        {"cell_type": "code", "metadata": {}, "source": "#| echo: false\n#| output: asis\nshow_doc(f)", "outputs": [
            {"output_type": "execute_result", "data": {"text/markdown": "### f\n", "text/plain": "x"}, "metadata": {}}]},
        {"cell_type": "code", "metadata": {}, "source": "#| hide\nsecret()", "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "print(1)", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "1\n"}, {"output_type": "stream", "name": "stderr", "text": "noise"}]},
        {"cell_type": "code", "metadata": {}, "source": "#| code-fold: true\nplot()", "outputs": [
            {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}, "metadata": {}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    f = tmp_path / "07_x.ipynb"; f.write_text(json.dumps(nb))
    md, files = B.notebook_markdown(f, B.Page(f, "x.md", "T", "first line and the second"))
    assert md.startswith("# T\n\nfirst line and the second\n{: .page-subtitle }")
    assert "$\\tau = E[Y(1) - Y(0)]$" in md and '!!! note' in md and "### f" in md and "show_doc" not in md
    assert "secret" not in md and "noise" not in md and "```text\n1\n```" in md
    assert '??? example "Code"' in md and "![figure](x_files/x_" in md and list(files) == [re.search(r"\((x_files/[^)]+)\)", md).group(1)]
    assert B.heading_ids("## A `b` c\n```\n# not\n```\n### RecData.frame") == {"a-b-c", "recdata.frame"}


def test_strict_build_fails_on_a_broken_link(tmp_path):
    (tmp_path / "nbs").mkdir()
    shutil.copy(ROOT / "settings.ini", tmp_path / "settings.ini")
    (tmp_path / "mkdocs.yml").write_text((ROOT / "mkdocs.yml").read_text().replace(
        "tools/docs/hooks.py", str(ROOT / "tools/docs/hooks.py")))
    cell = lambda src: {"cell_type": "markdown", "metadata": {}, "source": src}
    (tmp_path / "nbs" / "index.ipynb").write_text(json.dumps({"cells": [cell("# Home\n\n> A test"), cell("See [the data](00_data.html).")],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    # the command line: `build_site` raised its DocsError (the CLI prints it as one error, status 2), naming the page and the link
    r = subprocess.run([sys.executable, str(ROOT / "tools/docs/build.py"), "--root", str(tmp_path), "--out", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: mkdocs build --strict failed") and "Traceback" not in r.stderr
    assert re.search(r"index.md.*00_data.html", r.stderr), r.stderr


def test_cli_one_line_errors(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools/docs/build.py"), "--root", str(tmp_path), "--out", str(tmp_path / "s")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: no settings.ini found") and "Traceback" not in r.stderr
    (tmp_path / "settings.ini").write_text("[DEFAULT]\nlib_name = x\nnbs_path = nbs\n")
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "sidebar.yml").write_text("website:\n  sidebar:\n    contents:\n      - 01_missing.ipynb\n")
    assert B.main(["--root", str(tmp_path), "--out", str(tmp_path / "s")]) == 2
    assert B.page_name("07_pipeline.ipynb") == "pipeline.html" and B.page_name("02a_neighbours.ipynb", ".md") == "neighbours.md"


def _png_size(path):
    b = Path(path).read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", b[16:24])


MATHS_DONE = "document.body.dataset.math == 'typeset'"

@needs_chromium
def test_browser_maths_search_and_mobile_navigation(site, tmp_path, browser):
    b = browser.resize((1280, 1600))
    with serve(site.out) as url:
        for name in ("index.html", "data.html", "discovery.html"):
            b.goto(url + name)
            b.wait_for(MATHS_DONE)
            n = b.eval("document.querySelectorAll('article .arithmatex').length")
            done = b.eval("document.querySelectorAll('article .arithmatex .MathJax, article .arithmatex .MathJax_Display').length")
            errors = b.eval("document.querySelectorAll('.MathJax_Error, .merror').length")
            assert errors == 0 and done >= n, f"{name}: {done} of {n} formulas typeset, {errors} errors"
            if name != "index.html": assert n > 5, f"{name}: expected formulas, found {n}"
            # the page contents sit on the right, the navigation on the left: the main column keeps room for signatures
            assert b.eval("document.querySelector('article').getBoundingClientRect().width") >= 680, name
            assert b.eval("document.querySelectorAll('nav.md-nav--secondary .md-nav__link').length") > 0, name
            shot = b.screenshot(tmp_path / f"{name}.png")
            assert _png_size(shot) == (1280, 1600) and shot.stat().st_size > 50_000
        # search: Material's worker indexes the site; typing answers with results that link into the site
        b.goto(url + "index.html")
        b.type("input.md-search__input", "adjustment set")
        assert b.wait_for("document.querySelectorAll('.md-search-result__item').length", 30) >= 3
        hrefs = b.eval("[...document.querySelectorAll('.md-search-result__item a')].map(a => a.getAttribute('href'))")
        assert any(h.startswith(url + "discovery.html") for h in hrefs), hrefs
        b.screenshot(tmp_path / "search.png")
        m = b.resize((390, 844))  # a phone: the sidebar folds into a drawer behind the header's menu button
        m.goto(url + "data.html")
        m.wait_for(MATHS_DONE)
        assert m.eval("getComputedStyle(document.querySelector('label.md-header__button[for=__drawer]')).display") != "none"
        assert m.eval("document.querySelector('nav.md-nav--primary').getBoundingClientRect().right") <= 0
        m.eval("document.querySelector('label.md-header__button[for=__drawer]').click()")
        m.wait_for("document.querySelector('nav.md-nav--primary').getBoundingClientRect().left >= 0", 10)
        assert _png_size(m.screenshot(tmp_path / "mobile.png")) == (390, 844)


@needs_chromium
def test_browser_no_page_overflows_or_shows_raw_markdown(site, browser):
    """Every page at a normal window: nothing wider than the window (document scrollWidth > clientWidth), no Markdown left as
    text. The search index is not loaded (typing into search is the test above), and a page without formulas is checked
    without waiting for MathJax, which has nothing to typeset there."""
    bad = {}
    browser.block(["*/search/search_index.json"])
    with serve(site.out) as url:
        for p in site.pages:
            browser.goto(url + p.html)
            if browser.eval("document.querySelectorAll('.arithmatex').length"): browser.wait_for(MATHS_DONE)
            found = page_problems(browser)
            if found: bad[p.html] = found
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


def test_signature_links_tables_and_sections():
    "Links inside code (nbdev's doc links in a signature) become plain names; pandas tables lose the 0..n-1 index, NaN and 1e+01 forms."
    md = "See [`f`](https://x.io/a.html#f).\n```python\ndef g(\n    p:str, # by [`f`](https://x.io/a.html#f) or [h](b.html)\n)\n```"
    out = B.unlink_code(md)
    assert "See [`f`](https://x.io/a.html#f)." in out and "# by f or h" in out and "](" not in out.split("```python")[1]
    import pandas as pd
    raw = pd.DataFrame({"a": [25.816, 1e-9, float("nan")], "b": ["x", "y", None]}).to_html()
    assert "2.581600e+01" in raw and "NaN" in raw and "None" in raw                       # what pandas prints
    html = B.tidy_table_html(raw)
    soup = BeautifulSoup(html, "html.parser")
    assert [th.get_text() for th in soup.select("thead th")] == ["a", "b"] and not soup.select("tbody th")
    assert [td.get_text() for td in soup.select("tbody td")] == ["25.82", "x", "1.000e-09", "y", "", ""] and "NaN" not in html and "e+01" not in html
    named = B.tidy_table_html(pd.DataFrame({"a": [1.5]}, index=pd.Index(["r"], name="k")).to_html())
    assert BeautifulSoup(named, "html.parser").select_one("tbody th").get_text() == "r"     # a real index stays
    # the sidebar's sections are the navigation; an unlisted notebook joins its predecessor's section
    cfg = B.site_config(ROOT); pages = B.site_pages(cfg)
    nav = B.site_nav(cfg, pages)
    assert nav[0] == {"Overview": "index.md"} and {"Effects"} <= {k for x in nav if isinstance(x, dict) for k in x}
    effects = next(x["Effects"] for x in nav if isinstance(x, dict) and "Effects" in x)
    assert effects[:5] == ["matching.md", "neighbours.md", "effects.md", "weighting.md", "sensitivity.md"]
    base = next(x["Base"] for x in nav if isinstance(x, dict) and "Base" in x)
    listed = next(list(B._sidebar_entries(x["contents"])) for x in B._sidebar(cfg) if isinstance(x, dict) and x.get("section") == "Base")
    assert {"00c_errors.ipynb", "00d_compute.ipynb"} <= set(listed)
    assert base == [p.md for p in pages if p.src.name in listed]                              # sidebar.yml's section, in its order
    extra = B.Page(cfg["nbs_path"] / "02z_new.ipynb", "new.md", "New")
    i = [p.md for p in pages].index("sensitivity.md")
    nav2 = B.site_nav(cfg, pages[:i + 1] + [extra] + pages[i + 1:])
    eff2 = next(x["Effects"] for x in nav2 if isinstance(x, dict) and "Effects" in x)
    assert eff2[eff2.index("sensitivity.md") + 1] == "new.md"

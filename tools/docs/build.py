"""Build the docs site with MkDocs + Material from nbdev's processed notebooks, and README.md from nbs/index.ipynb (`readme.py`).

    python tools/docs/build.py --out _site --readme     # what `make docs` runs
    python tools/docs/build.py --check --no-site        # fail if README.md is out of date with nbs/index.ipynb

The site: nbdev 2.4's processors (`nbdev.serve.proc_nbs`, what `nbdev_docs` runs before Quarto) apply the
directives (`#| hide`, `#| export`, `#| echo: false` ...) and render `show_doc`; this module turns each processed
notebook into one Markdown page (`notebook_markdown`); `mkdocs.yml` + `tools/docs/hooks.py` feed the pages to MkDocs
(Material theme, search, MathJax vendored from the `jupyter-server-mathjax` wheel) and `mkdocs build --strict` fails
on any broken link or anchor; `check_links` then checks every `href`/`src` of the built HTML too.
`_quarto.yml` stays for `nbdev_docs` where Quarto is installed. This is a development tool (the `dev` extra),
not part of the `causal_llmrec` package.
"""
import re, os, sys, json, argparse, warnings, contextlib, configparser, base64, subprocess, time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, unquote
from html.parser import HTMLParser

ROOT = Path(__file__).resolve().parents[2]  # the project folder this tool ships in


class DocsError(RuntimeError):
    "A docs build problem (a missing notebook, a bad sidebar.yml, a failed nbdev or MkDocs step)."


# ---------------------------------------------------------------------------------------------------------------------
# Project settings and pages
def site_config(root=None, # a folder at or below the project root (the one holding settings.ini); default: this tool's project
               )->dict: # settings.ini's keys plus `root`, `nbs_path`, `lib_path` as Paths
    "Read the project's `settings.ini` (walking up from `root`) without importing nbdev's global state."
    start = Path(root or ROOT).resolve()
    for d in [start, *start.parents]:
        if (d/'settings.ini').exists(): break
    else: raise DocsError(f"no settings.ini found at or above {start}: run from the project folder or pass --root")
    cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
    cp.read(d/'settings.ini', encoding='utf-8')
    cfg = dict(cp['DEFAULT'])
    cfg['root'] = d
    cfg['nbs_path'] = d/cfg.get('nbs_path', 'nbs')
    cfg['lib_path'] = d/cfg.get('lib_path', cfg.get('lib_name', ''))
    cfg.setdefault('title', cfg.get('lib_name', d.name))
    cfg.setdefault('readme_nb', 'index.ipynb')
    cfg.setdefault('branch', 'main')
    cfg['doc_url'] = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    return cfg


_re_num = re.compile(r'^\d+[a-zA-Z0-9]*_')

def page_name(nb, # a notebook path or file name
              ext:str='.html', # '.html' for the built page, '.md' for the MkDocs source
             )->str: # the page's file name in the site
    "The file name nbdev/Quarto give a notebook's page: the numeric prefix goes, `00_data.ipynb` -> `data.html`."
    p = Path(nb)
    if p.name == 'index.ipynb': return 'index' + ext
    return _re_num.sub('', p.name.lower()).rsplit('.', 1)[0] + ext


@dataclass
class Page:
    "One page of the site: its source notebook, its Markdown file (the MkDocs source) and its title."
    src: Path       # the notebook in nbs/
    md: str         # the MkDocs source file name, e.g. data.md (built as data.html)
    title: str = '' # the notebook's `# Title`
    description: str = '' # every `>` line under the title, joined (the page subtitle)
    @property
    def html(self):
        "The built page's file name, e.g. data.html."
        return self.md[:-3] + '.html'
    def __repr__(self): return f"Page({self.src.name} -> {self.html}: {self.title!r})"


def _read_json_nb(path):
    try: return json.loads(Path(path).read_text(encoding='utf-8'))
    except Exception as e: raise DocsError(f"cannot read notebook {path}: {e}") from e

def _src(c): return ''.join(c.get('source', '')) if isinstance(c.get('source'), list) else c.get('source', '')

def nb_title(path, # a source notebook
            )->tuple: # (title, description): the first `# heading` and all the `>` lines under it, joined
    "The page title and the full subtitle: nbdev's frontmatter reads only the first `>` line; we read them all."
    for c in _read_json_nb(path).get('cells', []):
        if c.get('cell_type') != 'markdown': continue
        src = _src(c)
        m = re.match(r'^\s*#\s+(.+)$', src, flags=re.M)
        if not m: continue
        desc = ' '.join(l.lstrip('>').strip() for l in src.splitlines() if l.lstrip().startswith('>'))
        return m.group(1).strip(), re.sub(r'\s+', ' ', desc).strip()
    return Path(path).stem, ''


def _sidebar_entries(obj):
    "Flatten the `contents` of a Quarto sidebar (strings, {href:..}, {section:.., contents:..})."
    if isinstance(obj, str): yield obj
    elif isinstance(obj, dict):
        if 'href' in obj: yield obj['href']
        for v in ('contents', 'file'):
            if v in obj: yield from _sidebar_entries(obj[v])
    elif isinstance(obj, list):
        for o in obj: yield from _sidebar_entries(o)

def _sidebar(cfg):
    "The `contents` of `nbs/sidebar.yml` (None when there is no sidebar.yml)."
    import yaml
    sb = cfg['nbs_path']/'sidebar.yml'
    if not sb.exists(): return None
    try: y = yaml.safe_load(sb.read_text(encoding='utf-8')) or {}
    except yaml.YAMLError as e: raise DocsError(f"{sb} is not valid YAML: {e}") from e
    return ((y.get('website') or {}).get('sidebar') or {}).get('contents', [])

def site_pages(cfg:dict=None, # from `site_config`
               allow_missing:bool=False, # skip (with a warning) sidebar entries whose notebook does not exist yet
              )->list: # the `Page`s, in sidebar order, index first
    "The pages: the notebooks in `nbs/sidebar.yml` order, then (like Quarto, which publishes them all) any notebook it does not list, after its predecessor by file name."
    cfg = cfg or site_config()
    nbs, sb = cfg['nbs_path'], _sidebar(cfg)
    found = sorted(p.name for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    entries = list(_sidebar_entries(sb)) if sb is not None else list(found)
    for nb in found:  # like Quarto, publish every notebook: one the sidebar does not list yet goes after its predecessor by name
        if nb not in entries: entries.insert(max([i + 1 for i, e in enumerate(entries) if e < nb] or [0]), nb)
    idx = cfg.get('readme_nb', 'index.ipynb')
    if idx not in entries and (nbs/idx).exists(): entries.insert(0, idx)
    pages, seen = [], set()
    for e in entries:
        if not e.endswith('.ipynb'): continue
        src = nbs/e
        if not src.exists():
            msg = f"sidebar.yml lists {e}, but {src} does not exist"
            if allow_missing: warnings.warn(msg + ": page left out"); continue
            raise DocsError(msg + f": create it or remove it from {nbs/'sidebar.yml'}")
        md = 'index.md' if e == idx else page_name(e, '.md')
        if md in seen: raise DocsError(f"two sidebar entries give the page {md[:-3]}.html: rename one notebook")
        seen.add(md)
        pages.append(Page(src, md, *nb_title(src)))
    if not pages: raise DocsError(f"no notebooks to publish: {nbs} has none")
    return pages

def site_nav(cfg:dict, # from `site_config`
             pages:list, # from `site_pages`
            )->list: # MkDocs `nav`: Markdown file names, with `{section: [...]}` for the sidebar's sections
    """The MkDocs navigation from `nbs/sidebar.yml` (sections kept), so new notebooks need no change to `mkdocs.yml`: a notebook
    the sidebar does not list goes after its predecessor in the pages' order, in that predecessor's section. The index page is
    called 'Overview' (the site's name already heads the navigation)."""
    by_nb = {p.src.name: p.md for p in pages}
    idx = next((p.md for p in pages if p.md == 'index.md'), None)
    def conv(obj):
        if isinstance(obj, str): return [by_nb[obj]] if obj in by_nb else []
        if isinstance(obj, list): return [x for o in obj for x in conv(o)]
        if isinstance(obj, dict):
            if 'section' in obj: return [{str(obj['section']): conv(obj.get('contents', []))}]
            if 'href' in obj: return conv(obj['href'])
        return []
    sb = _sidebar(cfg)
    nav = conv(sb) if sb is not None else []
    listed = set(re.findall(r'"([^"]+\.md)"', json.dumps(nav)))
    def after(lst, prev, md):
        "Insert `md` after `prev` in the (nested) list that holds `prev`; False when `prev` is not there."
        for i, x in enumerate(lst):
            if x == prev: lst.insert(i + 1, md); return True
            if isinstance(x, dict) and any(after(v, prev, md) for v in x.values()): return True
        return False
    order = [p.md for p in pages]
    for i, md in enumerate(order):   # unlisted pages (published like Quarto publishes them), after their predecessor
        if md in listed: continue
        prev = next((order[j] for j in range(i - 1, -1, -1) if order[j] in listed), None)
        if prev is None or not after(nav, prev, md): nav.insert(0, md)
        listed.add(md)
    return [{'Overview': x} if x == idx else x for x in nav]


# ---------------------------------------------------------------------------------------------------------------------
# nbdev's processing
@contextlib.contextmanager
def _chdir(d):
    old = Path.cwd(); os.chdir(d)
    try: yield
    finally: os.chdir(old)

def mixed_import_cells(cfg:dict=None, # from `site_config`
                      )->list: # (notebook, cell index, first line) of every non-exported code cell mixing imports with other code
    "Cells nbdev's docs processing runs out of context (it runs every cell with an import): they break the build when they use other cells' names."
    import ast
    cfg = cfg or site_config()
    res = []
    for nbp in sorted(cfg['nbs_path'].glob('*.ipynb')):
        try: cells = _read_json_nb(nbp).get('cells', [])
        except DocsError: continue
        for i, c in enumerate(cells):
            if c.get('cell_type') != 'code': continue
            d, body = split_directives(_src(c))
            if d.keys() & {'export', 'exports', 'exporti'} or d.get('eval') == 'false' or 'nbdev_export' + '()' in body: continue
            try: nodes = ast.parse(re.sub(r'^\s*[%!].*$', '', body, flags=re.M)).body
            except SyntaxError: continue
            if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and \
               any(not isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) for n in nodes):
                res.append((nbp.name, i, body.strip().splitlines()[0]))
    return res

def _proc_is_stale(cfg:dict)->bool:
    "True when a module of the library is newer than a processed notebook: nbdev's cache looks only at each notebook's own time, but the source links are line numbers in the modules, which a change in another notebook can move."
    procs = list((cfg['root']/'_proc').rglob('*.ipynb'))
    mods = list(Path(cfg['lib_path']).glob('*.py'))
    return bool(procs and mods) and max(m.stat().st_mtime for m in mods) > min(p.stat().st_mtime for p in procs)

def process_notebooks(cfg:dict=None, # from `site_config`
                      n_workers:int=0, # parallel processes for nbdev (0: one at a time)
                      force:bool=False, # ignore nbdev's cache in _proc/
                     )->Path: # the folder of processed notebooks (`_proc/` at the project root)
    "Run nbdev's docs processing (`nbdev.serve.proc_nbs`, what `nbdev_docs` runs before Quarto): directives applied, show_doc rendered, doc links added."
    from nbdev.serve import proc_nbs
    from nbdev.config import get_config
    cfg = cfg or site_config()
    get_config.cache_clear()
    force = force or _proc_is_stale(cfg)
    try:
        with _chdir(cfg['root']), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return Path(proc_nbs(str(cfg['nbs_path']), n_workers=n_workers, force=force))
    except Exception as e:
        cause = f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ''
        raise DocsError(f"nbdev's docs processing failed{cause}: {e}\nnbdev runs every exported cell, show_doc cell and cell "
            "with an import statement to render the API sections, so such a cell must not use names defined in other cells: "
            "put the import in a cell of its own (nbdev FAQ). nbdev_docs fails the same way."
            + ''.join(f"\n  {nb} cell {i}: {line}" for nb, i, line in mixed_import_cells(cfg))) from e
    finally: get_config.cache_clear()


def process_notebook(nb, # one notebook in nbs/
                     cfg:dict=None, # from `site_config`
                    )->Path: # the processed notebook in `_proc/`
    "nbdev's docs processing of one notebook (the README needs only `index.ipynb`, whatever state the others are in)."
    from nbdev.serve import _proc_file
    from nbdev.serve_drv import main as proc_one
    from nbdev.config import get_config
    cfg = cfg or site_config()
    nb = Path(nb).resolve()
    cache = cfg['root']/'_proc'
    get_config.cache_clear()
    try:
        with _chdir(cfg['root']), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            job = _proc_file(nb, cache, cfg['nbs_path'].resolve())
            if job: proc_one(job)
    except Exception as e:
        raise DocsError(f"nbdev's docs processing of {nb.name} failed: {e}") from e
    finally: get_config.cache_clear()
    return cache/nb.relative_to(cfg['nbs_path'].resolve())


# ---------------------------------------------------------------------------------------------------------------------
# One processed notebook -> one Markdown page
_re_dir = re.compile(r'^\s*#\|\s*([\w-]+)\s*(?::\s*(.*?))?\s*$')

def split_directives(src:str, # a code cell's source
                    )->tuple: # ({directive: value}, the source without the directive lines)
    "Split Quarto/nbdev `#| key: value` lines off the top of a code cell."
    lines, d, i = src.splitlines(), {}, 0
    while i < len(lines) and (_re_dir.match(lines[i]) or not lines[i].strip()):
        m = _re_dir.match(lines[i])
        if m: d[m.group(1).lower()] = (m.group(2) or '').strip().strip('"\'').lower()
        i += 1
    return d, '\n'.join(lines[i:])


def pandoc_id(text:str, # a heading's text
              sep:str='-', # the word separator
             )->str: # the anchor pandoc (so Quarto, so nbdev's doc links) gives the heading: `RecData.frame` -> `recdata.frame`
    "The heading identifier of pandoc, used as MkDocs' `toc` slugify so nbdev's `page.html#name` links resolve."
    t = re.sub(r'[^\w\s.-]', '', text.strip().lower())
    t = re.sub(r'\s+', sep, t)
    t = re.sub(r'^[^a-z]+', '', t)
    return t or 'section'


def _fence(text, lang='text'):
    "A fenced code block that survives backticks inside `text`."
    n = max([3] + [len(m) + 1 for m in re.findall(r'`{3,}', text)])
    return f"{'`'*n}{lang}\n{text.rstrip()}\n{'`'*n}"

_re_ansi = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
_CALLOUT_KINDS = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'important': 'danger', 'caution': 'warning'}

def callouts_to_admonitions(md:str, # Markdown with Quarto callouts (`::: {.callout-note title="..."}` ... `:::`)
                           )->str: # Markdown with MkDocs admonitions (`!!! note "..."`, indented body)
    "Turn Quarto's callout blocks into Material admonitions (collapsible ones into `???`); other `:::` divs lose their fences."
    out, stack = [], []  # stack of indents of the open divs ('' for divs whose fences are just dropped)
    for line in md.splitlines():
        ind = ''.join(stack)
        m = re.match(r'^\s*:::+\s*\{([^}]*)\}\s*$', line) or re.match(r'^\s*:::+\s*([\w-]+)\s*$', line)
        if m:
            attrs = m.group(1)
            k = re.search(r'\.callout-(\w+)', attrs) or re.match(r'callout-(\w+)', attrs)
            if k:
                kind = _CALLOUT_KINDS.get(k.group(1), 'note')
                title = re.search(r'title\s*=\s*"([^"]*)"', attrs)
                collapse = re.search(r'collapse\s*=\s*"?true', attrs)
                t = f' "{title.group(1)}"' if title else ''
                out.append(f"{ind}{'???' if collapse else '!!!'} {kind}{t}")
                stack.append('    ')
            else: stack.append('')
            continue
        if re.match(r'^\s*:::+\s*$', line) and stack:
            stack.pop(); out.append(''); continue
        out.append(ind + line if line.strip() else '')
    return '\n'.join(out)


_re_link = re.compile(r'(!?\[(?:[^\[\]]|\[[^\]]*\])*\])\(\s*(<[^>]*>|[^)\s]+)(\s+"[^"]*")?\s*\)(\{[^}]*\})?')

class LinkFixer:
    "Rewrites a page's links for MkDocs: nbdev's absolute doc links and `page.html`/`nb.ipynb` links to the pages' Markdown files (anchors checked, methods without a section of their own sent to their class), other repository files to the repository URL."
    def __init__(self, cfg, pages, anchors=None):
        self.cfg, self.anchors = cfg, anchors or {}
        self.by_html = {p.html: p.md for p in pages}
        self.by_nb = {p.src.name: p.md for p in pages}
        self.repo = cfg.get('git_url', '').rstrip('/')

    def anchor(self, md, frag):
        "`frag` if page `md` has it; else the longest dotted prefix it has (`cls.meth` -> `cls`); else `frag` (MkDocs then reports it)."
        ids = self.anchors.get(md)
        if not frag or ids is None or frag in ids: return frag
        parts = frag.split('.')
        while len(parts) > 1:
            parts = parts[:-1]
            if '.'.join(parts) in ids: return '.'.join(parts)
        return frag

    def url(self, u, here):
        "The rewritten URL `u` found on page `here` (a Markdown file name); None for an nbdev doc link to a name without a section."
        if u.startswith('<') and u.endswith('>'): u = u[1:-1]
        doc = self.cfg.get('doc_url')
        if doc and (u.startswith(doc + '/') or u == doc):  # nbdev's own link of a `name` (from _modidx.py)
            u = u[len(doc):].lstrip('/') or 'index.html'
            parts = urlsplit(u)
            md = self.by_html.get(parts.path) or here
            if parts.fragment and md in self.anchors and self.anchor(md, parts.fragment) not in self.anchors[md]: return None
        parts = urlsplit(u)
        if parts.scheme or u.startswith('//') or u.startswith('mailto:'): return u
        path, frag = unquote(parts.path), parts.fragment
        if not path: return '#' + self.anchor(here, frag) if frag else u
        name = Path(path).name
        md = self.by_html.get(name) if path == name else None
        md = md or (self.by_nb.get(name) if path == name else None)
        if md: return md + ('#' + self.anchor(md, frag) if frag else '')
        # a file of the repository outside the docs: link it on the repository host
        tgt = Path(os.path.normpath(self.cfg['nbs_path']/path))
        try: rel = tgt.relative_to(self.cfg['root'])
        except ValueError: return u
        if self.repo and tgt.exists() and not path.endswith(('.html',)):
            kind = 'tree' if tgt.is_dir() else 'blob'
            return f"{self.repo}/{kind}/{self.cfg['branch']}/{rel.as_posix()}" + (f'#{frag}' if frag else '')
        return u

    def __call__(self, md, here):
        "Rewrite every Markdown link of `md` (outside code) for page `here`."
        return _outside_code(md, lambda t: self._fix(t, here))

    def _fix(self, text, here):
        "Rewrite the links of a stretch of Markdown without fenced code, leaving inline code spans alone."
        spans = [(m.start(), m.end()) for m in re.finditer(r'(`+)(?:(?!\1).)+?\1', text, flags=re.S)]
        def f(m):
            if any(a < m.start() < b for a, b in spans): return m.group(0)  # inside an inline code span: text, not a link
            attrs = m.group(4) or ''
            if m.group(1) == '[source]' and attrs: attrs = '{ .doc-source-link target="_blank" }'  # nbdev's show_doc source link
            u = self.url(m.group(2), here)
            if u is None: return m.group(1)[1:-1]  # a private or undocumented name: its text, unlinked
            return f"{m.group(1)}({u}{m.group(3) or ''}){attrs}"
        return _re_link.sub(f, text)


def _outside_code(md, fn):
    "Apply `fn` to the parts of Markdown `md` outside fenced code blocks."
    out, buf, fence = [], [], None
    def flush():
        if buf:
            text = '\n'.join(buf)
            out.append(fn(text))
            buf.clear()
    for line in md.split('\n'):
        m = re.match(r'^\s*(`{3,}|~{3,})', line)
        if fence is None and m: flush(); fence = m.group(1); out.append(line); continue
        if fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == '': fence = None
            continue
        buf.append(line)
    flush()
    return '\n'.join(out)


_re_code_link = re.compile(r'\[(`?)([^\]\n]+?)\1\]\((?:<[^>]*>|[^)\s]+)\)')

def unlink_code(md:str, # Markdown, e.g. a `show_doc` output
               )->str: # the same Markdown with links inside fenced code blocks reduced to their text
    """nbdev's doc links also rewrite names inside a signature's code block (`path:str, # written by [`save`](https://..)`),
    where Markdown is not rendered and the link would show as raw text: inside fenced code, keep only the name."""
    out, fence = [], None
    for line in md.split('\n'):
        m = re.match(r'^\s*(`{3,}|~{3,})', line)
        if fence is None:
            if m: fence = m.group(1)
            out.append(line); continue
        if line.strip().startswith(fence) and line.strip().strip(fence[0]) == '': fence = None; out.append(line); continue
        out.append(_re_code_link.sub(lambda x: x.group(2), line))
    return '\n'.join(out)


def heading_ids(md:str, # a page's Markdown
               )->set: # the anchors MkDocs will give its headings (with `pandoc_id` as slugify)
    "The heading anchors of a Markdown page, as MkDocs' `toc` will make them (explicit `{#id}` attributes too)."
    ids = set()
    def f(t):
        for m in re.finditer(r'^#{1,6}\s+(.*?)\s*#*\s*$', t, flags=re.M):
            h = m.group(1)
            x = re.search(r'\{[^}]*#([\w.-]+)[^}]*\}\s*$', h)
            if x: ids.add(x.group(1)); continue
            h = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', h).replace('`', '')
            ids.add(pandoc_id(h))
        for m in re.finditer(r'\bid="([^"]+)"', t): ids.add(m.group(1))
        return t
    _outside_code(md, f)
    return ids


def _frontmatter(cells):
    "Pop nbdev's YAML frontmatter raw cell; return it as a dict."
    import yaml
    fm = {}
    for c in list(cells):
        if c.get('cell_type') == 'raw' and _src(c).lstrip().startswith('---'):
            try: fm.update(yaml.safe_load(_src(c).strip().strip('-')) or {})
            except yaml.YAMLError: continue
            cells.remove(c)
    return fm


_re_sci = re.compile(r'^[+-]?\d+(?:\.\d+)?e[+-]\d+$', re.I)
_NA = {'NaN', 'nan', 'None', '<NA>', 'NaT'}

def tidy_table_html(html:str, # a notebook's HTML output holding pandas tables (`table.dataframe`)
                   )->str: # the same output with its tables tidied for reading
    """pandas' HTML tables as a reader wants them: the default 0..n-1 index column dropped, missing values (`NaN`, `None`)
    as empty cells, and numbers printed in scientific notation (`2.581600e+01`) as plain ones with 4 significant digits.
    pandas' scoped `<style>` goes too (the site's CSS styles the tables)."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, 'html.parser')
    tables = soup.select('table.dataframe')
    if not tables: return html
    for st in soup.find_all('style'): st.decompose()
    for t in tables:
        body = t.find('tbody')
        rows = body.find_all('tr', recursive=False) if body else []
        heads = [r.find(['th', 'td'], recursive=False) for r in rows]
        labels = [h.get_text(strip=True) if h is not None and h.name == 'th' else None for h in heads]
        hrows = t.find('thead').find_all('tr', recursive=False) if t.find('thead') else []
        if rows and labels == [str(i) for i in range(len(rows))] and len(hrows) == 1:
            for r in rows + hrows:
                first = r.find(['th', 'td'], recursive=False)
                if first is not None: first.decompose()
        for td in t.find_all('td'):
            v = td.get_text(strip=True)
            if v in _NA: td.string = ''
            elif _re_sci.match(v):
                x = float(v)
                td.string = f'{x:.4g}' if 1e-4 <= abs(x) < 1e6 or x == 0 else f'{x:.3e}'
    return str(soup)


def _output_md(o, stem, n, files):
    "One output of a code cell as Markdown (markdown > html > image > text), images written to `files`."
    t = o.get('output_type')
    if t == 'stream':
        if o.get('name') == 'stderr': return ''
        txt = _re_ansi.sub('', ''.join(o.get('text', '')))
        return _fence(txt) if txt.strip() else ''
    if t == 'error': return _fence(_re_ansi.sub('', '\n'.join(o.get('traceback', [])) or f"{o.get('ename')}: {o.get('evalue')}"))
    d = o.get('data', {})
    j = lambda k: ''.join(d[k]) if isinstance(d[k], list) else d[k]
    if 'text/markdown' in d: return unlink_code(j('text/markdown').strip())
    if 'text/html' in d:
        html = j('text/html').strip()
        if 'dataframe' in html: html = tidy_table_html(html)
        html = re.sub(r'\n\s*\n', '\n', html)  # a blank line would end Markdown's raw-HTML block
        return f'<div class="nb-output" markdown="0">\n{html}\n</div>'
    for mime, ext in (('image/png', 'png'), ('image/jpeg', 'jpg'), ('image/svg+xml', 'svg')):
        if mime in d:
            name = f'{stem}_files/{stem}_{n}.{ext}'
            files[name] = j(mime).encode() if ext == 'svg' else base64.b64decode(j(mime))
            return f'![figure]({name})'
    if 'text/plain' in d: return _fence(_re_ansi.sub('', j('text/plain')))
    return ''


def notebook_markdown(proc_nb, # a notebook processed by nbdev (`_proc/..`)
                      page:Page, # its `Page` (title, full subtitle, Markdown name)
                     )->tuple: # (the page's Markdown, {file name: bytes} of its figures); links are fixed later by `LinkFixer`
    "One processed notebook as one MkDocs Markdown page: title and full subtitle, prose (callouts as admonitions), code, outputs."
    cells = _read_json_nb(proc_nb).get('cells', [])
    fm = _frontmatter(cells)
    title = page.title or fm.get('title', page.src.stem)
    desc = page.description or fm.get('description', '')
    parts = [f"# {title}"]
    if desc: parts.append(f"{desc}\n{{: .page-subtitle }}")
    stem, files, n = page.md[:-3], {}, 0
    for c in cells:
        src = _src(c)
        if c.get('cell_type') == 'markdown':
            if not src.strip() or re.fullmatch(r'\s*<!--.*?-->\s*', src, flags=re.S): continue
            parts.append(callouts_to_admonitions(src.strip())); continue
        if c.get('cell_type') != 'code': continue
        d, body = split_directives(src)
        if d.get('include') == 'false' or 'hide' in d or d.keys() & {'export', 'exports', 'exporti'}: continue
        block = []
        if d.get('echo') != 'false' and body.strip():
            code = _fence(body, 'python')
            if d.get('code-fold') in ('true', 'show'):
                code = f"???{'+' if d['code-fold'] == 'show' else ''} example \"Code\"\n" + '\n'.join('    ' + l for l in code.splitlines())
            block.append(code)
        if d.get('output') != 'false':
            for o in c.get('outputs', []):
                n += 1
                md = _output_md(o, stem, n, files)
                if md: block.append(callouts_to_admonitions(md) if 'text/markdown' in o.get('data', {}) else md)
        parts.extend(block)
    return '\n\n'.join(parts) + '\n', files


def site_markdown(cfg:dict, # from `site_config`
                  pages:list, # from `site_pages`
                  proc:Path, # nbdev's processed notebooks (`process_notebooks`)
                 )->dict: # {file name: str or bytes}: every page's Markdown (links fixed) and its figures
    "Every page of the site as Markdown, with links rewritten for MkDocs against the anchors all pages really have."
    raw, files = {}, {}
    for p in pages:
        pnb = proc/p.src.relative_to(cfg['nbs_path'])
        if not pnb.exists(): raise DocsError(f"nbdev did not produce {pnb}: run nbdev_proc_nbs to see why")
        raw[p.md], figs = notebook_markdown(pnb, p)
        files.update(figs)
    fix = LinkFixer(cfg, pages, {k: heading_ids(v) for k, v in raw.items()})
    return {**{k: fix(v, k) for k, v in raw.items()}, **files}


# ---------------------------------------------------------------------------------------------------------------------
# Link check of the built HTML (MkDocs' --strict checks the Markdown links; this checks every href/src it wrote)
@dataclass
class BrokenLink:
    "An internal link of the built site that does not resolve."
    page: str; url: str; reason: str
    def __str__(self): return f"{self.page}: {self.url} ({self.reason})"

class _PageScan(HTMLParser):
    "One pass over a page: the ids (and `<a name>`s) it defines and the `(tag, url)` of every link it makes."
    _url_attr = {'a': 'href', 'link': 'href', 'img': 'src', 'script': 'src', 'source': 'src', 'iframe': 'src'}
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id') is not None: self.ids.add(a['id'])
        if tag == 'a' and a.get('name') is not None: self.ids.add(a['name'])
        u = a.get(self._url_attr.get(tag, ''))
        if u: self.links.append((tag, u))
    handle_startendtag = handle_starttag

def _scan(path:Path)->_PageScan:
    scan = _PageScan()
    scan.feed(path.read_text(encoding='utf-8')); scan.close()
    return scan

def _ids(html):
    "The ids a page defines (every `id=` and `<a name=>`)."
    scan = _PageScan(); scan.feed(html); scan.close()
    return scan.ids

def check_links(site:Path, # a built site folder
                base:str='', # the URL path the site is served under (`/causal_llmrec`): root-absolute links under it are internal
               )->list: # the `BrokenLink`s (empty when every internal link resolves)
    "Check every internal `href`/`src` of every HTML page in `site`: the file exists and, for `page.html#anchor`, the anchor does too."
    site = Path(site)
    if not site.is_dir(): raise FileNotFoundError(f"no site folder at {site}: build it first (python tools/docs/build.py --out {site})")
    scans, broken = {}, []   # each page is read once: its links when it is checked, its ids when a link points into it
    def scan(p):
        if p not in scans: scans[p] = _scan(p)
        return scans[p]
    for p in sorted(site.rglob('*.html')):
        if 'assets' in p.relative_to(site).parts: continue  # vendored MathJax test pages
        rel = p.relative_to(site).as_posix()
        for tag, u in scan(p.resolve()).links:
            parts = urlsplit(u)
            if parts.scheme or u.startswith('//'): continue  # http(s), mailto, data: ... are not internal
            path, frag = unquote(parts.path), unquote(parts.fragment)
            if base and path.startswith(base.rstrip('/') + '/'): path = os.path.relpath(site/path[len(base.rstrip('/')) + 1:], p.parent)
            target = (p.parent/path).resolve() if path else p.resolve()
            if path.endswith('/') or target.is_dir(): target = target/'index.html'
            try: target.relative_to(site.resolve())
            except ValueError: broken.append(BrokenLink(rel, u, 'points outside the site')); continue
            if not target.exists(): broken.append(BrokenLink(rel, u, f'no file {target.relative_to(site.resolve()).as_posix()}')); continue
            if frag and target.suffix == '.html' and frag not in scan(target).ids:
                broken.append(BrokenLink(rel, u, f'no anchor #{frag} in {target.name}'))
    return broken


@dataclass
class SiteReport:
    "What `build_site` built: the site folder, its pages, MkDocs' log and the broken internal links."
    out: Path
    pages: list
    broken: list = field(default_factory=list)
    seconds: float = 0.
    log: str = ''
    @property
    def ok(self):
        "True when every internal link resolves."
        return not self.broken
    def __repr__(self):
        s = f"Docs site in {self.out}: {len(self.pages)} pages ({', '.join(p.html for p in self.pages)}), built in {self.seconds:.1f}s\n"
        return s + ("internal links: all resolve" if self.ok else
                    f"{len(self.broken)} broken internal links:\n" + '\n'.join(f"  {b}" for b in self.broken))


def build_site(out='_site', # the folder to write the site into (replaced)
               root=None, # the project folder (default: this tool's project)
               n_workers:int=0, # parallel processes for nbdev's processing (0: one at a time)
               force:bool=False, # ignore nbdev's cache in _proc/
               allow_missing:bool=False, # leave out (with a warning) sidebar notebooks that do not exist yet
               strict:bool=True, # `mkdocs build --strict`: any warning (a broken link or anchor) fails the build
              )->SiteReport: # the pages and any broken links of the built HTML
    "Build the site: `mkdocs build --strict` with `mkdocs.yml` (whose hooks run nbdev's processing), then check the HTML's links."
    t0 = time.time()
    cfg = site_config(root)
    pages = site_pages(cfg, allow_missing)
    out = Path(out).resolve()
    env = {**os.environ, 'DOCS_NBDEV_WORKERS': str(n_workers), 'DOCS_FORCE': '1' if force else '',
           'DOCS_ALLOW_MISSING': '1' if allow_missing else ''}
    cmd = [sys.executable, '-m', 'mkdocs', 'build', '--clean', '-f', str(cfg['root']/'mkdocs.yml'), '-d', str(out)]
    if strict: cmd.append('--strict')
    r = subprocess.run(cmd, cwd=cfg['root'], env=env, capture_output=True, text=True)
    if r.returncode:
        log = '\n'.join(l for l in _re_ansi.sub('', r.stderr).splitlines() if l.strip() and not l.startswith('INFO') and '│' not in l)
        raise DocsError(f"mkdocs build{' --strict' if strict else ''} failed:\n{log[-4000:]}")
    return SiteReport(out, pages, check_links(out, urlsplit(cfg.get('doc_url', '')).path), time.time() - t0, r.stderr)


# ---------------------------------------------------------------------------------------------------------------------
def main(argv=None, # command-line arguments (default: sys.argv[1:])
        )->int: # exit status: 0 ok, 1 broken links or a stale README (--check), 2 a build error
    "The command line: `python tools/docs/build.py --out _site [--readme] [--check] [--no-site]`."
    p = argparse.ArgumentParser(prog='python tools/docs/build.py',
        description="Build the docs site (MkDocs + Material, `mkdocs build --strict`, from nbdev's processed notebooks in "
                    "nbs/sidebar.yml order) into --out and check every internal link of its HTML; with --readme, regenerate "
                    "README.md from nbs/index.ipynb. Exits 1 on broken links or, with --check, an out-of-date README.")
    p.add_argument('--out', default='_site', help='the site folder (replaced); default: _site')
    p.add_argument('--readme', action='store_true', help='also regenerate README.md (and index_files/) from nbs/index.ipynb')
    p.add_argument('--check', action='store_true', help='do not write README.md; fail if it is out of date with nbs/index.ipynb')
    p.add_argument('--no-site', action='store_true', help='skip the site (with --readme or --check: the README only)')
    p.add_argument('--root', default=None, help='the project folder (default: the one holding this tool)')
    p.add_argument('--workers', type=int, default=2, help="parallel processes for nbdev's processing; default: 2")
    p.add_argument('--force', action='store_true', help="ignore nbdev's cache in _proc/")
    p.add_argument('--allow-missing', action='store_true', help='leave out (with a warning) sidebar notebooks that do not exist yet')
    a = p.parse_args(argv)
    from docs.readme import readme_in_sync, write_readme
    try:
        status = 0
        if not a.no_site:
            rep = build_site(a.out, a.root, n_workers=a.workers, force=a.force, allow_missing=a.allow_missing)
            print(repr(rep))
            if not rep.ok: status = 1
        if a.check:
            stale = readme_in_sync(a.root)
            if stale:
                print(f"README out of date with nbs/index.ipynb: {', '.join(stale)}; run `make docs`", file=sys.stderr)
                status = 1
            else: print("README.md: in sync with nbs/index.ipynb")
        elif a.readme: print(f"wrote {write_readme(a.root)}")
        return status
    except (DocsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == '__main__':  # run as a script: use the `docs` package's copy, so its errors are the ones `main` catches
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from docs.build import main as _main
    sys.exit(_main())

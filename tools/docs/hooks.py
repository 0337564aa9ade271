"""MkDocs hooks (`hooks:` in mkdocs.yml): the site's pages come from nbdev's processed notebooks, not from files on disk.

- `on_config`: reads settings.ini (title, repository URL, doc URL) and builds the navigation from `nbs/sidebar.yml`
  (or the notebook files), so a new notebook needs no change to mkdocs.yml; heading anchors follow pandoc's rule,
  so nbdev's `page.html#name` doc links resolve.
- `on_files`: runs nbdev's processing and replaces the docs folder's files by one generated Markdown page per
  notebook (`build.site_markdown`) plus the figures and `tools/docs/assets/`.
- `on_post_build`: copies MathJax 2.7 from the `jupyter-server-mathjax` wheel into `assets/mathjax/`: maths renders offline.
"""
import os, sys, shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from docs import build as B  # noqa: E402  (tools/docs/build.py)

ASSETS = Path(__file__).resolve().parent/'assets'
_state = {}


def on_config(config, **kw):
    "Site name, repository and navigation from settings.ini and nbs/sidebar.yml; pandoc's heading anchors."
    cfg = B.site_config(Path(config.config_file_path).parent)
    pages = B.site_pages(cfg, allow_missing=bool(os.environ.get('DOCS_ALLOW_MISSING')))
    _state.update(cfg=cfg, pages=pages)
    if not config.site_name or config.site_name == 'from settings.ini': config.site_name = cfg['title']
    if not config.site_description: config.site_description = cfg.get('description')
    if not config.site_url and cfg.get('doc_url'): config.site_url = cfg['doc_url'] + '/'
    if not config.repo_url and cfg.get('git_url'):
        config.repo_url = cfg['git_url']
        config.repo_name = '/'.join(cfg['git_url'].rstrip('/').split('/')[-2:])
    if not config.copyright and cfg.get('copyright'): config.copyright = 'Copyright ' + cfg['copyright']
    config.nav = B.site_nav(cfg, pages)
    config.mdx_configs.setdefault('toc', {})['slugify'] = B.pandoc_id
    return config


def on_files(files, config, **kw):
    "Replace the docs folder's files (the theme's stay) by the notebooks' pages, their figures and the site's CSS/JS."
    from mkdocs.structure.files import File, Files
    cfg, pages = _state['cfg'], _state['pages']
    proc = B.process_notebooks(cfg, n_workers=int(os.environ.get('DOCS_NBDEV_WORKERS') or 0),
                               force=bool(os.environ.get('DOCS_FORCE')))
    new = [File.generated(config, name, content=content) for name, content in B.site_markdown(cfg, pages, proc).items()]
    new += [File.generated(config, f'assets/{p.name}', abs_src_path=str(p)) for p in sorted(ASSETS.iterdir()) if p.is_file()]
    docs = Path(os.path.abspath(config.docs_dir))
    theme = [f for f in files if not (f.abs_src_path and Path(os.path.abspath(f.abs_src_path)).is_relative_to(docs))]
    return Files(theme + new)  # the theme's own assets stay; nbs/ itself is not published


def on_post_build(config, **kw):
    "Vendor MathJax (from the jupyter-server-mathjax wheel, no CDN) into the built site."
    try: import jupyter_server_mathjax
    except ImportError as e:
        raise RuntimeError("jupyter-server-mathjax is missing: install the dev extra (make setup)") from e
    src = Path(jupyter_server_mathjax.__file__).parent/'static'
    dst = Path(config.site_dir)/'assets'/'mathjax'
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('*.md', 'test', 'unpacked', 'docs'))

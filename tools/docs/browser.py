"""Headless Chromium for the browser tests of the docs site and the run report (a development tool, not part of the package).

`find_chromium` finds the browser `make setup-browser` installs (Debian's `chromium`); `headless_dom` loads a page
offline and returns its DOM after the scripts ran (and a screenshot); `serve` serves a folder on 127.0.0.1, which the
docs site needs for its search (a web worker fetching `search/search_index.json` cannot run from file:// URLs)."""
import os, re, shutil, tempfile, threading, contextlib, subprocess
from functools import partial
from pathlib import Path


def find_chromium()->str: # the path of a Chromium/Chrome binary, or None
    "Find headless-capable Chromium (Debian's `chromium`, or `chromium-browser`, `google-chrome`; `$CHROMIUM` first)."
    for c in [os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']:
        if c and shutil.which(c): return shutil.which(c)
    return None


def headless_dom(target, # a local HTML file (Path) or a URL
                 screenshot=None, # also save a PNG screenshot here
                 size:tuple=(1280, 2000), # window width, height in pixels
                 timeout:float=90, # seconds before giving up
                 budget_ms:int=5000, # virtual time for scripts and images to finish
                )->str: # the DOM after the page has loaded and run its scripts
    "Load a page in headless Chromium, offline and with a throw-away profile; return its DOM (and a screenshot)."
    exe = find_chromium()
    if exe is None: raise FileNotFoundError("no Chromium found: install Debian's `chromium` (make setup-browser) or set $CHROMIUM")
    url = target if re.match(r'^[a-z]+://', str(target)) else Path(target).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix='chromium-') as prof:
        flags = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--no-first-run', '--disable-sync', f'--user-data-dir={prof}',
                 '--hide-scrollbars', f'--window-size={size[0]},{size[1]}', f'--virtual-time-budget={budget_ms}']
        if screenshot:
            r = subprocess.run(flags + [f'--screenshot={Path(screenshot).resolve()}', url], capture_output=True, text=True, timeout=timeout)
            if r.returncode or not Path(screenshot).exists(): raise RuntimeError(f"chromium could not screenshot {url}: {r.stderr[-500:]}")
        r = subprocess.run(flags + ['--dump-dom', url], capture_output=True, text=True, timeout=timeout)
    if r.returncode or not r.stdout.strip(): raise RuntimeError(f"chromium could not load {url}: {r.stderr[-500:]}")
    return r.stdout


@contextlib.contextmanager
def serve(folder, # the folder to serve (a built site)
         ): # yields the base URL, `http://127.0.0.1:PORT/`
    "Serve `folder` over HTTP on a free port of 127.0.0.1 (in a thread) while the block runs."
    from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/'
    finally: srv.shutdown(); srv.server_close()


class Browser:
    """Headless Chromium driven over the DevTools protocol (`websocket-client`), for checks a DOM dump cannot make:
    typing into a search box, waiting for a web worker, screenshots at a given size.

    with Browser(size=(1280, 1600)) as b:
        b.goto(url); b.wait_for("document.body.dataset.math == 'typeset'"); b.screenshot('page.png')"""
    def __init__(self, size:tuple=(1280, 1600), # viewport width, height in CSS pixels
                 timeout:float=60, # seconds any one step may take
                ):
        self.size, self.timeout, self._id = size, timeout, 0

    def __enter__(self):
        import json, time, urllib.request
        from websocket import create_connection
        exe = find_chromium()
        if exe is None: raise FileNotFoundError("no Chromium found: install Debian's `chromium` (make setup-browser) or set $CHROMIUM")
        self._prof = tempfile.TemporaryDirectory(prefix='chromium-', ignore_cleanup_errors=True)
        self.proc = subprocess.Popen([exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--no-first-run', '--disable-sync', '--hide-scrollbars', '--remote-debugging-port=0',
            f'--user-data-dir={self._prof.name}', f'--window-size={self.size[0]},{self.size[1]}', 'about:blank'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, t0 = Path(self._prof.name)/'DevToolsActivePort', time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() - t0 > self.timeout or self.proc.poll() is not None:
                self.__exit__(None, None, None); raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=self.timeout))
        page = next(t for t in targets if t.get('type') == 'page')
        self.ws = create_connection(page['webSocketDebuggerUrl'], timeout=self.timeout, suppress_origin=True)
        self.send('Page.enable')
        self.resize(self.size)
        return self

    def resize(self, size:tuple, # viewport width, height in CSS pixels (under 600 wide: a phone)
              ):
        "Set the viewport's size, so one browser serves pages at several window sizes."
        self.size = tuple(size)
        self.send('Emulation.setDeviceMetricsOverride', width=self.size[0], height=self.size[1], deviceScaleFactor=1,
                  mobile=self.size[0] < 600)
        return self

    def block(self, patterns:list=(), # URL patterns (`*` a wildcard) the pages may not load; empty: allow all again
             ):
        "Block requests (say a search index a check does not need), so pages load with less work."
        self.send('Network.enable')
        self.send('Network.setBlockedURLs', urls=list(patterns))
        return self

    def __exit__(self, *exc):
        if getattr(self, 'ws', None):
            try: self.send('Browser.close')  # a clean exit, so its helper processes stop writing to the profile
            except Exception: pass
            self.ws.close()
        try: self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self._prof.cleanup()

    def send(self, method:str, # a DevTools protocol method, e.g. 'Page.navigate'
             **params)->dict: # its result
        "Call one DevTools method and return its result (events that arrive meanwhile are dropped)."
        import json
        self._id += 1
        self.ws.send(json.dumps({'id': self._id, 'method': method, 'params': params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get('id') == self._id:
                if 'error' in m: raise RuntimeError(f"{method}: {m['error']}")
                return m.get('result', {})

    def eval(self, js:str, # a JavaScript expression
            ): # its value (JSON-serialisable values only)
        "Evaluate `js` in the page and return its value."
        r = self.send('Runtime.evaluate', expression=js, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f"{js}: {r['exceptionDetails'].get('text')} {r.get('result', {}).get('description', '')}")
        return r['result'].get('value')

    def wait_for(self, js:str, # a JavaScript expression that becomes truthy
                 timeout:float=None, # seconds (default: the browser's timeout)
                ): # its truthy value
        "Poll `js` every 0.1 s until it is truthy; raise TimeoutError with the expression otherwise."
        import time
        t0 = time.time()
        while time.time() - t0 < (timeout or self.timeout):
            v = self.eval(js)
            if v: return v
            time.sleep(0.1)
        raise TimeoutError(f"not true after {timeout or self.timeout:.0f}s: {js}")

    def goto(self, url:str, # the page's URL
            ):
        "Load `url` and wait until its document has loaded."
        self.send('Page.navigate', url=url)
        self.wait_for("document.readyState == 'complete' && location.href != 'about:blank'")

    def type(self, selector:str, # CSS selector of an input
             text:str, # what to type
            ):
        "Focus the element and type `text` into it, as a user would (input events fire)."
        self.eval(f"(() => {{ const e = document.querySelector({selector!r}); e.focus(); e.click(); return true }})()")
        self.send('Input.insertText', text=text)

    def dom(self)->str: # the page's HTML as it is now
        "The DOM after the page's scripts ran (what `chromium --dump-dom` prints)."
        return self.eval("document.documentElement.outerHTML")

    def screenshot(self, path, # where to write the PNG
                  )->Path: # the PNG
        "Save a PNG of the viewport."
        import base64
        data = self.send('Page.captureScreenshot', format='png')['data']
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


# what a reader must never see: a page wider than the window, and Markdown that was not rendered
_PROBLEMS_JS = r"""(() => {
  const out = [], de = document.documentElement, W = de.clientWidth;
  if (de.scrollWidth > W + 1) {
    const wide = [...document.body.querySelectorAll('*')].filter(e => {
        const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return r.width > 0 && r.right > W + 1 && s.position !== 'fixed' && s.visibility !== 'hidden'; })
      .filter((e, _, all) => !all.some(o => o !== e && e.contains(o)))       // the innermost offenders
      .slice(0, 3).map(e => `<${e.tagName.toLowerCase()}${e.className ? ' class="' + e.className + '"' : ''}> to ${Math.round(e.getBoundingClientRect().right)}px: `
                            + JSON.stringify((e.innerText || '').slice(0, 60)));
    out.push(`horizontal overflow: the page is ${de.scrollWidth}px wide in a ${W}px window; ${wide.join('; ')}`);
  }
  const code = /^(PRE|CODE|KBD|SAMP)$/, skip = /^(SCRIPT|STYLE|TEXTAREA|NOSCRIPT|TEMPLATE)$/;
  const link = /\]\((https?:\/\/|\.{0,2}\/?[\w\/.-]+\.(html|md|ipynb)\b)/;   // a Markdown link left as text
  const prose = [[/\]\(/, 'a Markdown link'], [/\*\*[^*\s][^*]*\*\*/, 'Markdown bold'], [/```/, 'a code fence'],
                 [/`[^`\s][^`]*`/, 'inline code in backticks'], [/^\s{0,3}#{1,6}\s/, 'a Markdown heading']];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    let inCode = false, hidden = false, inOutput = false;
    for (let e = n.parentElement; e; e = e.parentElement) {
      if (skip.test(e.tagName) || e.classList.contains('MathJax_Preview') || e.classList.contains('arithmatex')) { hidden = true; break; }
      if (code.test(e.tagName)) inCode = true;
      if (e.classList.contains('nb-output')) inOutput = true;
    }
    if (hidden || !n.textContent.trim() || !n.parentElement.getClientRects().length) continue;
    const t = n.textContent;
    // in code, only a rendered signature (a block that starts with def/class, as show_doc writes it) may not carry Markdown:
    // other code, like this docs page's examples of link syntax, is shown as written
    const pre = inCode ? n.parentElement.closest('pre') : null;
    const signature = pre !== null && /^\s*(async\s+)?(def|class)\s/.test(pre.textContent);
    // a notebook's HTML output (`.nb-output`: a table the code printed) is data, not Markdown: `I(age**2)` there is a formula;
    // only a Markdown link in it means something was not rendered
    const hits = inCode ? (signature && link.test(t) ? ['a Markdown link'] : [])
                        : prose.filter(([re, what]) => !inOutput || what === 'a Markdown link').filter(([re]) => re.test(t)).map(([, what]) => what);
    for (const what of hits) {
      const key = what + t.slice(0, 40);
      if (seen.has(key)) continue; seen.add(key);
      const at = t.search(inCode ? link : prose.find(([, w]) => w === what)[0]);
      out.push(`raw Markdown (${what}) in ${inCode ? 'code' : 'text'}: ` + JSON.stringify(t.slice(Math.max(0, at - 30), at + 50)));
    }
  }
  return out;
})()"""

def page_problems(b:'Browser', # a `Browser` on a loaded page
                 )->list: # plain descriptions, empty when the page is fine
    """What a reader must never see on a page: horizontal overflow (`document.documentElement.scrollWidth` wider than the
    window, with the innermost elements that stick out) and Markdown left as text (a `[..](..)` link, `**bold**`, a code
    fence or backticks in the visible text, or a Markdown link inside a rendered signature: a code block that starts
    with `def` or `class`, as `show_doc` writes it; other code is shown as written). A notebook's HTML output (a
    `.nb-output` table) is data: only a Markdown link counts there, so a formula such as `I(age**2)` in a table is fine."""
    return b.eval(_PROBLEMS_JS)

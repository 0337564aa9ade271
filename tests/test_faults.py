"""Fault injection on run folders: kills inside every stage, corrupted outputs of every stage, a second writer, stale
locks, folders the pipeline does not own, hostile names in the report (in headless Chromium), crafted pickles and
checkpoints planted in a run folder.

Goals (issue 14): zero data loss, zero code execution, every corrupted output detected and recomputed with the same
numbers. The quick run is shared with test_pipeline.py (conftest.py's `quick_run`); each test works on a copy of it. The kill in
the first stage runs by default as a real SIGKILL in a subprocess; SIGKILL inside every other stage, and the
corruptions that retrain CausalBert or re-run every baseline, are marked slow."""
import gzip, json, os, pickle, shutil, signal, socket, subprocess, sys, textwrap, time
from pathlib import Path

import pandas as pd
import pytest

from conftest import needs_chromium

from causal_llmrec.pipeline import (PipelineConfig, Pipeline, run_pipeline, PipelineError, STAGES, RUN_MARKER, file_hash,
                                    build_report)

Q = PipelineConfig.quick()
ENV = {**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
CHEAP = ("data", "discover", "estimate", "recommend", "report")   # stages that recompute in about a second on the quick run


@pytest.fixture(scope="module")
def quick(quick_run):
    return quick_run[0]


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def snapshot(folder):
    "Every file under a folder with its bytes."
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def content(path):
    "A file's content, gzip members decompressed (their header holds a time stamp)."
    b = Path(path).read_bytes()
    return gzip.decompress(b) if str(path).endswith(".gz") else b


def drop_entry(run, stage):
    "Forget that a stage finished (as if it was interrupted before its commit)."
    man = json.loads((run / "manifest.json").read_text())
    del man["stages"][stage]
    (run / "manifest.json").write_text(json.dumps(man))


# ---- ownership: nothing the pipeline did not write is ever deleted or overwritten
def test_users_folder_is_never_touched(tmp_path, capsys):
    "The issue's data loss: `demo --force --out DIR` on a user's folder with data/, train/, report/, report.html, config.yaml."
    d = tmp_path / "mine"
    for rel, text in {"data/a.csv": "x,y\n1,2\n", "train/notes.md": "notes", "report/draft.txt": "draft",
                      "report.html": "<p>my report</p>", "config.yaml": "mine: true\n"}.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True); (d / rel).write_text(text)
    before = snapshot(d)
    from causal_llmrec.cli import main
    for args in (["demo", "--force"], ["demo", "--quick", "--force"], ["estimate"]):
        assert main(args + ["--out", str(d), "--no-progress"]) == 2
        assert "not a causal_llmrec run folder" in capsys.readouterr().err
    for force in (False, True):
        with pytest.raises(PipelineError, match="not a causal_llmrec run folder"):
            run_pipeline(out=d, config=Q, until="data", force=force, progress=False)
    assert snapshot(d) == before


def test_run_folder_of_an_older_version_is_adopted_and_verified(quick, tmp_path, capsys):
    "A folder written before markers and hashes (manifest with stages and config, no marker): adopted, its unverifiable stages recomputed."
    run = copy(quick, tmp_path / "run")
    (run / RUN_MARKER).unlink()
    man = json.loads((run / "manifest.json").read_text())
    for k in ("owned", "top_level"): del man[k]
    for m in man["stages"].values(): del m["hashes"]
    (run / "manifest.json").write_text(json.dumps(man))
    res = Pipeline(run, Q, progress=True).run("estimate")
    err = capsys.readouterr().err
    assert "adopting" in err and "no content hashes recorded" in err and (run / RUN_MARKER).is_file()
    assert (res.stages.status == "ran").all() and content(run / "estimate/effects.csv") == content(quick / "estimate/effects.csv")
    assert (run / "report.html").read_bytes() == (quick / "report.html").read_bytes()


def test_foreign_file_in_a_stage_folder_stops_the_commit(quick, tmp_path):
    run = copy(quick, tmp_path / "run")
    (run / "estimate" / "my_analysis.ipynb").write_text("{}")
    drop_entry(run, "estimate")
    before = snapshot(run / "estimate")
    with pytest.raises(PipelineError, match=r"estimate holds file\(s\) the pipeline did not write \(my_analysis.ipynb\).*nothing was deleted"):
        run_pipeline(out=run, config=Q, until="estimate", progress=False)
    assert snapshot(run / "estimate") == before
    assert not [p.name for p in run.iterdir() if p.name.startswith((".staging", ".old", ".lock"))]


def test_top_level_report_of_someone_else_is_not_replaced(quick, tmp_path):
    run = copy(quick, tmp_path / "run")
    man = json.loads((run / "manifest.json").read_text())
    man["top_level"] = []; del man["stages"]["report"]
    (run / "manifest.json").write_text(json.dumps(man))
    (run / "report.html").write_text("someone else's page")
    with pytest.raises(PipelineError, match="report.html was not written by the pipeline"):
        run_pipeline(out=run, config=Q, progress=False)
    assert (run / "report.html").read_text() == "someone else's page"


# ---- kills: an interrupted stage leaves the previous outputs untouched and the next run resumes
# The kill comes from inside the stage's second write (`StageContext.path`), so the stage's code and key are unchanged.
SAME_CODE = textwrap.dedent("""
    import json, os
    from causal_llmrec import pipeline as P, runner as R
    _h = json.loads(os.environ.get('TEST_PIPELINE_HASHES', '{}'))   # the code the test process ran (files may change meanwhile)
    if 'package' in _h: R._PACKAGE_HASHES[R._PACKAGE_ROOT] = _h['package']
    for _n, _c in _h.get('stages', {}).items(): R._CODE_HASHES[R.STAGES[_n].fn] = _c
""")


def same_code_env():
    "ENV plus the test process's stage code and package source hashes, so a subprocess computes the same keys even while files are edited."
    from causal_llmrec import runner as P
    h = dict(package=P.package_source_hash(),
             stages={n: P._code_hash(s.fn) for n, s in STAGES.items()})
    return {**ENV, "TEST_PIPELINE_HASHES": json.dumps(h)}


KILL = SAME_CODE + textwrap.dedent("""
    import os, signal, sys
    stage, how = sys.argv[2], sys.argv[3]
    real, calls = P.StageContext.path, []
    def path(self, name):
        p = real(self, name)
        if self.name == stage:
            calls.append(name)
            if len(calls) == 2:
                p.write_text('half a file')
                if how == 'sigkill': os.kill(os.getpid(), signal.SIGKILL)
                raise KeyboardInterrupt
        return p
    P.StageContext.path = path
    P.run_pipeline(out=sys.argv[1], config=P.PipelineConfig.quick(), until=stage, progress=False)
""")


def _kill(run, stage, how):
    r = subprocess.run([sys.executable, "-c", KILL, str(run), stage, how], env=same_code_env(), capture_output=True, text=True, timeout=600)
    if how == "sigkill": assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    else: assert r.returncode != 0 and "KeyboardInterrupt" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("stage", [pytest.param(s, marks=pytest.mark.slow) if s == "evaluate" else s for s in STAGES])
def test_interrupt_inside_each_stage(quick, tmp_path, monkeypatch, stage):
    run = copy(quick, tmp_path / "run")
    drop_entry(run, stage)
    before = snapshot(run)
    from causal_llmrec.pipeline import StageContext
    real, calls = StageContext.path, []
    def path(self, name):
        p = real(self, name)
        if self.name == stage:
            calls.append(name)
            if len(calls) == 2: p.write_text("half a file"); raise KeyboardInterrupt
        return p
    monkeypatch.setattr(StageContext, "path", path)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(out=run, config=Q, until=stage, progress=False)
    assert len(calls) == 2 and snapshot(run) == before   # no staging folder, no lock, no partial file, old outputs intact
    monkeypatch.undo()
    if stage in CHEAP:
        res = run_pipeline(out=run, config=Q, until=stage, progress=False)
        assert res.stages.set_index("stage").status.to_dict() == {s: ("ran" if s == stage else "reused") for s in res.stages.stage}
        for rel in ("estimate/effects.csv", "recommend/recommendations.csv", "discover/graph.json", "data/pairs.csv.gz"):
            if rel.split("/")[0] == stage: assert content(run / rel) == content(quick / rel)


def test_sigkill_in_the_first_stage_leaves_a_run_folder_that_resumes(tmp_path, capsys):
    "The issue's loop: a SIGKILL in the first stage used to leave a folder later refused as 'not a run folder'."
    run = tmp_path / "run"
    _kill(run, "data", "sigkill")
    names = {p.name for p in run.iterdir()}
    assert RUN_MARKER in names and ".lock" in names and any(n.startswith(".staging-data-") for n in names)
    res = Pipeline(run, Q, progress=True).run("data")   # the stale lock is taken over, the staging folder removed
    err = capsys.readouterr().err
    assert "taking over a stale lock" in err and "is not running" in err and "removed 1 leftover" in err
    assert list(res.stages.status) == ["ran"] and sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [RUN_MARKER]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [s for s in STAGES if s != "data"])
def test_sigkill_inside_each_stage(quick, tmp_path, stage):
    run = copy(quick, tmp_path / "run")
    drop_entry(run, stage)
    before = snapshot(run)
    _kill(run, stage, "sigkill")
    after = snapshot(run)
    leftovers = {k for k in after if k not in before}
    assert all(k == ".lock" or k.startswith(f".staging-{stage}-") for k in leftovers), leftovers
    assert {k: v for k, v in after.items() if k in before} == before
    res = run_pipeline(out=run, config=Q, until=stage, progress=False)
    assert res.stages.set_index("stage").status[stage] == "ran" and (res.stages.status == "ran").sum() == 1
    assert not [p.name for p in run.iterdir() if p.name.startswith((".staging", ".old", ".lock"))]


# ---- corruption: every output is verified on reuse; a changed one is recomputed, and the run says why
def _set_att(p):
    e = pd.read_csv(p); e.loc[e.estimand == "ATT", "estimate"] = 9.99; e.to_csv(p, index=False)

def _truncate(p): p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

def _drop_rows(p): p.write_text("\n".join(p.read_text().splitlines()[:-40]) + "\n")

def _edit_json(p):
    d = json.loads(p.read_text()); d["edited"] = True; p.write_text(json.dumps(d))

def _flip_byte(p):
    b = bytearray(p.read_bytes()); b[len(b) // 2] ^= 0xFF; p.write_bytes(bytes(b))

def _delete(p): p.unlink()


CORRUPT = [
    ("data/frame.parquet", _truncate, "data"),
    ("data/pairs.csv.gz", _truncate, "data"),
    ("discover/graph.json", _edit_json, "discover"),
    ("estimate/effects.csv", _set_att, "estimate"),
    ("recommend/recommendations.csv", _drop_rows, "recommend"),
    ("report.html", _delete, "report"),
    ("report/report.html", _flip_byte, "report"),
    pytest.param("train/predictions.csv.gz", _truncate, "train", marks=pytest.mark.slow),
    pytest.param("train/model/heads.safetensors", _flip_byte, "train", marks=pytest.mark.slow),
    pytest.param("evaluate/metrics.json", _edit_json, "evaluate", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("rel, corrupt, stage", CORRUPT)
def test_corrupted_output_is_detected_and_recomputed(quick, tmp_path, capsys, rel, corrupt, stage):
    run = copy(quick, tmp_path / "run")
    corrupt(run / rel)
    st = Pipeline(run, Q).status(stage).set_index("stage")
    assert st.status[stage] == "changed" and rel in st.reason[stage]
    assert (st.drop(index=stage).status == "done").all()
    res = Pipeline(run, Q, progress=True).run(stage)
    assert f"[{stage}] recomputing: {rel}" in capsys.readouterr().err
    assert res.stages.set_index("stage").status.to_dict() == {s: ("ran" if s == stage else "reused") for s in res.stages.stage}
    if rel.endswith(".html"): assert (run / "report.html").read_bytes() == (run / "report" / "report.html").read_bytes()
    elif not rel.endswith(".safetensors"): assert content(run / rel) == content(quick / rel)   # the same numbers again
    assert (Pipeline(run, Q).status(stage).status == "done").all()


def test_corrupt_manifest_names_the_file(quick, tmp_path):
    run = copy(quick, tmp_path / "run")
    (run / "manifest.json").write_text('{"stages": ')
    with pytest.raises(PipelineError, match=r"manifest.json is corrupt"):
        run_pipeline(out=run, config=Q, until="data", progress=False)


# ---- one writer at a time
def test_second_writer_is_refused_while_the_first_lives(quick, tmp_path):
    run = copy(quick, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / ".lock").write_text(json.dumps(dict(pid=holder.pid, host=socket.gethostname(), started="2026-01-01T00:00:00")))
        before = snapshot(run)
        with pytest.raises(PipelineError, match=rf"being written by another run \(pid {holder.pid} on .* since 2026-01-01T00:00:00\)"):
            run_pipeline(out=run, config=Q, until="estimate", force=True, progress=False)
        assert snapshot(run) == before
    finally:
        holder.kill(); holder.wait()
    res = run_pipeline(out=run, config=Q, until="data", progress=False)   # its process is gone: the lock is stale
    assert list(res.stages.status) == ["reused"] and not (run / ".lock").exists()


@pytest.mark.parametrize("lock, taken", [
    ({"pid": 2**22 + 12345, "started": "x"}, True),                       # no such process
    ("garbage", True),                                                     # unreadable and old
    ({"pid": 1, "host": "another-machine", "started": "x"}, False),       # another host: cannot check, refused
])
def test_stale_locks(quick, tmp_path, lock, taken):
    run = copy(quick, tmp_path / "run")
    if isinstance(lock, dict): (run / ".lock").write_text(json.dumps({"host": socket.gethostname(), **lock}))
    else: (run / ".lock").write_text(lock); os.utime(run / ".lock", (time.time() - 3600, time.time() - 3600))
    if taken:
        run_pipeline(out=run, config=Q, until="data", progress=False)
        assert not (run / ".lock").exists()
    else:
        with pytest.raises(PipelineError, match="another-machine"): run_pipeline(out=run, config=Q, until="data", progress=False)


@pytest.mark.slow   # two real pipeline processes: 1.5 min on 2 shared cores; test_second_writer_is_refused_while_the_first_lives keeps the lock in the default tier (make test-slow)
def test_two_writers_at_once(quick, tmp_path):
    "A real second process starts while the first is inside a stage: it is refused; the folder holds the first one's run."
    run = copy(quick, tmp_path / "run")
    go = tmp_path / "go"
    first = SAME_CODE + textwrap.dedent(f"""
        import sys, time, pathlib
        real = P.StageContext.path
        def path(self, name):   # the first writer waits inside its estimate stage until the test says go
            t = time.time()
            while self.name == 'estimate' and not pathlib.Path({str(go)!r}).exists() and time.time() - t < 240: time.sleep(0.05)
            return real(self, name)
        P.StageContext.path = path
        P.run_pipeline(out=sys.argv[1], config=P.PipelineConfig.quick(), until='estimate', force=True, progress=False)
    """)
    a = subprocess.Popen([sys.executable, "-c", first, str(run)], env=same_code_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not any(p.name.startswith(".staging-estimate-") for p in run.iterdir()):
            assert time.time() < deadline and a.poll() is None, "the first writer never reached its estimate stage"
            time.sleep(0.05)
        second = ("import sys; from causal_llmrec.pipeline import run_pipeline, PipelineConfig; "
                  "run_pipeline(out=sys.argv[1], config=PipelineConfig.quick(seed=7), until='estimate', force=True, progress=False)")
        b = subprocess.run([sys.executable, "-c", SAME_CODE + second, str(run)], env=same_code_env(), capture_output=True, text=True, timeout=300)
    finally:
        go.write_text("go")
    assert a.wait(timeout=300) == 0, a.stderr.read()[-2000:]
    assert b.returncode != 0 and f"being written by another run (pid {a.pid}" in b.stderr, b.stderr[-1000:]
    man = json.loads((run / "manifest.json").read_text())
    assert man["config"]["seed"] == 0 and content(run / "estimate/effects.csv") == content(quick / "estimate/effects.csv")


# ---- nothing in a run folder can run code
PAYLOAD_SRC = "import pathlib; pathlib.Path({!r}).write_text('pwned')"


class _Payload:
    def __init__(self, sentinel): self.sentinel = sentinel
    def __reduce__(self): return (exec, (PAYLOAD_SRC.format(str(self.sentinel)),))


def test_crafted_pickles_and_checkpoints_never_run(quick, tmp_path):
    "A shared run folder with pickle payloads where older versions (and torch checkpoints) would load them, and a manifest that vouches for them."
    run = copy(quick, tmp_path / "run")
    sentinel = tmp_path / "PWNED"
    blob = pickle.dumps(_Payload(sentinel))
    planted = ["data/data.pkl", "train/model/trainer_state.pt", "train/model/training_args.bin", "train/trainer_state.pt"]
    for rel in planted: (run / rel).write_bytes(blob)
    man = json.loads((run / "manifest.json").read_text())   # the attacker also edits the manifest so that every file verifies
    for rel in planted:
        s, f = rel.split("/", 1)
        man["stages"][s]["files"].append(f); man["stages"][s]["hashes"][rel] = file_hash(run / rel)
        man["owned"][s].append(f)
    for s in ("discover", "estimate", "recommend", "evaluate", "report"): del man["stages"][s]   # make them recompute
    (run / "manifest.json").write_text(json.dumps(man))
    res = run_pipeline(out=run, config=Q, progress=False)
    assert set(res.stages.set_index("stage").status[["discover", "estimate", "recommend", "evaluate", "report"]]) == {"ran"}
    assert not sentinel.exists()
    from causal_llmrec.report import effects_table
    effects_table(run); build_report(run)
    assert not sentinel.exists()


def test_crafted_torch_checkpoint_in_place_of_the_weights_never_runs(quick, tmp_path):
    "The encoder's safetensors replaced by a torch checkpoint carrying a pickle payload (manifest updated to vouch for it): loading fails, nothing runs."
    import torch
    run = copy(quick, tmp_path / "run")
    sentinel = tmp_path / "PWNED"
    enc = run / "train" / "model" / "encoder"
    (enc / "model.safetensors").unlink()
    torch.save({"w": _Payload(sentinel)}, enc / "pytorch_model.bin")
    man = json.loads((run / "manifest.json").read_text())
    t = man["stages"]["train"]
    t["files"] = [f for f in t["files"] if f != "model/encoder/model.safetensors"] + ["model/encoder/pytorch_model.bin"]
    del t["hashes"]["train/model/encoder/model.safetensors"]
    t["hashes"]["train/model/encoder/pytorch_model.bin"] = file_hash(enc / "pytorch_model.bin")
    man["owned"]["train"].append("model/encoder/pytorch_model.bin"); del man["stages"]["recommend"]
    (run / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(Exception):
        run_pipeline(out=run, config=Q, until="recommend", progress=False)
    assert not sentinel.exists()


def test_no_pickle_in_the_pipeline_modules():
    import causal_llmrec
    root = Path(causal_llmrec.__file__).parent
    for mod in ("pipeline.py", "settings.py", "report.py", "cli.py"):
        src = (root / mod).read_text()
        assert "import pickle" not in src and "pickle.load" not in src and "weights_only=False" not in src, mod


# ---- hostile names, titles, ids and settings in the report
X_SCRIPT = '<script>document.body.setAttribute("data-pwned","script")</script>'
X_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
X_ATTR = '"><svg onload="document.body.setAttribute(\'data-pwned\',\'svg\')">'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    "A RecData with hostile covariate names, item titles and data name, run through estimate; hostile ids and settings in the report."
    from causal_llmrec.data import simulate, RecData, USER
    w = simulate(n_users=30, n_candidates=15, seed=1)
    d = w.data
    users = d.users.drop(columns=["occupation", "gender"]).rename(columns={"age": X_SCRIPT})
    items = d.items.rename(columns={"popularity": X_ATTR}).assign(title=lambda t: X_IMG + t.title)
    data = RecData(users, items, d.interactions, d.history, name=X_IMG)
    out = tmp_path_factory.mktemp("hostile") / "run"
    cfg = PipelineConfig.quick(report={"title": X_SCRIPT}, estimate={"segments": []}, discover={"max_rows": 200})
    run_pipeline(data, out=out, config=cfg, until="estimate", progress=False)
    (out / "recommend").mkdir()
    pd.DataFrame({USER: [X_SCRIPT] * 2, "rank": [1, 2], "item_id": [1, 2], "title": [X_IMG, X_ATTR], "tau": [0.1, 0.05],
                  "explanation": [X_SCRIPT, X_ATTR]}).to_csv(out / "recommend" / "recommendations.csv", index=False)
    html = build_report(out, title=X_SCRIPT + X_ATTR)
    (out / "hostile.html").write_text(html)
    return out, html


def test_hostile_values_are_escaped(hostile_run):
    out, html = hostile_run
    s = json.loads((out / "data" / "summary.json").read_text())
    assert f"user_{X_SCRIPT}" in s["covariates"]                       # the names really went through the stages
    assert html.count("<script") == 1 and "<img src=x" not in html and "<svg" not in html
    assert "&lt;script&gt;document.body.setAttribute" in html and "onerror=" in html   # shown, as text
    assert str(out.parent) not in html                                  # no machine path


@needs_chromium
def test_hostile_values_do_not_run_in_chromium(hostile_run, browser):
    from bs4 import BeautifulSoup
    out, _ = hostile_run
    browser.goto((out / "hostile.html").resolve().as_uri())
    browser.wait_for("document.body.hasAttribute('data-images-loaded')", 30)   # the page's own script ran, after every image loaded or failed
    dom = BeautifulSoup(browser.dom(), "html.parser")
    assert not dom.body.has_attr("data-pwned"), dom.body.get("data-pwned")
    assert dom.title.get_text() == X_SCRIPT + X_ATTR                    # the title is the literal text
    assert dom.body.has_attr("data-images-loaded")                      # the page's own script (allowed by hash) ran
    cells = [td.get_text() for td in dom.select("#recommendations td")]
    assert X_IMG in cells and X_ATTR in cells
    assert X_SCRIPT in dom.select_one("#data").get_text()

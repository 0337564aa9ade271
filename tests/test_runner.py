"""Stage keys cover every line a stage can run: the package's whole source and its version (plus settings and data).

Each stage is checked against an edit of code it runs that its old key did not cover (a helper in a module the stage
calls but did not list, e.g. the evaluate stage's baselines and the report stage's figures): the stage goes stale and
recomputes; with the code unchanged it is reused. The edited code is a copy of the package that only the key hashes
(`runner._PACKAGE_ROOT` points at it); the process keeps running the installed code."""
import json, shutil
from pathlib import Path

import pytest

import causal_llmrec
from causal_llmrec import runner as R
from causal_llmrec.pipeline import PipelineConfig, Pipeline, run_pipeline, PipelineError, STAGES

Q = PipelineConfig.quick()
PKG = Path(R.__file__).parent

# stage -> a module whose code the stage runs (the ones its `modules=` list never named are marked)
RUNS = {"data": "worlds.py", "discover": "discrete.py", "estimate": "neighbours.py", "train": "text.py",
        "recommend": "rank.py",
        "evaluate": "recommenders.py",   # baselines/recommenders/ope: not listed before
        "report": "report.py"}           # the report stage listed no module


def package_copy(dst:Path, edit:str|None=None)->Path:
    "A copy of the package's source; with `edit`, one helper of that module changed (a line added to its first private function)."
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        f = dst/edit; lines = f.read_text().splitlines(keepends=True)
        i = next(k for k, l in enumerate(lines) if l.startswith("def _"))
        j = next(k for k in range(i, len(lines)) if lines[k].rstrip().endswith(":"))  # end of the signature
        lines.insert(j + 1, "    _edited = True   # a changed helper\n")
        f.write_text("".join(lines))
        assert f.read_text() != (PKG/edit).read_text()
    return dst


@pytest.fixture()
def run(quick_run, tmp_path):
    "A copy of the session's quick run."
    return Path(shutil.copytree(quick_run[0], tmp_path/"run"))


def test_package_hash_covers_every_source_file(tmp_path):
    # copies taken one after the other (the installed files may be edited while the suite runs; the copies are not)
    base = package_copy(tmp_path/"base"); h = R.package_source_hash(base)
    same = Path(shutil.copytree(base, tmp_path/"a"))
    edited = Path(shutil.copytree(base, tmp_path/"b"))
    f = edited/"baselines.py"; f.write_text(f.read_text().replace("\ndef _", "\ndef _edited(): pass\n\ndef _", 1))   # one helper more
    assert R.package_source_hash(same) == h != R.package_source_hash(edited)
    idx = Path(shutil.copytree(base, tmp_path/"c")); (idx/"_modidx.py").write_text("# nbdev's doc index, not code\n")
    assert R.package_source_hash(idx) == h
    new = Path(shutil.copytree(base, tmp_path/"d")); (new/"extra.py").write_text("x = 1\n")
    assert R.package_source_hash(new) != h
    assert R.package_source_hash() == R.package_source_hash(R._PACKAGE_ROOT)   # the default: this package, hashed once


def test_unchanged_code_is_reused(run):
    assert (Pipeline(run, Q, progress=False).status().status == "done").all()
    res = run_pipeline(out=run, config=Q, progress=False)
    assert (res.stages.status == "reused").all(), res.stages


@pytest.mark.parametrize("stage", list(RUNS))
def test_edited_code_a_stage_runs_makes_it_stale(stage, run, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "_PACKAGE_ROOT", package_copy(tmp_path/"pkg", edit=RUNS[stage]))
    st = Pipeline(run, Q, progress=False).status().set_index("stage")
    assert st.loc[stage, "status"] == "stale" and "code" in st.loc[stage, "reason"], st
    assert (st.status == "stale").all()          # the package changed: no stage can vouch for its outputs


def test_a_code_change_names_itself_and_force_recomputes_only_what_it_runs(run, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "_PACKAGE_ROOT", package_copy(tmp_path/"pkg", edit="discrete.py"))
    with pytest.raises(PipelineError, match=r"the package's code changed since \(causal_llmrec 0\.1\.0 -> 0\.1\.0\).*--force"):
        run_pipeline(out=run, config=Q, until="discover", progress=False)
    res = run_pipeline(out=run, config=Q, until="discover", force=True, progress=False)
    assert list(res.stages.status) == ["ran", "ran"]
    again = run_pipeline(out=run, config=Q, until="discover", progress=False)      # the same (edited) code: reused
    assert list(again.stages.status) == ["reused", "reused"]
    man = json.loads((run/"manifest.json").read_text())
    assert man["package"] == R.package_source_hash(R._PACKAGE_ROOT) and "train" not in man["stages"]   # later stages were forgotten


def test_version_is_part_of_the_key(run, monkeypatch):
    before = Pipeline(run, Q, progress=False).key("report")
    monkeypatch.setattr(causal_llmrec, "__version__", "99.0.0")
    st = Pipeline(run, Q, progress=False).status()
    assert (st.status == "stale").all() and Pipeline(run, Q, progress=False).key("report") != before


def test_every_stage_is_checked():
    assert set(RUNS) == set(STAGES), "a stage without a code-change test"

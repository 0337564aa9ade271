"""The pipeline end to end on the quick settings: output folder, caching and resuming, atomic stages, settings errors.

The quick run (tiny BERT, 40 users) is made once per session in a shared folder (conftest.py's `quick_run`); test_cli.py,
test_faults.py, test_runner.py and test_report_browser.py use the same folder, so whichever runs first pays for it."""
import json, os, shutil
from pathlib import Path

import numpy as np, pandas as pd
import pytest, yaml

from causal_llmrec.pipeline import (PipelineConfig, Pipeline, run_pipeline, recommend, effects_table, ConfigError,
                                    PipelineError, UnknownUserError, STAGES, atomic_write, atomic_path, stable_hash, file_hash, RUN_MARKER)


from conftest import shared_run   # kept importable from here for test modules that import it (the fixture is conftest's quick_run)


@pytest.fixture(scope="module")
def quick(quick_run):
    return quick_run


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


# ---- settings
def test_yaml_round_trip(tmp_path):
    for cfg in (PipelineConfig(), PipelineConfig.quick(), PipelineConfig.quick(seed=3, train={"lr": 1e-4}, estimate={"segments": []})):
        (tmp_path / "c.yaml").write_text(cfg.to_yaml())
        assert PipelineConfig.from_yaml(tmp_path / "c.yaml") == cfg
        assert PipelineConfig.from_dict(yaml.safe_load(cfg.to_yaml(comments=False))) == cfg


def test_every_setting_is_documented():
    text = PipelineConfig().to_yaml()
    for line in text.splitlines()[1:]:
        if line.startswith("  "): assert "  # " in line, f"undocumented setting: {line}"


@pytest.mark.parametrize("bad, needle", [
    ({"trian": {}}, "unknown setting trian (did you mean 'train'?)"),
    ({"train": {"encoder_step": 1}}, "unknown setting train.encoder_step"),
    ({"train": {"seed": 1}}, "unknown setting train.seed (the run sets it"),
    ({"evaluate": {"n_bins": 10}}, "unknown setting evaluate.n_bins"),          # removed: it was never used
    ({"seed": "one"}, "setting seed must be an integer"),
    ({"seed": 1.5}, "setting seed must be an integer"),
    ({"seed": -1}, "setting seed must be in [0, 4294967295], got -1"),
    ({"train": {"lr": "fast"}}, "setting train.lr must be a number"),
    ({"train": {"lr": -1}}, "setting train.lr must be in (0, 1], got -1.0"),
    ({"train": {"head_epochs": -1}}, "setting train.head_epochs must be in [1, 10000], got -1"),
    ({"train": {"max_length": 100000}}, "setting train.max_length must be in [8, 512], got 100000"),
    ({"train": {"precision": "fp64"}}, "train.precision must be one of"),
    ({"train": {"clip": 0.7}}, "setting train.clip must be in (0, 0.5), got 0.7"),
    ({"data": {"confounding": float("inf")}}, "setting data.confounding must be a finite number, got inf"),
    ({"data": {"effect_scale": float("nan")}}, "setting data.effect_scale must be a finite number"),
    ({"discover": {"threshold": -1}}, "setting discover.threshold must be in [0, 100], got -1.0"),
    ({"discover": {"bootstrap": -2}}, "setting discover.bootstrap must be in [0, 1000], got -2"),
    ({"report": {"n_example_users": -1}}, "setting report.n_example_users must be in [0, 10000], got -1"),
    ({"report": {"title": "x" * 201}}, "setting report.title must be at most 200 characters"),
    ({"discover": {"domain_knowledge": "yes"}}, "must be true or false"),
    ({"estimate": {"estimand": "CATE"}}, "estimate.estimand must be one of"),
    ({"estimate": {"caliper": 0}}, "setting estimate.caliper must be in (0, 100], got 0.0"),
    ({"rank": {"by": "random"}}, "rank.by must be one of"),
    ({"data": 3}, "section data must be a mapping"),
    ({"data": {"n_users": 2}}, "setting data.n_users must be in [10, 10000000], got 2"),
    ({"data": {"test_frac": 1.5}}, "setting data.test_frac must be in (0, 1), got 1.5"),
    ({"rank": {"k": 0}}, "setting rank.k must be in [1, 10000], got 0"),
    ({"evaluate": {"k": 50}}, "evaluate.k (50) must be <= rank.k"),
    ({"device": "gpu"}, "setting device must be"),
    ({"train": {"encoder": None}}, "setting train.encoder must not be empty"),
    ({"train": {"inputs": "tabular"}}, "train.inputs must be one of"),
    ({"train": {"history": "bag"}}, "train.history must be one of"),
    ({"train": {"cross_fit_folds": 1}}, "train.cross_fit_folds must be 0 (no cross-fitting) or >= 2"),
    ({"train": {"cross_fit_encoder_steps": -1}}, "setting train.cross_fit_encoder_steps must be in [0, 10000000], got -1"),
    ({"evaluate": {"baselines": ["dlce", "magic"]}}, "evaluate.baselines has unknown method(s) ['magic']"),
])
def test_bad_settings_name_the_setting(bad, needle):
    with pytest.raises(ConfigError) as e: PipelineConfig.from_dict(bad)
    assert needle in str(e.value)


def test_every_numeric_setting_has_a_range():
    "A numeric setting without a range (e.g. a field TrainConfig gains later) fails here until it gets one."
    from dataclasses import fields, is_dataclass
    from causal_llmrec.settings import _RANGES, _settings_items
    cfg = PipelineConfig()
    types = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if is_dataclass(v): types.update({f"{f.name}.{g.name}": str(g.type) for g in fields(v)})
        else: types[f.name] = str(f.type)
    numeric = [k for k, t in types.items() if "int" in t or "float" in t]
    assert numeric and not [k for k in numeric if k not in _RANGES], [k for k in numeric if k not in _RANGES]
    for k, (lo, hi, _, _) in _RANGES.items():   # every default lies in its range
        v = dict(_settings_items(cfg))[k]
        assert v is None or lo <= v <= hi, (k, v)


def test_train_settings_are_train_config():
    "Every TrainConfig field but the five the run sets can be set from YAML, and reaches the TrainConfig the train stage uses."
    from dataclasses import fields
    from causal_llmrec.bert_train import TrainConfig
    from causal_llmrec.settings import TRAIN_RUN_FIELDS, TrainSettings
    tc_fields = {f.name for f in fields(TrainConfig)} - set(TRAIN_RUN_FIELDS)
    assert tc_fields <= {f.name for f in fields(TrainSettings)}
    cfg = PipelineConfig.from_dict({"seed": 4, "train": {"weight_decay": 0.0, "g_weight": 2.5, "patience": 5, "select": "loss", "lr": 1e-4}})
    tc = cfg.train.train_config(device="cpu", seed=cfg.seed, progress=False)
    assert (tc.weight_decay, tc.g_weight, tc.patience, tc.select, tc.lr, tc.seed) == (0.0, 2.5, 5, "loss", 1e-4, 4)
    assert tc.head_batch_size == TrainConfig().head_batch_size   # fields the pipeline does not override keep TrainConfig's default
    text = PipelineConfig().to_yaml()
    assert "batch_size: 32  # pairs per micro-batch" in text and f"(pipeline default; TrainConfig's is {TrainConfig().batch_size!r})" in text
    assert f"head_epochs: {TrainConfig().head_epochs}  # cached strategy" in text      # the heads' budget the text-world evidence measured
    assert cfg.train.encoder_steps == 0 and tc.encoder_steps == 0   # the pretrained encoder, frozen (TrainConfig's default)


def test_bad_yaml_files(tmp_path):
    (tmp_path / "a.yaml").write_text("train: [1\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2"): PipelineConfig.from_yaml(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"): PipelineConfig.from_yaml(tmp_path / "b.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"): PipelineConfig.from_yaml(tmp_path / "none.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert PipelineConfig.from_yaml(tmp_path / "empty.yaml") == PipelineConfig()


def test_recdata_source_needs_data():
    with pytest.raises(ConfigError, match="no RecData was given"):
        Pipeline("x", PipelineConfig.from_dict({"data": {"source": "recdata"}}))
    with pytest.raises(TypeError, match="data must be a RecData"):
        Pipeline("x", data=pd.DataFrame())


def test_atomic_write_keeps_old_content(tmp_path):
    p = atomic_write(tmp_path / "f.txt", "old")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(p) as t:
            t.write_text("partial"); 1 / 0
    assert p.read_text() == "old" and sorted(f.name for f in tmp_path.iterdir()) == ["f.txt"]
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})


# ---- the quick run
def test_output_folder(quick):
    out, res = quick
    must = ["config.yaml", "manifest.json", "report.html", "data/pairs.csv.gz", "data/split.csv", "estimate/effects.csv",
            "estimate/effects_by_segment.csv", "estimate/balance.csv", "estimate/love.png", "estimate/overlap.png",
            "train/model/causal_bert.json", "train/history.csv", "train/training.png", "train/predictions.csv.gz",
            "train/effects.csv", "recommend/recommendations.csv", "evaluate/metrics.json", "evaluate/uplift.png",
            "evaluate/ranking_comparison.csv", "evaluate/ranking_comparison.png"]
    if "discover" in STAGES and "discover" in set(res.stages.stage):
        must += ["discover/graph.json", "discover/graph.png"]
    missing = [m for m in must if not (out / m).exists()]
    assert not missing, missing
    assert not [p.name for p in out.iterdir() if p.name.startswith((".staging", ".old", ".lock"))]
    assert (out / RUN_MARKER).is_file() and not list(out.rglob("*.pkl"))   # no pickle anywhere in a run folder
    man = json.loads((out / "manifest.json").read_text())
    assert set(man["stages"]) == set(res.stages.stage)
    for s, m in man["stages"].items():   # a content hash of every file the stage wrote
        assert set(m["hashes"]) == {f"{s}/{f}" for f in m["files"]} | ({"report.html"} if s == "report" else set())
        assert all(file_hash(out / rel) == h for rel, h in m["hashes"].items())
    assert PipelineConfig.from_dict(man["config"]) == PipelineConfig.quick()


def test_estimates_against_truth(quick):
    out, res = quick
    tab = effects_table(out)
    m = tab[(tab.source == "matching/weighting") & (tab.method == "matching")].iloc[0]
    assert m.estimand == "ATT" and abs(m.estimate - m.truth) < 0.1 and m.ci_low < m.estimate < m.ci_high
    met = res.metrics
    assert met["n_test_users"] == 10 and met["true_uplift_at_k_uplift_ranking"]["oracle"] > met["true_uplift_at_k_uplift_ranking"]["random"]
    naive = json.loads((out / "data" / "summary.json").read_text())["truth"]["naive"]
    assert abs(m.estimate - m.truth) < abs(naive - m.truth)  # matching removes most of the confounding bias
    has_ci = tab.ci_low.notna() & tab.ci_high.notna()                 # CausalBert's plug-in rows have no interval
    assert set(tab.covers_truth[has_ci]) <= {"yes", "no"} and set(tab.covers_truth[~has_ci]) <= {""} and has_ci.any()
    assert (tab.covers_truth == "yes").tolist() == [bool(c and lo <= v <= hi) for c, lo, hi, v in zip(has_ci, tab.ci_low, tab.ci_high, tab.truth)]


def test_recommendations_have_explanations(quick):
    out, _ = quick
    rec = pd.read_csv(out / "recommend" / "recommendations.csv")
    assert rec.groupby("user_id").size().eq(10).all() and rec.user_id.nunique() == 40
    assert rec.explanation.str.startswith("effect ").all() and {"title", "tau", "q1", "q0"} <= set(rec.columns)
    u = rec.user_id.iloc[0]
    top = recommend(out, str(u), k=3)
    assert list(top["rank"]) == [1, 2, 3] and (np.diff(top.tau) <= 1e-12).all()
    with pytest.raises(UnknownUserError, match="unknown user id '999999'"): recommend(out, "999999")
    with pytest.raises(UnknownUserError, match="are integers"): recommend(out, "abc")


def test_rerun_reuses_every_stage(quick):
    out, _ = quick
    again = run_pipeline(out=out, config=PipelineConfig.quick(), progress=False)
    assert (again.stages.status == "reused").all()


def test_changed_settings_need_force_and_force_recomputes(quick, tmp_path):
    out, _ = quick
    run = copy_run(out, tmp_path / "run")
    cfg = PipelineConfig.quick(rank={"k": 5}, evaluate={"k": 5})
    st = Pipeline(run, cfg).status().set_index("stage").status
    assert st["data"] == st["train"] == st["estimate"] == "done" and st["recommend"] == st["evaluate"] == "stale"
    with pytest.raises(PipelineError, match=r"rank.k: 10 -> 5.*--force"):
        run_pipeline(out=run, config=cfg, progress=False)
    # --force recomputes every stage the target needs, with the same numbers
    before = (run / "estimate" / "effects.csv").read_bytes()
    res = run_pipeline(out=run, config=PipelineConfig.quick(), until="estimate", force=True, progress=False)
    assert (res.stages.status == "ran").all() and list(res.stages.stage) == ["data", "discover", "estimate"]
    assert (run / "estimate" / "effects.csv").read_bytes() == before
    # settings that change only the report: a run up to estimate drops the stale report instead of leaving it behind
    res = run_pipeline(out=run, config=PipelineConfig.quick(report={"title": "another title"}), until="estimate", progress=False)
    assert (res.stages.status == "reused").all() and not (run / "report.html").exists() and res.report is None
    man = json.loads((run / "manifest.json").read_text())
    assert "report" not in man["stages"] and man["config"]["report"]["title"] == "another title"


def test_interrupted_stage_leaves_no_trace_and_resumes(quick, tmp_path, monkeypatch):
    out, _ = quick
    run = copy_run(out, tmp_path / "run")
    man = json.loads((run / "manifest.json").read_text())
    del man["stages"]["report"]; (run / "manifest.json").write_text(json.dumps(man))  # the report never finished
    before = (run / "report.html").read_bytes()
    real = STAGES["report"].fn
    def dies(ctx):
        (ctx.path("report.html")).write_text("half a report")
        raise KeyboardInterrupt
    monkeypatch.setattr(STAGES["report"], "fn", dies)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(out=run, config=PipelineConfig.quick(), progress=False)
    assert (run / "report.html").read_bytes() == before  # the old output is untouched
    assert not [p.name for p in run.iterdir() if p.name.startswith(".staging")]
    monkeypatch.setattr(STAGES["report"], "fn", real)
    res = run_pipeline(out=run, config=PipelineConfig.quick(), progress=False)
    assert res.stages.set_index("stage").status.to_dict()["report"] == "ran"
    assert (res.stages.status == "reused").sum() == len(res.stages) - 1


def test_existing_folder_is_not_written_even_with_force(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(PipelineError, match="not a causal_llmrec run folder.*--force does not change that"):
            run_pipeline(out=tmp_path, config=PipelineConfig.quick(), until="data", force=force, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"
    f = tmp_path / "file"; f.write_text("x")
    with pytest.raises(PipelineError, match="is a file"):
        run_pipeline(out=f, config=PipelineConfig.quick(), until="data", progress=False)
    empty = tmp_path / "empty"; empty.mkdir()
    res = run_pipeline(out=empty, config=PipelineConfig.quick(), until="data", progress=False)   # an empty folder is fine
    assert (empty / RUN_MARKER).is_file() and list(res.stages.stage) == ["data"]


def test_any_recdata_runs_through_estimate(tmp_path):
    from causal_llmrec.data import simulate
    w = simulate(n_users=30, n_candidates=15, seed=1)
    res = run_pipeline(w.data, out=tmp_path / "r", config=PipelineConfig.quick(), until="estimate", progress=False)
    s = json.loads((tmp_path / "r" / "data" / "summary.json").read_text())
    assert s["truth"] is None and s["n_pairs"] == 450
    eff = pd.read_csv(tmp_path / "r" / "estimate" / "effects.csv")
    assert set(eff.method) == {"matching", "IPW", "AIPW", "IPW (logged propensities)", "AIPW (logged propensities)"} and eff.se.gt(0).all()


def test_causalbert_reads_the_adjustment_set_and_effects_are_cross_fitted(quick):
    out, _ = quick
    tr = json.loads((out / "train" / "summary.json").read_text())
    disc = json.loads((out / "discover" / "summary.json").read_text())
    assert tr["inputs"] == "both" and tr["covariates"] == (disc["adjustment_set"] or tr["covariates"])
    assert tr["covariates_source"].startswith("adjustment set") == bool(disc["adjustment_set"])
    assert json.loads((out / "train" / "model" / "causal_bert.json").read_text())["covariates"] == tr["covariates"]
    assert tr["effects_from"] == "cross-fitted over 5 folds of users"
    eff = pd.read_csv(out / "train" / "effects.csv")
    assert set(eff.estimand) == {"ATE", "ATT"} and (eff.ci_low < eff.estimate).all() and (eff.estimate < eff.ci_high).all()


def test_ranking_comparison_and_ab_power(quick):
    out, res = quick
    comp = pd.read_csv(out / "evaluate" / "ranking_comparison.csv")
    assert set(PipelineConfig.quick().evaluate.baselines) | {"CausalBert uplift (tau)", "CausalBert click head (Q1)", "oracle (true tau)", "random"} == set(comp.method)
    assert list(comp.slice.unique()) == ["all items", "warm items", "cold items"]
    allc = comp[comp.slice == "all items"]
    assert allc.normalised_gain.is_monotonic_decreasing and allc.set_index("method").normalised_gain["oracle (true tau)"] == 1.0
    cold = set(pd.read_csv(out / "data" / "item_split.csv").query("split == 'cold'").item_id)
    assert len(cold) == round(0.2 * json.loads((out / "data" / "summary.json").read_text())["n_items"])
    pairs = pd.read_csv(out / "data" / "pairs.csv.gz")
    train_users = set(pd.read_csv(out / "data" / "split.csv").query("split == 'train'").user_id)
    n_train = json.loads((out / "train" / "summary.json").read_text())["n_pairs_train"]
    assert n_train == (pairs.user_id.isin(train_users) & ~pairs.item_id.isin(cold)).sum() < pairs.user_id.isin(train_users).sum()
    g = res.metrics["normalised_gain"]
    for sl in ("all items", "cold items"):   # both read the confounders; random is 0
        assert g[sl]["CausalBert uplift (tau)"] > 0.5 and g[sl]["logistic_t"] > 0.5
    ab = res.metrics["ab_test_uplift_vs_click_ranking"]
    assert 0 < ab["power"] < 0.5 and ab["users_for_80pct_power"] > ab["n_a"] + ab["n_b"]   # 10 held-out users cannot show the lift
    html = (out / "report.html").read_text()
    assert "Ranking comparison on the held-out users" in html and "first 40 of" not in html


@pytest.mark.slow   # a second end-to-end run on the whole catalogue: 1.5 min on 2 shared cores (make test-slow)
def test_sato_world_source_runs_end_to_end(tmp_path):
    "data.source selects the world: the Sato et al. world logs every catalogue pair, and the truth reaches the evaluation."
    cfg = PipelineConfig.quick(data={"source": "movielens-sato", "n_users": 12}, train={"cross_fit_folds": 2},
                               evaluate={"baselines": ["logistic_t", "cubn"]})
    res = run_pipeline(out=tmp_path / "sato", config=cfg, progress=False)
    ds = json.loads((tmp_path / "sato" / "data" / "summary.json").read_text())
    assert ds["n_users"] == 12 and ds["n_pairs"] == 12 * ds["n_items"] and ds["n_items"] > 1600 and ds["truth"]["ate"] > 0
    comp = pd.read_csv(tmp_path / "sato" / "evaluate" / "ranking_comparison.csv")
    assert {"logistic_t", "cubn", "CausalBert uplift (tau)"} <= set(comp.method)
    assert res.metrics["n_test_users"] == 3 and np.isfinite(comp.normalised_gain).all()


def test_history_as_a_list_reaches_the_train_stage(quick, tmp_path):
    "train.history: list gives the train stage the history items' texts one by one (joined by LIST_SEP); a run folder made with one text is refused without --force."
    from causal_llmrec.text import LIST_SEP, split_list
    run = Path(shutil.copytree(quick[0], tmp_path/"run"))
    # the list, and a lighter training than the quick run's (what is checked is the text the train stage reads): the pretrained
    # encoder frozen (the default; no fine-tuning, so the logistic start is cross-validated once, not twice)
    cfg = PipelineConfig.quick(train={"history": "list", "cross_fit_folds": 2, "encoder_steps": 0, "head_epochs": 2})
    with pytest.raises(PipelineError, match=r"train.history: 'text' -> 'list'"): run_pipeline(out=run, config=cfg, until="train", progress=False)
    res = run_pipeline(out=run, config=cfg, until="train", force=True, progress=False)
    st = res.stages.set_index("stage").status
    assert st["train"] == "ran", res.stages
    ut = pd.read_csv(run/"train"/"user_texts.csv.gz")
    before = pd.read_csv(quick[0]/"train"/"user_texts.csv.gz")
    assert ut.history.str.contains(LIST_SEP, regex=False).any() and not before.history.str.contains(LIST_SEP, regex=False).any()
    assert max(len(split_list(h)) for h in ut.history) == cfg.train.n_history

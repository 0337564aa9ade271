"""The pipeline end to end on the quick settings: output folder, caching and resuming, atomic stages, settings errors.

The quick run (tiny BERT, 40 users) is made once per session in a shared folder; test_cli.py and
test_report_browser.py use the same folder, so whichever runs first pays for it and the others reuse its stages."""
import json, os, shutil
from pathlib import Path

import numpy as np, pandas as pd
import pytest, yaml

from causal_llmrec.pipeline import (PipelineConfig, Pipeline, run_pipeline, recommend, effects_table, ConfigError,
                                    PipelineError, UnknownUserError, STAGES, atomic_write, atomic_path, stable_hash)


def shared_run(tmp_path_factory):
    "The session's quick run (made by whichever test module asks first)."
    out = tmp_path_factory.getbasetemp() / "quick-run"
    res = run_pipeline(out=out, config=PipelineConfig.quick(), progress=False)
    return out, res


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return shared_run(tmp_path_factory)


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
    ({"seed": "one"}, "setting seed must be an integer"),
    ({"seed": 1.5}, "setting seed must be an integer"),
    ({"train": {"lr": "fast"}}, "setting train.lr must be a number"),
    ({"discover": {"domain_knowledge": "yes"}}, "must be true or false"),
    ({"estimate": {"estimand": "CATE"}}, "estimate.estimand must be one of"),
    ({"rank": {"by": "random"}}, "rank.by must be one of"),
    ({"data": 3}, "section data must be a mapping"),
    ({"data": {"n_users": 2}}, "data.n_users must be >= 10"),
    ({"data": {"test_frac": 1.5}}, "data.test_frac must be in (0, 1)"),
    ({"rank": {"k": 0}}, "rank.k must be >= 1"),
    ({"evaluate": {"k": 50}}, "evaluate.k (50) must be <= rank.k"),
    ({"device": "gpu"}, "setting device must be"),
    ({"train": {"encoder": None}}, "setting train.encoder must not be empty"),
    ({"train": {"inputs": "tabular"}}, "train.inputs must be one of"),
    ({"train": {"cross_fit_folds": 1}}, "train.cross_fit_folds must be 0 (no cross-fitting) or >= 2"),
    ({"train": {"cross_fit_encoder_steps": -1}}, "train.cross_fit_encoder_steps must be >= 0"),
    ({"evaluate": {"baselines": ["dlce", "magic"]}}, "evaluate.baselines has unknown method(s) ['magic']"),
])
def test_bad_settings_name_the_setting(bad, needle):
    with pytest.raises(ConfigError) as e: PipelineConfig.from_dict(bad)
    assert needle in str(e.value)


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
    assert not [p.name for p in out.iterdir() if p.name.startswith((".staging", ".old"))]
    man = json.loads((out / "manifest.json").read_text())
    assert set(man["stages"]) == set(res.stages.stage)
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
    assert set(tab.covers_truth) <= {"yes", "no"}
    assert (tab.covers_truth == "yes").tolist() == [lo <= v <= hi for lo, hi, v in zip(tab.ci_low, tab.ci_high, tab.truth)]


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


def test_changed_settings_need_force_and_rerun_only_downstream(quick, tmp_path):
    out, _ = quick
    run = copy_run(out, tmp_path / "run")
    cfg = PipelineConfig.quick(rank={"k": 5}, evaluate={"k": 5})
    st = Pipeline(run, cfg).status().set_index("stage").status
    assert st["data"] == st["train"] == st["estimate"] == "done" and st["recommend"] == st["evaluate"] == "stale"
    with pytest.raises(PipelineError, match=r"rank.k: 10 -> 5.*--force"):
        run_pipeline(out=run, config=cfg, progress=False)
    cheap = PipelineConfig.quick(report={"title": "another title"})
    res = run_pipeline(out=run, config=cheap, force=True, progress=False)
    assert res.stages.set_index("stage").status.to_dict() == {s: ("ran" if s == "report" else "reused") for s in res.stages.stage}
    assert "another title" in (run / "report.html").read_text()


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


def test_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="not a causal_llmrec run folder.*--force"):
        run_pipeline(out=tmp_path, config=PipelineConfig.quick(), until="data", progress=False)
    f = tmp_path / "file"; f.write_text("x")
    with pytest.raises(PipelineError, match="is a file"):
        run_pipeline(out=f, config=PipelineConfig.quick(), until="data", progress=False)
    res = run_pipeline(out=tmp_path, config=PipelineConfig.quick(), until="data", force=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine" and list(res.stages.stage) == ["data"]


def test_any_recdata_runs_through_estimate(tmp_path):
    from causal_llmrec.data import simulate
    w = simulate(n_users=30, n_candidates=15, seed=1)
    res = run_pipeline(w.data, out=tmp_path / "r", config=PipelineConfig.quick(), until="estimate", progress=False)
    s = json.loads((tmp_path / "r" / "data" / "summary.json").read_text())
    assert s["truth"] is None and s["n_pairs"] == 450
    eff = pd.read_csv(tmp_path / "r" / "estimate" / "effects.csv")
    assert set(eff.method) == {"matching", "IPW", "AIPW"} and eff.se.gt(0).all()


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

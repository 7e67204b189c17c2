"""Leaderboard v2 (issue #20): like-for-like groups, the overall score's policy, compact cells,
and a dashboard that survives bad, old, new and busy database files."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests._old_schema import old_schema_db
from tests.fixtures import REPO
from vdmbench.dashboard import arena, cells, groups, metric_facts, ranking
from vdmbench.store.database import Store

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"


# -- declarations ---------------------------------------------------------------------------------
KNOWN_METRICS = frozenset({
    "aesthetic_quality", "appearance_style", "background_consistency", "clip_similarity", "clip_temporal",
    "dynamic_degree", "flicker", "flow_warping_error", "fvd", "imaging_quality", "jedi", "judge_adherence",
    "judge_vbench_semantic", "judge_vqascore", "kvd", "motion", "motion_smoothness", "overall_consistency", "reconstruction",
    "shapes_adherence", "shapes_editing", "subject_consistency", "temporal_flickering", "temporal_style",
    "vbench_scores",
})


def test_metric_facts_agree_with_the_metric_declarations():
    from vdmbench.metrics import available_metrics

    declared = {str(o): (name, o) for name, cls in available_metrics().items() for o in cls.outputs}
    for output, rng in metric_facts.RANGES.items():
        assert output in declared, f"{output}: no metric declares it"
        assert declared[output][1].range == rng, output
    for output, (name, o) in declared.items():
        if name not in KNOWN_METRICS:
            continue  # added since (e.g. by another team): the table can follow, nothing breaks meanwhile
        if o.range is not None:
            assert metric_facts.RANGES.get(output) == o.range, f"{output}: range missing from the table"
        if not o.is_score and not output.endswith("_weight"):
            assert output in metric_facts.NOT_SCORES
    for child, (parent, why) in metric_facts.FOLDED_UNDER.items():
        assert declared[child][0] == declared[parent][0], f"{child} and {parent} come from different metrics"
        assert why


def test_default_weights_leave_out_duplicates_derived_and_not_comparable():
    why = metric_facts.excluded_by_default
    assert why("flicker", {}, set()) is None
    assert "folded under flicker" in why("flicker_mean_abs_diff", {}, set())
    assert "folded under shapes_adherence" in why("shapes_color", {}, set())
    assert "folded under motion_mean" in why("motion_top5", {}, set())
    assert why("vbench_total_score", {"vbench_total_score": True}, set()) == "derived from other columns"
    assert why("fvd", {}, {"fvd"}) == "not comparable with published numbers"
    assert why("fvd", {}, set()) is None


# -- like-for-like groups -------------------------------------------------------------------------
def _config(n_prompts: int, seeds=(0, 1), steps=None, own_seeds=None) -> dict:
    prompts = [{"id": f"p{i}", "text": "x"} for i in range(n_prompts)]
    if own_seeds:
        prompts[0]["seeds"] = list(own_seeds)
    return {"name": "s", "version": 1, "prompts": prompts, "seeds": list(seeds), **({"steps": steps} if steps else {})}


def test_settings_groups_pick_the_full_suite_as_standard_and_name_overrides():
    settings = pd.DataFrame({
        "run_id": ["r1", "r2", "r3", "r4"],
        "suite_hash": ["A", "A", "B", "C"],
        "suite_config": [_config(4), _config(4), _config(1, steps=3), _config(4, seeds=(0,), own_seeds=(0, 1, 2))],
    })
    runs = pd.DataFrame({"run_id": ["r4", "r3", "r2", "r1"], "model": ["m1", "m1", "m2", "m1"],
                         "finished_at": pd.to_datetime(["2026-01-04", "2026-01-03", "2026-01-02", "2026-01-01"])})
    g = groups.settings_groups(settings, runs).set_index("suite_hash")
    assert list(g.index) == ["A", "C", "B"]  # most planned samples first; the newest cut-down run last
    assert g.planned.tolist() == [8, 6, 2]  # C: 3 own seeds for one prompt + 1 for each of three
    assert bool(g.standard["A"]) and not g.standard["B"]
    assert g.label["A"] == "standard settings · 8 samples/run · 2 models"
    assert g.label["B"] == "prompts 1 (standard: 4); steps 3 (standard: none) · 2 samples/run · 1 model"
    assert g.label["C"].startswith("other prompts; seeds 1 (standard: 2)")
    assert groups.planned_samples({"prompts": []}) is None


# -- the overall score ----------------------------------------------------------------------------
def test_overall_score_counts_failures_as_the_worst_model_and_matches_float64_formula():
    wide = pd.DataFrame({
        "model": ["a", "b", "c"],
        "q": [0.9, 0.8, 0.2], "q lo": [0.85, 0.7, 0.1], "q hi": [0.95, 0.9, 0.3],
        "e": [1.0, 3.0, 2.0], "e lo": [0.5, 2.5, 1.5], "e hi": [1.5, 3.5, 2.5],
        "coverage": [1.0, 1.0, 0.5],
    })
    ways = {"q": True, "e": False}
    out = ranking.overall_rank(wide, ways, {"q": 2.0, "e": 1.0})
    q = np.array([0.9, 0.8, 0.2], dtype=np.float64)
    e = np.array([1.0, 3.0, 2.0], dtype=np.float64)
    sq = (q - q.min()) / (q.max() - q.min())
    se = (e.max() - e) / (e.max() - e.min())
    expect = (2 * sq + se) / 3 * np.array([1.0, 1.0, 0.5])
    np.testing.assert_allclose(out.overall.to_numpy(), expect, rtol=0, atol=1e-12)
    # The interval: the worst CI ends through the same map (q's lo, e's hi), then the same mean.
    low = (2 * (np.array([0.85, 0.7, 0.1]) - 0.2) / 0.7 + (3.0 - np.array([1.5, 3.5, 2.5])) / 2.0) / 3
    np.testing.assert_allclose(out.overall_low.to_numpy(), low * np.array([1, 1, 0.5]), atol=1e-12)
    assert (out.overall_low <= out.overall).all() and (out.overall <= out.overall_high).all()
    # A model that failed half its samples cannot beat the same values with every sample.
    same = pd.DataFrame({"model": ["full", "half"], "q": [0.5, 0.5], "coverage": [1.0, 0.5]})
    ranked = ranking.overall_rank(same, {"q": True})
    assert ranked.overall.tolist() == [1.0, 0.5] and ranked["rank"].tolist() == [1, 2]


def test_rank_bands_share_a_band_where_intervals_overlap():
    point = np.array([0.9, 0.85, 0.3, 0.1])
    low = np.array([0.8, 0.75, 0.25, 0.0])
    high = np.array([1.0, 0.95, 0.35, 0.28])
    assert ranking.rank_bands(low, high, point) == ["1–2", "1–2", "3–4", "3–4"]
    assert ranking.rank_bands(point, point, point) == ["1", "2", "3", "4"]  # no CIs: strict order
    assert ranking.rank_bands(low, high, np.array([0.9, np.nan, 0.3, 0.1]))[1] == ""


# -- cells ----------------------------------------------------------------------------------------
def test_cells_fixed_decimals_clipped_cis_and_p_floor():
    d = cells.decimals_for([1.0, 0.9167, 0.08333])
    assert d == 3 and [cells.value_cell(v, None, None, d) for v in (1.0, 0.9167, 0.08333)] == ["1.000", "0.917", "0.083"]
    assert cells.decimals_for([103.8]) == 0 and cells.value_cell(103.8, None, None, 0) == "104"
    assert cells.decimals_for([0.972], [0.006]) == 3
    assert cells.value_cell(0.972, 0.966, 0.978, 3) == "0.972 ± 0.006"
    assert cells.value_cell(float("nan"), None, None, 3) == "–"
    assert cells.clip_ci("flicker", -0.2, 1.3) == (0.0, 1.0)
    assert cells.clip_ci("unknown", -0.2, 1.3) == (-0.2, 1.3)
    assert cells.clip_delta_ci("flicker", -1.011, -0.489) == (-1.0, -0.489)
    assert cells.clip_delta_ci("fvd", -500.0, 10.0) == (-500.0, 10.0)  # unbounded range: untouched
    floor = 2 / 4001
    assert cells.p_cell(6 * floor, floor, 4000, 6) == "< 0.003"  # the 0.002999 of six tests at the floor
    assert cells.p_cell(0.0123, 0.004, 4000, 3) == "0.012"
    assert cells.p_cell(float("nan"), float("nan"), 4000) == "–"


# -- database files the app cannot show -----------------------------------------------------------
def _app(db: Path, page: str = "Leaderboard"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["db_path"] = str(db)
    at.session_state["page"] = page
    return at.run()


def _old_schema(db: Path, version: int) -> None:
    old_schema_db(db, version).close()


@pytest.mark.parametrize("kind, expected", [
    ("zero", "the file is empty (0 bytes)"),
    ("junk", "cannot open the results database"),
    ("older", "written by an older vdmbench (schema 2, this version reads"),
    ("newer", "written by a newer vdmbench (schema 99"),
])
def test_unusable_files_give_one_line_and_stay_untouched(tmp_path, kind, expected):
    pytest.importorskip("streamlit")
    db = tmp_path / "vdmbench.duckdb"
    if kind == "zero":
        db.write_bytes(b"")
    elif kind == "junk":
        db.write_bytes(b"not a database " * 400)
    elif kind == "older":
        _old_schema(db, 2)
    else:
        Store(db)
        con = duckdb.connect(str(db))
        con.execute("UPDATE schema_version SET version = 99")
        con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for page in ("Leaderboard", "Arena"):
        at = _app(db, page)
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0], errors
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# -- a busy file ----------------------------------------------------------------------------------
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # a writer holding the file, like a long transaction elsewhere
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(db: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_vote_on_a_busy_file_is_queued_on_disk_then_stored_once(tmp_path):
    db = tmp_path / "vdmbench.duckdb"
    Store(db)
    pair = arena.Pair("s", "p", "a prompt", 0, "r1", "p-s0", "m1", "r2", "p-s0", "m2")
    proc = _hold(db, 30.0)
    try:
        vote = arena.queue_vote(db, pair, "a", "me")
        t0 = time.monotonic()
        stored, waiting, error = arena.flush(db, busy_timeout=0.3)
        assert time.monotonic() - t0 < 2.5  # no 30 s freeze
        assert (stored, waiting) == (0, 1) and error is not None and "busy" in error
    finally:
        proc.kill()  # the other writer goes away
        proc.wait(timeout=30)
    # The queue is a folder beside the database: it outlives the browser session that voted.
    assert [v.vote_id for _, v in arena.pending(db)] == [vote.vote_id]
    assert arena.flush(db, busy_timeout=5.0) == (1, 0, None)
    assert arena.pending(db) == [] and arena.flush(db) == (0, 0, None)
    # A vote already stored (e.g. by another session's flush) is dropped from the queue, not repeated.
    again = arena.queue_vote(db, pair, "b")
    arena.record_vote(db, again.pair, again.winner, vote_id=again.vote_id)
    assert arena.flush(db) == (0, 0, None)
    votes = arena.votes(Store(db, read_only=True), "s")
    assert votes[["model_a", "winner"]].values.tolist() == [["m1", "a"], ["m1", "b"]]
    assert votes.voter.iloc[0] == "me" and pd.isna(votes.voter.iloc[1])


def test_a_busy_file_shows_the_last_data_with_a_banner(tmp_path):
    pytest.importorskip("streamlit")
    import streamlit as st

    db = tmp_path / "vdmbench.duckdb"
    store = Store(db)
    store.create_run({"run_id": "r1", "suite": "s", "suite_version": 1, "suite_hash": "h", "model": "m1",
                      "model_config": {}, "config_hash": "c", "status": "running", "started_at": "2026-01-01",
                      "git_sha": None, "env": {}, "shard": None, "suite_config": {"task": "t2v"}})
    store.record_run_metrics("r1", [{"metric": "flicker", "value": 0.9, "ci_low": 0.8, "ci_high": 1.0, "n": 4,
                                     "details": {"higher_is_better": True, "per_sample": True}}])
    store.set_run_status("r1", "finished", finished=True)
    at = _app(db)
    assert not at.exception and not at.warning
    st.cache_data.clear()  # what a write by another process does to the cache key
    proc = _hold(db, 30.0)
    try:
        at.run()
        assert proc.poll() is None, "the file was released before the render ended: no busy render tested"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    assert any("database is busy" in w.value for w in at.warning), ([e.value for e in at.error], [w.value for w in at.warning], [i.value for i in at.info])
    tables = [df.value for df in at.dataframe if "overall" in df.value.columns]
    assert tables, ([e.value for e in at.error], [i.value for i in at.info], [m.value for m in at.markdown])
    table = tables[0]
    assert table.model.tolist() == ["m1"] and table["flicker ↑"].tolist() == ["0.9 ± 0.1"]
    assert math.isclose(table.overall.iloc[0], 1.0)


# -- charts ---------------------------------------------------------------------------------------
def test_log_scale_only_where_positive_values_span_orders_of_magnitude():
    from vdmbench.dashboard import charts

    assert charts.needs_log_scale([0.001, 0.5, 2.0])  # KVD-like: 2000x
    assert not charts.needs_log_scale([40.0, 900.0])  # FVD-like: 22x, linear is readable
    assert not charts.needs_log_scale([-1.0, 1000.0])  # a log axis cannot show <= 0
    assert not charts.needs_log_scale([5.0])


def test_means_with_cis_are_clipped_and_radar_puts_the_best_on_the_rim():
    from vdmbench.dashboard import charts

    wide = pd.DataFrame({"model": ["a", "b"], "flicker": [0.99, 0.5], "flicker lo": [0.97, 0.4],
                         "flicker hi": [1.01, 0.6]})
    means = charts.means_with_cis(wide, "flicker")
    assert means.ci_high.tolist() == [1.0, 0.6] and means.ci_low.tolist() == [0.97, 0.4]
    per_tag = pd.DataFrame({"model": ["a", "a", "a", "b", "b", "b"], "tag": ["x", "y", "z"] * 2,
                            "value": [1.0, 2.0, 3.0, 3.0, 2.0, 1.0], "samples": 1})
    table = charts.dimension_table(per_tag)
    assert table.loc["a"].tolist() == [1.0, 2.0, 3.0]
    pts = charts.radar_points(table, higher_is_better=True)
    a = pts[pts.model == "a"].set_index("order")
    assert a.score.tolist() == [0.0, 1.0, 1.0, 0.0]  # x worst, y tied (both 1), z best; closed
    np.testing.assert_allclose(np.hypot(a.x, a.y), a.score, atol=1e-12)  # radius = score
    np.testing.assert_allclose([a.ux[2], a.uy[2]], [math.cos(math.pi / 2 - 4 * math.pi / 3),
                                                    math.sin(math.pi / 2 - 4 * math.pi / 3)], atol=1e-12)
    flipped = charts.radar_points(table, higher_is_better=False)
    assert flipped[flipped.model == "a"].set_index("order").score.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert charts.radar_points(table[["x", "y"]], True).empty  # two axes: no radar

"""Issue #20, page defects seen in the browser: "None" cells in the Arena's agreement table, a
render that stored a queued vote yet said "no votes", coverage under a tag filter, and Compare /
drill-down numbers at the Leaderboard's fixed decimals per metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_db import APP, fill
from vdmbench.dashboard import arena, cells, groups
from vdmbench.dashboard.pages import compare as compare_page
from vdmbench.dashboard.pages import drilldown as drill_page
from vdmbench.store import Store


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    results = tmp_path_factory.mktemp("fixes") / "results"
    runs = fill(results)
    return results / "vdmbench.duckdb", runs


def copy_db(filled, tmp_path) -> Path:
    db, _ = filled
    shutil.copytree(db.parent, tmp_path / "results")
    return tmp_path / "results" / "vdmbench.duckdb"


def app(db: Path, page: str, **state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["db_path"] = str(db)
    at.session_state["page"] = page
    for k, v in state.items():
        at.session_state[k] = v
    return clean(at.run())


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame(at: AppTest, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with a {column!r} column")


def square_vs_noise(db: Path, runs: dict[str, str]) -> list[arena.Pair]:
    ro = Store(db, read_only=True)
    sq, noise = runs["toy-square"], runs["toy-noise"]
    ok = set(ro.sample_table(sq).query("status == 'ok'").sample_id) & set(
        ro.sample_table(noise).query("status == 'ok'").sample_id)
    pairs = []
    for sid in sorted(ok):
        prompt, seed = sid.split("-s")
        pairs.append(arena.Pair("dash", prompt, "x", int(seed), noise, sid, "toy-noise", sq, sid, "toy-square"))
    return pairs


# -- 1. Arena agreement table: a missing value is "–", never "None" ----------------------------
def test_arena_agreement_table_has_no_null_cells(filled, tmp_path):
    db = copy_db(filled, tmp_path)
    for pair in square_vs_noise(db, filled[1]):
        arena.record_vote(db, pair, "b")
    at = app(db, "Arena")
    corr = frame(at, "vote accuracy").set_index("metric")
    # Two rated models: no Spearman across models (needs 3), so those cells are empty.
    assert corr.loc["flicker", "spearman rho"] == "–" and corr.loc["flicker", "oriented rho"] == "–"
    assert corr.loc["flicker", "vote accuracy"] == "1.00"
    # Streamlit draws a null (None / NaN) as "None": no cell may be one.
    assert not corr.isna().any().any(), corr
    assert all(isinstance(v, str) for v in corr.to_numpy().ravel())


# -- 2. one render after a queued vote is stored sees that vote --------------------------------
def test_a_flushed_queued_vote_shows_in_the_same_render(filled, tmp_path):
    db = copy_db(filled, tmp_path)
    at = app(db, "Arena")
    assert any("No votes on this suite yet" in i.value for i in at.info)
    arena.queue_vote(db, square_vs_noise(db, filled[1])[0], "b")  # waiting in the queue folder
    at = clean(at.run())
    assert any("1 queued vote(s) stored" in s.value for s in at.success)
    assert not any("No votes on this suite yet" in i.value for i in at.info)
    ratings = frame(at, "rating")
    assert set(ratings.model) == {"toy-noise", "toy-square"} and ratings.votes.sum() == 2


# -- 3. coverage under a tag filter counts the tagged prompts only ----------------------------
def test_tag_coverage_counts_tagged_prompts_only():
    config = {"seeds": [0, 1], "prompts": [
        {"id": "a", "tags": ["color", "motion"]}, {"id": "b", "tags": ["motion"]},
        {"id": "c", "tags": ["color"], "seeds": [0, 1, 2]}, {"id": "d", "tags": ["motion"]}]}
    assert groups.planned_samples(config) == 9
    assert groups.planned_samples(config, ("motion",)) == 6 and groups.planned_samples(config, ("color",)) == 5
    runs = pd.DataFrame({"run_id": ["r", "old"], "ok": [8, 3], "planned": [9, 4], "coverage": [8 / 9, 0.75]})
    settings = pd.DataFrame({"run_id": ["r", "old"], "suite_config": [config, {}]})
    ok_tags = pd.DataFrame([("r", s, t) for s, ts in [("a-s0", ["color", "motion"]), ("a-s1", ["color", "motion"]),
                                                      ("b-s0", ["motion"]), ("c-s0", ["color"])] for t in ts]
                           + [("old", "x", "motion")], columns=["run_id", "sample_id", "tag"])
    got = groups.tag_coverage(runs, settings, ok_tags, ("motion",)).set_index("run_id")
    assert got.loc["r", "ok"] == 3 and got.loc["r", "planned"] == 6 and got.loc["r", "coverage"] == 0.5
    assert pd.isna(got.loc["old", "coverage"])  # no prompt list stored: plan unknown, not penalized
    # Any of the tags: a sample tagged with both is counted once.
    both = groups.tag_coverage(runs, settings, ok_tags, ("motion", "color")).set_index("run_id")
    assert both.loc["r", "ok"] == 4 and both.loc["r", "planned"] == 9


def test_leaderboard_coverage_and_failure_policy_follow_the_tag_filter(filled):
    db, _ = filled
    # toy-flaky fails prompt d (tagged motion, 2 seeds): 6/8 overall, 4/6 on motion, 4/4 on color.
    rows = {}
    for tags in ([], ["motion"], ["color"]):
        at = app(db, "Leaderboard", tags=tags)
        board = frame(at, "coverage").set_index("model")
        rows[tuple(tags)] = board
    assert rows[()].loc["toy-flaky", "coverage"] == "6/8"
    assert rows[("motion",)].loc["toy-flaky", "coverage"] == "4/6"
    assert rows[("color",)].loc["toy-flaky", "coverage"] == "4/4"
    assert rows[("color",)].loc["toy-square", "coverage"] == "4/4"
    # The overall score is multiplied by that same coverage: flaky's square frames score like
    # toy-square's on the tagged prompts, so its overall is square's times 4/6 under "motion".
    motion = rows[("motion",)]
    assert motion.loc["toy-flaky", "overall"] == pytest.approx(motion.loc["toy-square", "overall"] * 4 / 6, abs=2e-3)
    assert rows[("color",)].loc["toy-flaky", "overall"] == pytest.approx(rows[("color",)].loc["toy-square", "overall"],
                                                                        abs=1e-3)



# -- 4. Compare: the verdict early, numbers at each metric's fixed decimals -------------------
def test_metric_decimals_follow_the_leaderboards_rule():
    rows = pd.DataFrame({"metric": ["a", "a", "b", "c"], "value": [0.97, 0.95, 103.8, 0.0],
                         "ci_low": [0.964, 0.94, None, None], "ci_high": [0.976, 0.96, None, None]})
    got = cells.metric_decimals(rows)
    # a: median half-width 0.008 -> 3 decimals; b: no CI, 3 significant digits of 103.8 ("104") -> 0; c: only 0 -> 3.
    assert got == {"a": 3, "b": 0, "c": 3}
    assert got["a"] == cells.decimals_for([0.97, 0.95], [0.006, 0.01])


def test_compare_prints_each_metric_at_its_decimals_with_the_verdict_early(filled):
    db, runs = filled
    at = app(db, "Compare", compare_runs=[runs["toy-square"], runs["toy-noise"]])
    shown = frame(at, "verdict")
    assert list(shown.columns[:3]) == ["run", "metric", "verdict"]
    assert pd.api.types.is_numeric_dtype(shown.delta)  # still sortable numbers
    long = Store(db, read_only=True).run_metric_table([runs["toy-square"], runs["toy-noise"]])
    decimals = cells.metric_decimals(long)
    metrics = sorted(long.metric.unique())
    styled = compare_page.style_deltas(shown, metrics, decimals)
    text = styled.to_string(delimiter="|").splitlines()[1:]
    for line, metric, (_, row) in zip(text, metrics, shown.iterrows()):
        d = decimals[metric]
        assert f"{row.delta:.{d}f}" in line.split("|"), (metric, line)
        assert f"{row.baseline:.{d}f}" in line.split("|")
    # A metric that is exactly 1 on one side and 0 on the other prints "1.000"/"0.000", never "1" / "0".
    toy = pd.DataFrame({"run": ["r"], "metric": ["q"], "verdict": ["worse"], "baseline": [1.0], "value": [0.0],
                        "delta": [-1.0]})
    cells_text = compare_page.style_deltas(toy, ["q"], {"q": 3}).to_string(delimiter="|").splitlines()[1]
    assert cells_text.split("|")[-3:] == ["1.000", "0.000", "-1.000"]


# -- 5. Drill-down: metric values at the same fixed decimals ----------------------------------
def test_drilldown_metric_values_use_fixed_decimals(filled):
    db, runs = filled
    run = runs["toy-square"]
    at = app(db, "Drill-down", drill_run=run, drill_sample="a-s0")
    shown = frame(at, "value").set_index("metric")
    decimals = cells.metric_decimals(Store(db, read_only=True).run_metric_table([run]))
    raw = Store(db, read_only=True).sample_metric_table(run, "a-s0").set_index("metric").value
    assert set(shown.index) == set(raw.index) and len(raw) >= 2
    for metric, value in raw.items():
        assert shown.loc[metric, "value"] == f"{value:.{decimals[metric]}f}"
    # A value of exactly 0 is printed with the metric's decimals, like its neighbours.
    toy = pd.DataFrame({"metric": ["q", "r"], "value": [0.0, 1.0]})
    assert list(drill_page.metric_cells(toy, {"q": 4, "r": 4}).value) == ["0.0000", "1.0000"]

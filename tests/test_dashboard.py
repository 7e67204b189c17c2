"""The Streamlit dashboard through streamlit's AppTest, on a database filled by the real runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_db import APP, fill, fill_cut_down
from tests.fixtures import REPO


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """(db path, model -> latest run id); shared read-only by the tests that do not write."""
    results = tmp_path_factory.mktemp("dash") / "results"
    runs = fill(results)
    runs["cut-down"] = fill_cut_down(results)  # newest run of toy-square, one prompt, steps=3
    return results / "vdmbench.duckdb", runs


def app(db: Path, page: str = "Leaderboard", **state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["db_path"] = str(db)
    at.session_state["page"] = page
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def frame(at: AppTest, column: str):
    """The first table on the page with this column (AppTest does not expose dataframe keys)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df
    raise AssertionError(f"no table with a {column!r} column")


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def copy_results(filled, tmp_path) -> Path:
    db, _ = filled
    shutil.copytree(db.parent, tmp_path / "results")
    return tmp_path / "results" / "vdmbench.duckdb"


def test_leaderboard_table_directions_cis_best_and_rank(filled):
    db, runs = filled
    at = app(db)
    assert_clean(at)
    assert at.sidebar.selectbox(key="suite").value == "dash"
    assert at.sidebar.selectbox(key="suite_version").value == 1
    table = frame(at, "overall").value
    # Latest run per model among the standard settings: toy-square's newer cut-down run (one
    # prompt, steps=3) does not replace its full run.
    assert sorted(table.model) == ["toy-flaky", "toy-noise", "toy-square"]
    assert runs["toy-square"] in set(table.run) and runs["cut-down"] not in set(table.run)
    assert {"flicker ↑", "overall", "rank", "coverage", "prompts"} <= set(table.columns)
    assert "flicker_mean_abs_diff ↓" not in table  # folded under flicker, shown on request
    assert table["flicker ↑"].str.match(r"^\d\.\d{3} ± \d\.\d{3}$").all()  # one cell, fixed decimals
    by_model = table.set_index("model")
    # Noise flickers: worst, overall 0; the flaky model failed 2 of 8 samples: coverage 6/8 and
    # overall 0.75, so it no longer ties with the square that has every sample.
    assert by_model.loc["toy-noise", "overall"] == 0.0 and by_model.loc["toy-noise", "rank"] == "3"
    assert by_model.loc["toy-flaky", "coverage"] == "6/8" and by_model.loc["toy-flaky", "overall"] == 0.75
    assert by_model.loc["toy-square", "rank"] == "1" and list(table.model) == ["toy-square", "toy-flaky", "toy-noise"]
    assert by_model.loc["toy-flaky", "prompts"] == 3
    # The best value of each metric is highlighted (styled cells in the table's proto).
    styled = str(frame(at, "overall").proto)
    assert "c8f7c5" in styled
    columns = json.loads(frame(at, "overall").proto.columns)
    assert columns["rank"]["pinned"] and columns["model"]["pinned"]  # stay while scrolling sideways
    assert columns["flicker ↑"]["help"] == "mean ± half the 95% CI; n = 6-8 samples; range [0, 1]"


def test_leaderboard_weights_sort_and_tag_filter(filled):
    db, _ = filled
    at = app(db)
    at.number_input(key="weight-flicker").set_value(0.0).run()
    assert_clean(at)
    assert frame(at, "overall").value.overall.isna().all(), "all weights 0: no overall score"
    at.toggle(key="show_parts").set_value(True).run()
    at.selectbox(key="sort_by").set_value("flicker_mean_abs_diff").run()
    table = frame(at, "overall").value
    diffs = [float(c.split(" ± ")[0]) for c in table["↳ flicker_mean_abs_diff ↓"]]
    assert diffs == sorted(diffs)  # lower is better: best first
    at.sidebar.multiselect(key="tags").set_value(["color"]).run()
    assert_clean(at)
    assert any("Filtered to samples tagged color" in c.value for c in at.caption)
    tagged = frame(at, "overall").value
    assert len(tagged) == 3 and (tagged["flicker ↑"] != "–").all()


def test_compare_deltas_significance_per_prompt_and_videos(filled):
    db, runs = filled
    at = app(db, "Compare")
    at.multiselect(key="compare_runs").set_value([runs["toy-square"], runs["toy-noise"]]).run()
    assert_clean(at)
    deltas = frame(at, "verdict").value.set_index("metric")
    assert deltas.loc["flicker ↑", "verdict"] == "worse"  # noise vs the square baseline
    assert deltas.loc["flicker_mean_abs_diff ↓", "verdict"] == "worse"
    assert deltas.loc["flicker ↑", "delta"] < 0
    # Every replicate agrees: p is at the bootstrap's floor (2/4001, Holm x 2 metrics), said as a bound.
    assert deltas.loc["flicker ↑", "p (Holm)"] == "< 0.001"
    assert deltas.loc["flicker ↑", "n"] == 8
    per_prompt = frame(at, "difference").value
    assert len(per_prompt) == 8
    diffs = per_prompt.difference.abs().tolist()
    assert diffs == sorted(diffs, reverse=True)
    # The top prompt's two clips play side by side.
    videos = at.get("video")
    assert len(videos) == 2 and all(v.proto.url.endswith(".mp4") for v in videos)
    assert not at.warning


def test_drilldown_shows_failed_sample_error(filled):
    db, runs = filled
    at = app(db, "Drill-down", drill_run=runs["toy-flaky"], drill_sample="d-s0")
    assert_clean(at)
    assert any("backend exploded on purpose" in e.value for e in at.error)
    facts = at.table[0].value["value"]
    assert facts["file"] == "–" and "nan" not in set(facts)  # a failed sample has no file, not "nan"
    assert any("8 samples: 6 ok, 2 failed." in c.value for c in at.caption)
    at.selectbox(key="drill_sample").set_value("a-s0").run()
    assert not at.error
    metrics = frame(at, "metric").value
    assert set(metrics.metric) == {"flicker", "flicker_mean_abs_diff"}
    assert len(at.get("video")) == 1


def test_cut_down_run_is_its_own_group_with_its_overrides_named(filled):
    db, runs = filled
    at = app(db)
    box = at.sidebar.selectbox(key="settings-dash-1")
    assert box.value != "" and len(box.options) == 2
    assert box.options[0].startswith("standard settings · 8 samples/run · 3 models")
    assert box.options[1].startswith("prompts 1 (standard: 4); steps 3 (standard: none) · 2 samples/run")
    at.sidebar.selectbox(key="settings-dash-1").select_index(1).run()
    assert_clean(at)
    table = frame(at, "overall").value
    assert list(table.run) == [runs["cut-down"]] and table.coverage.tolist() == ["2/2"]
    assert any("Non-standard settings: prompts 1 (standard: 4)" in i.value for i in at.info)


def test_compare_marks_not_comparable_and_counts_failures(filled):
    db, runs = filled
    at = app(db, "Compare", compare_runs=[runs["toy-square"], runs["toy-flaky"]])
    assert_clean(at)
    assert any("toy-flaky" in w.value and "2 of 8 failed" in w.value for w in at.warning)
    deltas = frame(at, "verdict").value.set_index("metric")
    assert deltas.loc["flicker ↑", "n"] == 6  # paired over the samples ok in both runs
    assert not any("other settings" in w.value for w in at.warning)
    at.multiselect(key="compare_runs").set_value([runs["toy-square"], runs["cut-down"]]).run()
    assert_clean(at)
    assert any("ran with other settings than the baseline (prompts 1 (baseline: 4); steps 3 (baseline: none))"
               in w.value for w in at.warning)


def test_plots_render(filled):
    db, runs = filled
    at = app(db, "Plots")
    assert_clean(at)
    charts = at.get("vega_lite_chart")
    # means with CIs, distribution, per tag, metric vs metric, history (two tags: no radar; no ladder
    # for a suite without set-level metrics)
    assert len(charts) == 5
    dims = frame(at, "color").value  # models x tags, each cell value ± half its CI
    assert set(dims.columns) == {"color", "motion"} and len(dims) == 3
    assert dims["color"].str.match(r"^\d\.\d+ ± \d\.\d+$").all()
    assert any("radar needs three or more tags" in c.value for c in at.caption)
    history = str(charts[4].proto)  # the chart's data travels with it
    assert runs["toy-square"] in history and runs["cut-down"] not in history  # its settings only


def test_arena_votes_are_stored_and_rated(filled, tmp_path):
    db = copy_results(filled, tmp_path)
    at = app(db, "Arena")
    assert_clean(at)
    assert any("No votes" in i.value for i in at.info)
    assert len(at.get("video")) == 2
    shown = dict(at.session_state["arena_pair"])
    at.text_input(key="arena_voter").set_value("tester")
    at.button(key="arena_vote_a").click().run()
    assert_clean(at)
    assert any(shown["model_a"] in s.value for s in at.success)  # revealed after the vote
    for winner in ["b", "a", "tie", "a", "b", "a"]:
        at.button(key=f"arena_vote_{winner}").click().run()
    at.button(key="arena_vote_skip").click().run()
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT model_a, model_b, winner, voter, suite, prompt_id, seed FROM arena_votes").fetchall()
    finally:
        con.close()
    assert len(rows) == 7
    rows_match = [r for r in rows if r[0] == shown["model_a"] and r[1] == shown["model_b"] and r[2] == "a"]
    assert rows_match
    assert rows_match[0][3] == "tester" and all(r[4] == "dash" and r[0] != r[1] for r in rows)
    ratings = frame(at, "rating").value
    assert set(ratings.model) <= {"toy-noise", "toy-square", "toy-flaky"} and len(ratings) >= 2
    assert ratings.votes.sum() == 14 and "rating 95% CI" in ratings and "flicker ↑" in ratings
    corr = frame(at, "oriented rho").value
    assert set(corr.metric) == {"flicker", "flicker_mean_abs_diff"}


def test_empty_db_says_how_to_create_the_first_run(tmp_path):
    for db in (tmp_path / "missing.duckdb", tmp_path / "empty.duckdb"):
        if db.name == "empty.duckdb":
            from vdmbench.store.database import Store

            Store(db)  # a valid database with no runs
        at = app(db)
        assert_clean(at)
        assert any("vdmbench run suite=smoke" in i.value for i in at.info)


def test_missing_video_files_show_a_placeholder(filled, tmp_path):
    db = copy_results(filled, tmp_path)
    shutil.rmtree(db.parent / "videos")
    shutil.rmtree(db.parent / "previews")
    _, runs = filled
    at = app(db, "Compare", compare_runs=[runs["toy-square"], runs["toy-noise"]])
    assert_clean(at)
    assert sum("video file missing" in w.value for w in at.warning) == 2
    at = app(db, "Drill-down")
    assert_clean(at)
    assert any("video file missing" in w.value for w in at.warning)


WRITER = """
import sys, time
from vdmbench.store.database import SampleRecord, Store
store = Store(sys.argv[1])
run = {"run_id": "writer-run", "suite": "dash", "suite_version": 1, "suite_hash": "h", "model": "toy-writer",
       "model_config": {}, "config_hash": "c", "status": "running", "started_at": "2026-01-01 00:00:00",
       "git_sha": None, "env": {}, "shard": None, "suite_config": {"task": "t2v"}}
store.create_run(run)
for i in range(15):  # many short transactions, like a run recording batch after batch
    store.record_samples("writer-run", [SampleRecord(f"s{i}", f"p{i % 4}", "x", i, "t2v", "ok")],
                         {f"s{i}": {"flicker": 0.5}})
    time.sleep(0.03)
store.record_run_metrics("writer-run", [{"metric": "flicker", "value": 0.5, "ci_low": 0.5, "ci_high": 0.5,
                                         "n": 15, "details": {"higher_is_better": True, "per_sample": True}}])
store.set_run_status("writer-run", "finished", finished=True)
"""


def test_app_keeps_working_while_a_run_writes(filled, tmp_path):
    """Another process writes to the file in short transactions while the app renders read-only."""
    db = copy_results(filled, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    renders = 0
    try:
        while proc.poll() is None or renders < 2:
            assert_clean(app(db))
            renders += 1
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    at = app(db)
    assert "toy-writer" not in set(frame(at, "overall").value.model)  # other settings: its own group
    at.sidebar.selectbox(key="settings-dash-1").set_value("h").run()
    assert set(frame(at, "overall").value.model) == {"toy-writer"}


def test_leaderboard_command_line():
    from vdmbench.cli.leaderboard import build_parser, command

    cmd = command(build_parser().parse_args(["--db", "x.duckdb", "--port", "9999"]))
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith(os.path.join("dashboards", "app.py")) and Path(cmd[4]).is_file()
    assert cmd[cmd.index("--server.port") + 1] == "9999"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[-2:] == ["--db", str(Path("x.duckdb").resolve())]


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # another writer holding the file
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_arena_vote_on_a_busy_file_is_queued_and_stored_later(filled, tmp_path):
    import time

    db = copy_results(filled, tmp_path)
    at = app(db, "Arena")
    assert_clean(at)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "8"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        at.button(key="arena_vote_a").click().run()
        assert time.monotonic() - t0 < 20  # not the 30 s freeze (the vote waits 2 s, the page shows last data)
        assert proc.poll() is None, "released too early: the busy vote was not tested"
    finally:
        proc.kill()
        proc.wait()
    assert_clean(at)
    assert any(w.value.startswith("Vote queued (1 waiting") for w in at.warning)
    at.button(key="arena_vote_skip").click().run()  # the next action retries the queue
    assert_clean(at)
    assert any("1 queued vote(s) stored." in s.value for s in at.success)
    assert not list((db.parent / "vdmbench.duckdb.pending-votes").glob("*.json"))  # the queue is empty
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM arena_votes").fetchone()[0] == 1
    finally:
        con.close()


def test_not_comparable_metric_is_marked_everywhere_and_out_of_the_score(filled, tmp_path):
    db = copy_results(filled, tmp_path)
    con = duckdb.connect(str(db))
    try:  # as a random-weight extractor would store it
        con.execute("UPDATE run_metrics SET details = json_merge_patch(details, '{\"comparable\": false}') "
                    "WHERE metric = 'flicker'")
    finally:
        con.close()
    _, runs = filled
    at = app(db)
    assert_clean(at)
    table = frame(at, "overall").value
    assert "flicker ↑ *" in table and table.overall.isna().all()  # its only metric is left out by default
    assert any("not comparable with published numbers" in w.value for w in at.warning)
    at.number_input(key="weight-flicker").set_value(1.0).run()
    assert frame(at, "overall").value.overall.notna().all()
    at = app(db, "Compare", compare_runs=[runs["toy-square"], runs["toy-noise"]])
    assert_clean(at)
    assert "flicker ↑ *" in set(frame(at, "verdict").value.metric)
    assert any("not comparable with published numbers" in w.value for w in at.warning)

"""The store's typed queries: SQL only in vdmbench/store/, JSON columns decoded there, every named
read giving what its callers used to compute from raw SQL."""

import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from vdmbench.core.errors import StoreError
from vdmbench.store import LeaderboardRow, MetricRow, RunRecord, SampleRecord, SampleRow, SampleValue, Store

PACKAGE = Path(__file__).resolve().parents[1] / "vdmbench"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|CREATE TABLE|ALTER TABLE|DROP TABLE) ")


def test_no_sql_outside_the_store():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "store"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SQL.search(line) or ".execute(" in line or "import duckdb" in line:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    assert found == [], "SQL belongs in vdmbench/store/ (add a named Store method):\n" + "\n".join(found)


def test_the_store_takes_no_raw_sql_from_callers():
    for name in ("query", "connect", "transaction", "execute"):
        assert not hasattr(Store, name), f"Store.{name} would let SQL in from outside vdmbench/store/"


def _run(store, run_id="r1", **extra):
    store.create_run({
        "run_id": run_id, "suite": "s", "suite_version": 2, "suite_hash": "h", "model": "m",
        "model_config": {"name": "m", "params": {"x": [1, 2]}}, "config_hash": "c", "status": "running",
        "started_at": "2026-01-01 00:00:00", "git_sha": "abc", "env": {"device": "cpu", "threads": 2},
        "shard": None, "suite_config": {"task": "t2v", "seeds": [0, 1]}, **extra,
    })


def _filled(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    store.record_samples("r1", [
        SampleRecord("a-s0", "a", "a red circle", 0, "t2v", "ok", path="v/a.mp4", sha256="f" * 64, gen_seconds=1.5,
                     tags=("color", "motion"), notes={"unknown_words": ["zzz"]}),
        SampleRecord("a-s10", "a", "a red circle", 10, "t2v", "ok", path="v/a10.mp4", sha256="e" * 64, tags=("color",)),
        SampleRecord("a-s2", "a", "a red circle", 2, "t2v", "ok", path="v/a2.mp4", sha256="d" * 64),
        SampleRecord("b-s0", "b", "b", 0, "t2v", "failed", error="boom"),
    ], {"a-s0": {"flicker": 0.25, "motion": 1.0}, "a-s2": {"flicker": 0.5}},
        [("k1", "v/a.mp4", "f" * 64, 1.5, {"unknown_words": ["zzz"]})])
    store.finish_run("r1", [
        {"metric": "flicker", "value": 0.375, "ci_low": 0.25, "ci_high": 0.5, "n": 2,
         "details": {"higher_is_better": True, "comparable": False}},
        {"metric": "fvd", "value": 3.0, "n": 2, "details": {"higher_is_better": False}},
    ])
    return store


def test_get_run_is_a_typed_record_with_json_decoded(tmp_path):
    store = _filled(tmp_path)
    run = store.get_run("r")  # a unique prefix
    assert isinstance(run, RunRecord)
    assert run.model_config == {"name": "m", "params": {"x": [1, 2]}} and run.env["threads"] == 2
    assert run.suite_config == {"task": "t2v", "seeds": [0, 1]} and run.suite_version == 2
    assert isinstance(run.started_at, datetime) and isinstance(run.finished_at, datetime)
    assert run.status == "finished" and run.shard is None
    # ... that still reads like the dict get_run used to return
    assert run["suite"] == "s" and run.get("shard") is None and run.get("nope", 7) == 7 and "env" in run
    assert list(run) == list(RunRecord.columns()) == list(run.as_dict())
    with pytest.raises(KeyError):
        run["nope"]
    _run(store, "r2")
    with pytest.raises(StoreError, match="ambiguous"):
        store.get_run("r")


def test_samples_values_and_metrics_are_typed(tmp_path):
    store = _filled(tmp_path)
    rows = store.samples("r1")
    assert all(isinstance(r, SampleRow) for r in rows)
    assert [r.sample_id for r in rows] == ["a-s0", "a-s10", "a-s2", "b-s0"]
    assert [r.sample_id for r in store.samples("r1", order="prompt")] == ["a-s0", "a-s2", "a-s10", "b-s0"]
    assert [r.sample_id for r in store.samples("r1", ok_only=True)] == ["a-s0", "a-s10", "a-s2"]
    a, failed = rows[0], rows[3]
    assert a.tags == ("color", "motion") and a.notes == {"unknown_words": ["zzz"]} and a.seed == 0
    assert (a.path, a.sha256, a.gen_seconds, a.status) == ("v/a.mp4", "f" * 64, 1.5, "ok")
    assert failed.tags == () and failed.notes is None and failed.path is None and failed.sha256 is None
    assert failed.error == "boom"
    assert store.sample_metrics("r1") == [SampleValue("r1", "a-s0", "flicker", 0.25),
                                          SampleValue("r1", "a-s0", "motion", 1.0),
                                          SampleValue("r1", "a-s2", "flicker", 0.5)]
    metrics = store.run_metrics("r1")
    assert metrics == [MetricRow("r1", "flicker", 0.375, 0.25, 0.5, 2, {"higher_is_better": True, "comparable": False}),
                       MetricRow("r1", "fvd", 3.0, None, None, 2, {"higher_is_better": False})]
    assert store.lookup_generations(["k1", "k2"]) == {
        "k1": {"path": "v/a.mp4", "sha256": "f" * 64, "gen_seconds": 1.5, "notes": {"unknown_words": ["zzz"]}}}
    assert store.failed_samples("r1") == [("b-s0", "boom")] and store.count_ok("r1") == 3
    assert store.samples("nope") == [] and store.run_metrics("nope") == []


def test_leaderboard_rows_take_the_latest_finished_run_and_no_shards(tmp_path):
    store = _filled(tmp_path)
    _run(store, "r0-shard", shard="0/2")
    store.finish_run("r0-shard", [{"metric": "flicker", "value": 9.0}])
    rows = store.leaderboard()
    assert all(isinstance(r, LeaderboardRow) for r in rows)
    assert [(r.run_id, r.metric, r.value) for r in rows] == [("r1", "flicker", 0.375), ("r1", "fvd", 3.0)]
    assert rows[0].details == {"higher_is_better": True, "comparable": False} and rows[0].suite_version == 2
    assert store.leaderboard("other") == []


def test_merge_queries_copy_the_shards_into_a_new_run(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    for i in range(2):
        _run(store, f"s{i}", shard=f"{i}/2")
        store.record_samples(f"s{i}", [SampleRecord(f"p{i}-s0", f"p{i}", "x", 0, "t2v", "ok", tags=("t",))],
                             {f"p{i}-s0": {"flicker": float(i)}})
        store.finish_run(f"s{i}", [])
    _run(store, "unsharded")
    assert {r.run_id for r in store.finished_shard_runs()} == {"s0", "s1"}
    store.create_merged_run("m", "s0", ["s0", "s1"])
    merged = store.get_run("m")
    assert (merged.status, merged.shard, merged.finished_at) == ("merging", None, None)
    assert merged.model_config == store.get_run("s0").model_config
    assert [(r.sample_id, r.tags) for r in store.samples("m")] == [("p0-s0", ("t",)), ("p1-s0", ("t",))]
    assert [v.value for v in store.sample_metrics("m")] == [0.0, 1.0]


def test_dashboard_tables_decode_json_columns(tmp_path):
    store = _filled(tmp_path)
    table = store.sample_table("r1").set_index("sample_id")
    assert table.tags["a-s0"] == ("color", "motion") and table.notes["a-s0"] == {"unknown_words": ["zzz"]}
    assert table.tags["b-s0"] == () and table.notes["b-s0"] is None
    details = store.run_metric_table(["r1"]).details.tolist()
    assert details == [{"higher_is_better": True, "comparable": False}, {"higher_is_better": False}]
    assert store.suite_tags("s") == ["color", "motion"]
    assert sorted(store.sample_tag_table(["r1"]).tag) == ["color", "color", "motion"]
    assert set(store.sample_value_table(["r1"], ["motion"]).sample_id) == {"a-s0"}
    suites = store.suite_table()
    assert suites[["suite", "suite_version", "task", "runs"]].values.tolist() == [["s", 2, "t2v", 1]]
    assert store.count_runs() == 1 and list(store.run_table("s", 2).run_id) == ["r1"]
    assert store.metric_history("s").metric.tolist() == ["flicker", "fvd"]


def test_votes_and_has_table_look_at_this_file_only(tmp_path):
    import duckdb

    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE runs (run_id VARCHAR)")
    con.close()
    new = Store(tmp_path / "new.duckdb")
    new.record_vote(vote_id="v1", suite="s", prompt_id="p", seed=0, run_a="r1", sample_a="p-s0", model_a="m1",
                    run_b="r2", sample_b="p-s0", model_b="m2", winner="tie", voter=None)
    reader = Store(old, read_only=True)
    with new.session(), reader.session():  # both files attached to this process at once
        assert new.has_table("arena_votes") and not reader.has_table("arena_votes")
    votes = new.votes("s")
    assert votes[["model_a", "model_b", "winner", "voter"]].values.tolist() == [["m1", "m2", "tie", None]]


def test_load_frames_fills_known_tables_only(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    store.load_frames({"sample_metrics": pd.DataFrame({"run_id": ["r"], "sample_id": ["s"], "metric": ["m"],
                                                       "value": [1.0]})})
    assert store.sample_metrics("r") == [SampleValue("r", "s", "m", 1.0)]
    with pytest.raises(StoreError, match="no table"):
        store.load_frames({"runs; DROP TABLE runs": pd.DataFrame({"x": [1]})})


def test_exports_keep_the_json_columns_as_stored(tmp_path):
    import json

    from vdmbench.store.export import export_run

    store = _filled(tmp_path)
    doc = json.loads(export_run(store, "r1", "json", tmp_path / "out").read_text())
    assert doc["run"]["model_config"] == {"name": "m", "params": {"x": [1, 2]}}
    assert doc["run"]["started_at"] == "2026-01-01 00:00:00"
    assert doc["samples"][0]["tags"] == '["color", "motion"]' and doc["samples"][0]["flicker"] == 0.25
    assert json.loads(doc["run_metrics"][0]["details"]) == {"higher_is_better": True, "comparable": False}


def test_a_baseline_of_a_run_with_failed_samples(tmp_path):
    from vdmbench.gate.baseline import from_store, to_document

    store = _filled(tmp_path)
    doc = to_document(from_store(store, "r1"), store)
    assert doc["run"]["started_at"] == "2026-01-01T00:00:00" and doc["run"]["env"] == {"device": "cpu", "threads": 2}
    assert doc["run_metrics"]["flicker"] == {"value": 0.375, "ci_low": 0.25, "ci_high": 0.5, "n": 2,
                                             "details": {"higher_is_better": True, "comparable": False}}
    by_id = {s["sample_id"]: s for s in doc["samples"]}
    assert by_id["b-s0"] == {"sample_id": "b-s0", "prompt_id": "b", "seed": 0, "status": "failed", "sha256": None,
                             "values": {}}


def test_vbench_export_skips_failed_samples(tmp_path):
    """A failed sample has no file (NULL path): reported as skipped, not a crash."""
    from vdmbench.interop.vbench import export_run

    store = _filled(tmp_path)
    for name in ("a.mp4", "a10.mp4", "a2.mp4"):
        (tmp_path / "v").mkdir(exist_ok=True)
        (tmp_path / "v" / name).write_bytes(b"clip")
    report = export_run(store.path, "r1", tmp_path / "vb")
    assert report.skipped == ["b-s0 (failed)"]
    # seeds 0, 2, 10 (in seed order, not sample id order) are the prompt's samples 0, 1, 2
    assert report.written == ["a red circle-0.mp4", "a red circle-1.mp4", "a red circle-2.mp4"]


def test_reproduce_counts_failed_samples_as_identical(tmp_path):
    """Two runs failing the same sample (no file, no sha256) do not differ."""
    from vdmbench.config.suite import parse_suite
    from vdmbench.run.reproduce import reproduce
    from vdmbench.run.runner import Runner, RunOptions

    suite = parse_suite({"name": "t", "num_frames": 4, "height": 16, "width": 16, "metrics": ["flicker"],
                         "prompts": [{"id": "a", "text": "a red circle"}, {"id": "f", "text": "please fail"}]})
    model = {"name": "toy", "adapter": "callable", "params": {"target": "tests.fixtures.generators:flaky"}}
    first = Runner(suite, model, RunOptions(results_dir=tmp_path / "r", progress=False, workers=0)).run()
    assert (first.ok, first.failed) == (1, 1)
    report = reproduce(Store(first.db, read_only=True), first.run_id, tmp_path / "again", progress=False)
    assert report["differences"] == []

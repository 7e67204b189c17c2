"""The `judge_votes` table (schema 5): a VLM judge's pairwise verdicts stored beside the human ones."""

from __future__ import annotations

import pandas as pd
import pytest

from tests._old_schema import old_schema_db
from vdmbench.core.errors import StoreError
from vdmbench.store.database import SCHEMA_VERSION, Store
from vdmbench.store.schema import MIGRATIONS, TABLES
from vdmbench.store.votes import JUDGE_VOTE_COLUMNS, judge_vote_id

JUDGE = "openai/gpt-4o-mini/rev=None/pairwise@1"


def _votes(winners=("a", "b", "tie"), run_a="r1", run_b="r2") -> pd.DataFrame:
    rows = []
    for i, w in enumerate(winners):
        rows.append({"prompt_id": f"p{i}", "prompt": f"prompt {i}", "seed": i, "model_a": f"m-{run_a}",
                     "model_b": f"m-{run_b}", "run_a": run_a, "run_b": run_b, "sample_a": f"p{i}-s{i}",
                     "sample_b": f"p{i}-s{i}", "winner": w, "criterion": "visual quality",
                     "forward": f"fwd{i}", "backward": f"bwd{i}"})
    return pd.DataFrame(rows)


def test_schema_5_has_the_table_with_exactly_the_specified_columns(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    assert SCHEMA_VERSION == 5 == len(MIGRATIONS) == store.schema_version()
    assert "judge_votes" in TABLES and store.has_table("judge_votes")
    cols = store._query("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                        "WHERE table_name = 'judge_votes' ORDER BY ordinal_position")
    assert tuple(cols.column_name) == JUDGE_VOTE_COLUMNS
    types = dict(zip(cols.column_name, cols.data_type))
    assert types["seed"] == "BIGINT" and types["created_at"] == "TIMESTAMP" and types["winner"] == "VARCHAR"
    nullable = set(cols.column_name[cols.is_nullable == "YES"])
    assert nullable == {"winner", "forward", "backward", "created_at"}  # winner NULL: a failed call


def test_recording_is_idempotent_and_reads_back_the_votes(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    votes = _votes()
    assert store.record_judge_votes(votes, suite="s", judge=JUDGE, criterion="visual quality") == 3
    assert store.record_judge_votes(votes, suite="s", judge=JUDGE, criterion="visual quality") == 3
    got = store.judge_votes("s")
    assert list(got.columns) == list(JUDGE_VOTE_COLUMNS) and len(got) == 3
    got = got.sort_values("prompt_id")
    assert got.winner.tolist() == ["a", "b", "tie"]
    assert got.seed.tolist() == [0, 1, 2] and set(got.judge) == {JUDGE} and set(got.suite) == {"s"}
    assert got.forward.tolist() == ["fwd0", "fwd1", "fwd2"] and got.created_at.notna().all()
    assert got.vote_id.iloc[0] == judge_vote_id(JUDGE, "visual quality", "r1", "p0-s0", "r2", "p0-s0")
    # Another criterion, another judge, another suite's runs: separate rows, filtered on read.
    store.record_judge_votes(votes, suite="s", judge=JUDGE, criterion="motion")
    store.record_judge_votes(votes, suite="s", judge="other-judge", criterion="motion")
    store.record_judge_votes(_votes(run_a="t1", run_b="t2"), suite="t", judge=JUDGE, criterion="visual quality")
    assert len(store.judge_votes("s")) == 9
    assert len(store.judge_votes("s", "motion")) == 6 and len(store.judge_votes("s", "visual quality")) == 3
    assert len(store.judge_votes("t")) == 3 and store.judge_votes("nope").empty


def test_the_same_pair_named_the_other_way_round_replaces_with_the_winner_flipped(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    store.record_judge_votes(_votes(("a", "b", "tie")), suite="s", judge=JUDGE, criterion="c")
    # `judge compare r2 r1`: b is now r1's clip; r1 lost p0 this time and won p1.
    swapped = _votes(("a", "b", "tie"), run_a="r2", run_b="r1")
    assert store.record_judge_votes(swapped, suite="s", judge=JUDGE, criterion="c") == 3
    got = store.judge_votes("s").sort_values("prompt_id")
    assert len(got) == 3  # replaced, not duplicated
    assert got.run_a.tolist() == ["r1"] * 3 and got.model_a.tolist() == ["m-r1"] * 3
    assert got.winner.tolist() == ["b", "a", "tie"]  # r2 won p0 (its 'a'), so in r1-first order 'b' won
    # "forward" is always the call with the stored a first: r1 first was the swapped run's backward call.
    assert got.forward.tolist() == ["bwd0", "bwd1", "bwd2"]


def test_a_failed_call_is_stored_as_null_and_a_rerun_fills_it(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    store.record_judge_votes(_votes((None, float("nan"), "a")), suite="s", judge=JUDGE, criterion="c")
    got = store.judge_votes("s").sort_values("prompt_id")
    assert got.winner.isna().tolist() == [True, True, False]
    store.record_judge_votes(_votes(("b", "tie", "a")), suite="s", judge=JUDGE, criterion="c")
    assert store.judge_votes("s").sort_values("prompt_id").winner.tolist() == ["b", "tie", "a"]


def test_bad_votes_are_refused_with_one_line_and_nothing_written(tmp_path):
    store = Store(tmp_path / "db.duckdb")
    with pytest.raises(StoreError, match="winner must be 'a', 'b', 'tie'"):
        store.record_judge_votes(_votes(("a", "left")), suite="s", judge=JUDGE, criterion="c")
    with pytest.raises(StoreError, match="lack the column.*model_b"):
        store.record_judge_votes(_votes().drop(columns=["model_b"]), suite="s", judge=JUDGE, criterion="c")
    assert store.judge_votes("s").empty  # the first row of the refused batch was not kept


def test_a_schema_4_file_reads_as_no_votes_and_upgrades_keeping_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = old_schema_db(path, 4)
    con.execute("INSERT INTO arena_votes VALUES ('v1', 's', 'p0', 0, 'r1', 'p0-s0', 'm1', 'r2', 'p0-s0', 'm2', "
                "'a', 'me', now())")
    con.close()
    old = Store(path, read_only=True).judge_votes("s")
    assert old.empty and list(old.columns) == list(JUDGE_VOTE_COLUMNS)
    store = Store(path)  # writable: migrated
    assert store.schema_version() == 5 and store.votes("s").winner.tolist() == ["a"]
    store.record_judge_votes(_votes(("a",)), suite="s", judge=JUDGE, criterion="c")
    assert store.judge_votes("s").winner.tolist() == ["a"]


def test_load_frames_fills_the_table(tmp_path):
    """A synthetic database (benchmarks, the dashboard's tests) can load judge votes like any table."""
    store = Store(tmp_path / "db.duckdb")
    row = {c: None for c in JUDGE_VOTE_COLUMNS}
    row.update(vote_id="x", suite="s", judge=JUDGE, criterion="c", prompt_id="p", seed=1, run_a="r1",
               sample_a="p-s1", model_a="m1", run_b="r2", sample_b="p-s1", model_b="m2", winner="tie",
               created_at=pd.Timestamp("2026-01-01"))
    store.load_frames({"judge_votes": pd.DataFrame([row])})
    assert store.judge_votes("s").winner.tolist() == ["tie"]

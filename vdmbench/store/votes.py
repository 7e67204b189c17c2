"""Queries on `arena_votes` (schema 2), the dashboard's blind pairwise human votes, and on
`judge_votes` (schema 5), a VLM judge's pairwise verdicts on the same kind of clip pairs."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping

import pandas as pd

from vdmbench.core.errors import StoreError
from vdmbench.store.engine import Connection, insert_rows

VOTE_COLUMNS = ("vote_id", "suite", "prompt_id", "seed", "run_a", "sample_a", "model_a", "run_b", "sample_b",
                "model_b", "winner", "voter")


def record(con: Connection, vote: Mapping[str, object]) -> None:
    con.execute(
        f"""INSERT INTO arena_votes ({', '.join(VOTE_COLUMNS)}, created_at)
           VALUES ({', '.join('?' * len(VOTE_COLUMNS))}, now())""",
        [vote.get(c) for c in VOTE_COLUMNS],
    )


def of_suite(con: Connection, suite: str) -> pd.DataFrame:
    return con.execute(
        "SELECT model_a, model_b, winner, prompt_id, seed, voter, created_at FROM arena_votes WHERE suite = ? "
        "ORDER BY created_at",
        [suite],
    ).df()


# -- judge votes ---------------------------------------------------------------------------------
JUDGE_VOTE_COLUMNS = ("vote_id", "suite", "judge", "criterion", "prompt_id", "seed", "run_a", "sample_a", "model_a",
                      "run_b", "sample_b", "model_b", "winner", "forward", "backward", "created_at")
_REQUIRED = ("prompt_id", "seed", "run_a", "sample_a", "model_a", "run_b", "sample_b", "model_b", "winner")
_FLIP = {"a": "b", "b": "a", "tie": "tie", None: None}


def judge_vote_id(judge: str, criterion: str, run_a: str, sample_a: str, run_b: str, sample_b: str) -> str:
    """Deterministic id of one judged pair: the same judge, criterion and two clips give the same id
    whichever clip came first, so a rerun (or the runs named the other way round) replaces, never
    duplicates. Run ids are part of it because sample ids repeat across runs (prompt-seed)."""
    first, second = sorted([(run_a, sample_a), (run_b, sample_b)])
    text = json.dumps([judge, criterion, *first, *second])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _judge_row(vote: Mapping[str, object], suite: str, judge: str, criterion: str) -> list[object]:
    side_a = (str(vote["run_a"]), str(vote["sample_a"]), str(vote["model_a"]))
    side_b = (str(vote["run_b"]), str(vote["sample_b"]), str(vote["model_b"]))
    winner, forward, backward = _text(vote["winner"]), _text(vote.get("forward")), _text(vote.get("backward"))
    if winner not in _FLIP:
        raise StoreError(f"judge vote winner must be 'a', 'b', 'tie' or empty (a failed call), got {winner!r}")
    if (side_b[0], side_b[1]) < (side_a[0], side_a[1]):
        # Stored in one order: a is the clip that sorts first; "forward" stays "a shown first".
        side_a, side_b = side_b, side_a
        winner, forward, backward = _FLIP[winner], backward, forward
    vote_id = judge_vote_id(judge, criterion, side_a[0], side_a[1], side_b[0], side_b[1])
    seed = int(str(vote["seed"]))  # a numpy or Python integer, or its text
    return [vote_id, suite, judge, criterion, str(vote["prompt_id"]), seed, *side_a, *side_b, winner, forward, backward]


def record_judge(con: Connection, votes: pd.DataFrame, suite: str, judge: str, criterion: str) -> int:
    """INSERT OR REPLACE one row per vote (see judge_vote_id); returns the number of pairs written."""
    missing = [c for c in _REQUIRED if c not in votes.columns]
    if missing:
        raise StoreError(f"judge votes lack the column(s) {', '.join(missing)} (compare_runs gives them)")
    rows = {}
    for vote in votes.to_dict("records"):
        row = _judge_row(vote, suite, judge, criterion)
        rows[row[0]] = row  # a pair repeated in the input: the last verdict wins
    insert_rows(con, f"INSERT OR REPLACE INTO judge_votes ({', '.join(JUDGE_VOTE_COLUMNS)}) VALUES",
                f"({', '.join('?' * (len(JUDGE_VOTE_COLUMNS) - 1))}, now())", list(rows.values()))
    return len(rows)


def judge_of_suite(con: Connection, suite: str, criterion: str | None) -> pd.DataFrame:
    return con.execute(
        f"SELECT {', '.join(JUDGE_VOTE_COLUMNS)} FROM judge_votes WHERE suite = ? AND (? IS NULL OR criterion = ?) "
        "ORDER BY created_at, vote_id",
        [suite, criterion, criterion],
    ).df()

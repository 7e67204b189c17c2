"""Queries on `arena_votes` (schema 2): the dashboard's blind pairwise votes."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from vdmbench.store.engine import Connection

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

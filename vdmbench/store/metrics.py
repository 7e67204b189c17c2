"""Queries on `run_metrics`: record, read per run, the leaderboard and the history over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from vdmbench.store.engine import Connection, insert_rows
from vdmbench.store.records import LeaderboardRow, MetricRow, json_object, to_json
from vdmbench.store.runs import NOT_SHARD

_COLUMNS = "run_id, metric, value, ci_low, ci_high, n, details"


def record(con: Connection, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """One row per metric (a repeated metric: the last one wins), details as JSON."""
    insert_rows(con, "INSERT OR REPLACE INTO run_metrics VALUES", "(?, ?, ?, ?, ?, ?, ?)", list({
        r["metric"]: [run_id, r["metric"], r.get("value"), r.get("ci_low"), r.get("ci_high"), r.get("n"),
                      to_json(r.get("details", {}))] for r in rows}.values()))


def of_run(con: Connection, run_id: str) -> list[MetricRow]:
    found = con.execute(f"SELECT {_COLUMNS} FROM run_metrics WHERE run_id = ? ORDER BY metric", [run_id]).fetchall()
    return [MetricRow.from_row(r) for r in found]


def leaderboard(con: Connection, suite: str | None) -> list[LeaderboardRow]:
    found = con.execute(
        """WITH latest AS (
             SELECT * FROM (
               SELECT r.*, row_number() OVER (PARTITION BY suite, model ORDER BY finished_at DESC) AS rn
               FROM runs r WHERE status = 'finished' AND shard IS NULL AND (? IS NULL OR suite = ?))
             WHERE rn = 1)
           SELECT l.suite, l.suite_version, l.model, l.run_id, l.finished_at,
                  m.metric, m.value, m.ci_low, m.ci_high, m.n, m.details
           FROM latest l JOIN run_metrics m USING (run_id)
           ORDER BY l.suite, l.model, m.metric""",
        [suite, suite],
    ).fetchall()
    return [LeaderboardRow.from_row(r) for r in found]


# -- tables (DataFrames) -----------------------------------------------------------------------
def table(con: Connection, run_ids: Sequence[str]) -> pd.DataFrame:
    df = con.execute(
        f"SELECT {_COLUMNS} FROM run_metrics WHERE list_contains(?, run_id) ORDER BY run_id, metric",
        [list(run_ids)],
    ).df()
    df["details"] = [json_object(d) for d in df.details]
    return df


def history(con: Connection, suite: str, version: int | None, since: datetime | None,
            until: datetime | None) -> pd.DataFrame:
    return con.execute(
        f"""SELECT r.run_id, r.model, r.finished_at, r.git_sha, m.metric, m.value, m.ci_low, m.ci_high
           FROM runs r JOIN run_metrics m USING (run_id)
           WHERE r.status = 'finished' AND {NOT_SHARD} AND r.suite = ?
             AND (? IS NULL OR r.suite_version = ?)
             AND (? IS NULL OR r.finished_at >= ?) AND (? IS NULL OR r.finished_at < ?)
           ORDER BY r.finished_at""",
        [suite, version, version, since, since, until, until],
    ).df()


def stored(con: Connection, run_id: str) -> pd.DataFrame:
    """The run's metric rows as stored (details as its JSON text)."""
    return con.execute("SELECT * FROM run_metrics WHERE run_id = ? ORDER BY metric", [run_id]).df()

"""Queries on `runs`: create, status, look up (by id or unique prefix), resume, merge, list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from vdmbench.core.errors import StoreError
from vdmbench.store.engine import Connection
from vdmbench.store.records import RunRecord, to_json

_JSON_COLUMNS = ("model_config", "env", "suite_config")
_WRITTEN = ("run_id", "suite", "suite_version", "suite_hash", "model", "model_config", "config_hash",
            "status", "started_at", "git_sha", "env", "shard", "suite_config")
_SELECT = f"SELECT {', '.join(RunRecord.columns())} FROM runs"

# Shards are merged into a normal run; the pieces themselves are not results to rank.
NOT_SHARD = "r.shard IS NULL"


def create_run(con: Connection, run: Mapping[str, Any]) -> None:
    values = [to_json(run[c]) if c in _JSON_COLUMNS else run.get(c) for c in _WRITTEN]
    con.execute(f"INSERT INTO runs ({', '.join(_WRITTEN)}) VALUES ({', '.join('?' * len(_WRITTEN))})", values)


def set_status(con: Connection, run_id: str, status: str, *, finished: bool = False) -> None:
    if finished:
        con.execute("UPDATE runs SET status = ?, finished_at = now() WHERE run_id = ?", [status, run_id])
    else:
        con.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])


def status(con: Connection, run_id: str) -> str | None:
    row = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return row[0] if row else None


def resumable(con: Connection, suite_hash: str, config_hash: str, shard: str | None) -> list[str]:
    rows = con.execute(
        """SELECT run_id FROM runs WHERE suite_hash = ? AND config_hash = ?
           AND shard IS NOT DISTINCT FROM ? AND status NOT IN ('finished', 'merging')
           ORDER BY started_at DESC, run_id DESC""",
        [suite_hash, config_hash, shard],
    ).fetchall()
    return [r[0] for r in rows]


def get(con: Connection, run_id: str, where: str) -> RunRecord:
    """The run with this id, or the only one whose id starts with it (like git)."""
    rows = con.execute(f"{_SELECT} WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        rows = con.execute(f"{_SELECT} WHERE starts_with(run_id, ?)", [run_id]).fetchall()
        if len(rows) > 1:
            raise StoreError(f"run id prefix {run_id!r} is ambiguous ({len(rows)} runs); give more characters")
    if not rows:
        raise StoreError(f"no run {run_id!r} in {where}; `vdmbench list runs` shows them")
    return RunRecord.from_row(rows[0])


def finished_shards(con: Connection) -> list[RunRecord]:
    rows = con.execute(f"{_SELECT} WHERE shard IS NOT NULL AND status = 'finished' ORDER BY started_at DESC").fetchall()
    return [RunRecord.from_row(r) for r in rows]


def merging_leftovers(con: Connection, suite_hash: str, config_hash: str) -> list[str]:
    """Runs left in state 'merging' (by a merge that was killed) of this suite and model config."""
    rows = con.execute("SELECT run_id FROM runs WHERE status = 'merging' AND suite_hash = ? AND config_hash = ?",
                       [suite_hash, config_hash]).fetchall()
    return [r[0] for r in rows]


def delete(con: Connection, run_ids: Sequence[str]) -> None:
    """Remove runs with their samples and values (a killed merge's leftovers)."""
    for table in ("run_metrics", "sample_metrics", "samples", "runs"):
        con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [list(run_ids)])


def copy_shards(con: Connection, merged_id: str, template_id: str, shard_ids: Sequence[str]) -> None:
    """A new run `merged_id` (status 'merging', no shard) like `template_id`, holding the samples
    and per-sample values of every run in `shard_ids`."""
    con.execute(
        """INSERT INTO runs SELECT ? AS run_id, suite, suite_version, suite_hash, model, model_config,
                  config_hash, 'merging', started_at, NULL, git_sha, env, NULL AS shard, suite_config
           FROM runs WHERE run_id = ?""",
        [merged_id, template_id],
    )
    con.execute(
        """INSERT INTO samples SELECT ? AS run_id, * EXCLUDE (run_id) FROM samples
           WHERE list_contains(?, run_id)""",
        [merged_id, list(shard_ids)],
    )
    con.execute(
        """INSERT INTO sample_metrics SELECT ? AS run_id, * EXCLUDE (run_id) FROM sample_metrics
           WHERE list_contains(?, run_id)""",
        [merged_id, list(shard_ids)],
    )


def sample_counts(con: Connection, run_id: str) -> tuple[int, int]:
    row = con.execute(
        """SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'failed')
           FROM samples WHERE run_id = ?""", [run_id]).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def count(con: Connection) -> int:
    row = con.execute("SELECT count(*) FROM runs").fetchone()
    return int(row[0]) if row else 0


# -- tables (DataFrames) -----------------------------------------------------------------------
def listing(con: Connection) -> pd.DataFrame:
    return con.execute(
        """SELECT r.run_id, r.suite, r.model, r.status, r.shard, r.started_at, r.finished_at,
                  count(s.sample_id) AS samples,
                  count(s.sample_id) FILTER (WHERE s.status = 'failed') AS failed
           FROM runs r LEFT JOIN samples s USING (run_id)
           GROUP BY ALL ORDER BY r.started_at DESC"""
    ).df()


def suites(con: Connection) -> pd.DataFrame:
    return con.execute(
        f"""WITH task_of AS (SELECT run_id, any_value(task) AS task FROM samples GROUP BY run_id)
           SELECT r.suite, r.suite_version,
                  coalesce(any_value(json_extract_string(r.suite_config, '$.task')), any_value(t.task)) AS task,
                  count(*) AS runs, count(DISTINCT r.model) AS models,
                  min(r.finished_at) AS first_finished, max(r.finished_at) AS last_finished
           FROM runs r LEFT JOIN task_of t USING (run_id)
           WHERE r.status = 'finished' AND {NOT_SHARD}
           GROUP BY r.suite, r.suite_version ORDER BY r.suite, r.suite_version DESC"""
    ).df()


def table(con: Connection, suite: str | None, version: int | None, since: datetime | None,
          until: datetime | None, finished_only: bool) -> pd.DataFrame:
    return con.execute(
        f"""SELECT r.run_id, r.suite, r.suite_version, r.model, r.status, r.started_at,
                  r.finished_at, r.git_sha, count(s.sample_id) AS samples,
                  count(s.sample_id) FILTER (WHERE s.status = 'failed') AS failed
           FROM runs r LEFT JOIN samples s USING (run_id)
           WHERE {NOT_SHARD} AND (? IS NULL OR r.suite = ?) AND (? IS NULL OR r.suite_version = ?)
             AND (? IS NULL OR r.finished_at >= ?) AND (? IS NULL OR r.finished_at < ?)
             AND (NOT ? OR r.status = 'finished')
           GROUP BY ALL ORDER BY r.finished_at DESC NULLS LAST, r.started_at DESC, r.run_id DESC""",
        [suite, suite, version, version, since, since, until, until, finished_only],
    ).df()


def all_runs(con: Connection) -> pd.DataFrame:
    return con.execute(
        """SELECT run_id, suite, suite_version, model, status, shard, started_at, finished_at
           FROM runs ORDER BY started_at DESC, run_id DESC"""
    ).df()

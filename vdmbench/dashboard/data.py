"""Read-only queries for the dashboard.

Every function takes a read-only `Store` (short-lived connections, busy retry), so the app keeps
working while a run writes to the same file. Results are plain DataFrames; the pages cache them
keyed on `db_token`, which changes whenever the file (or its write-ahead log) changes.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from vdmbench.store.database import Store

# Shards are merged into a normal run; the pieces themselves are not results to rank.
_NOT_SHARD = "r.shard IS NULL"


def open_store(db_path: str | Path, busy_timeout: float = 10.0) -> Store | None:
    """A read-only Store, or None when there is no database file yet."""
    path = Path(db_path)
    if not path.is_file():
        return None
    return Store(path, read_only=True, busy_timeout=busy_timeout)


def db_token(db_path: str | Path) -> tuple[int, int, int, int]:
    """Changes whenever the database (or its WAL) is written: the cache key for loaded data."""
    out: list[int] = []
    for p in (Path(db_path), Path(str(db_path) + ".wal")):
        try:
            st = os.stat(p)
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)  # type: ignore[return-value]


def has_table(store: Store, table: str) -> bool:
    df = store.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [table])
    return bool(df.n.iloc[0])


def count_runs(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM runs").n.iloc[0])


def suites(store: Store) -> pd.DataFrame:
    """One row per (suite, version) with finished runs: task, run and model counts."""
    return store.query(
        f"""WITH task_of AS (SELECT run_id, any_value(task) AS task FROM samples GROUP BY run_id)
           SELECT r.suite, r.suite_version,
                  coalesce(any_value(json_extract_string(r.suite_config, '$.task')), any_value(t.task)) AS task,
                  count(*) AS runs, count(DISTINCT r.model) AS models,
                  min(r.finished_at) AS first_finished, max(r.finished_at) AS last_finished
           FROM runs r LEFT JOIN task_of t USING (run_id)
           WHERE r.status = 'finished' AND {_NOT_SHARD}
           GROUP BY r.suite, r.suite_version ORDER BY r.suite, r.suite_version DESC"""
    )


def runs(
    store: Store,
    suite: str | None = None,
    version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    finished_only: bool = True,
) -> pd.DataFrame:
    """Runs with their sample counts, newest first."""
    return store.query(
        f"""SELECT r.run_id, r.suite, r.suite_version, r.model, r.status, r.started_at,
                  r.finished_at, r.git_sha, count(s.sample_id) AS samples,
                  count(s.sample_id) FILTER (WHERE s.status = 'failed') AS failed
           FROM runs r LEFT JOIN samples s USING (run_id)
           WHERE {_NOT_SHARD} AND (? IS NULL OR r.suite = ?) AND (? IS NULL OR r.suite_version = ?)
             AND (? IS NULL OR r.finished_at >= ?) AND (? IS NULL OR r.finished_at < ?)
             AND (NOT ? OR r.status = 'finished')
           GROUP BY ALL ORDER BY r.finished_at DESC NULLS LAST, r.started_at DESC, r.run_id DESC""",
        [suite, suite, version, version, since, since, until, until, finished_only],
    )


def all_runs(store: Store) -> pd.DataFrame:
    """Every run, shards and unfinished ones included (for the drill-down)."""
    return store.query(
        """SELECT run_id, suite, suite_version, model, status, shard, started_at, finished_at
           FROM runs ORDER BY started_at DESC, run_id DESC"""
    )


def latest_runs(
    store: Store, suite: str, version: int | None, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The newest finished run of each model on the suite (within the date range)."""
    df = runs(store, suite, version, since, until)
    return df.drop_duplicates("model", keep="first").reset_index(drop=True)


def _parse_details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return raw or {}


def run_metrics(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Run-level metric rows, with the direction / comparability flags lifted out of `details`."""
    df = store.query(
        """SELECT run_id, metric, value, ci_low, ci_high, n, details FROM run_metrics
           WHERE list_contains(?, run_id) ORDER BY run_id, metric""",
        [list(run_ids)],
    )
    details = [_parse_details(d) for d in df.details]
    df["higher_is_better"] = [d.get("higher_is_better") for d in details]
    df["comparable"] = [d.get("comparable", True) is not False for d in details]
    df["per_sample"] = [bool(d.get("per_sample", False)) for d in details]
    return df.drop(columns="details")


def sample_values(store: Store, run_ids: Sequence[str], tags: Sequence[str] = ()) -> pd.DataFrame:
    """Per-sample metric values of successful samples, optionally only samples with any of `tags`."""
    sql = """SELECT s.run_id, s.sample_id, s.prompt_id, s.prompt, s.seed, m.metric, m.value
             FROM sample_metrics m JOIN samples s USING (run_id, sample_id)
             WHERE list_contains(?, s.run_id) AND s.status = 'ok'"""
    params: list[Any] = [list(run_ids)]
    if tags:
        sql += " AND len(list_intersect(from_json(s.tags, '[\"VARCHAR\"]'), ?)) > 0"
        params.append(list(tags))
    return store.query(sql + " ORDER BY s.run_id, s.sample_id, m.metric", params)


def sample_tags(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """(run_id, sample_id, tag) rows, one per tag of each successful sample."""
    return store.query(
        """SELECT run_id, sample_id, unnest(from_json(tags, '["VARCHAR"]')) AS tag
           FROM samples WHERE list_contains(?, run_id) AND status = 'ok'""",
        [list(run_ids)],
    )


def tags(store: Store, suite: str, version: int | None) -> list[str]:
    df = store.query(
        """SELECT DISTINCT t FROM (
             SELECT unnest(from_json(s.tags, '["VARCHAR"]')) AS t
             FROM samples s JOIN runs r USING (run_id)
             WHERE r.suite = ? AND (? IS NULL OR r.suite_version = ?)) ORDER BY t""",
        [suite, version, version],
    )
    return [t for t in df.t if t]


def samples(store: Store, run_id: str) -> pd.DataFrame:
    return store.query(
        """SELECT sample_id, prompt_id, prompt, seed, task, status, error, gen_seconds, path,
                  preview_path, tags, notes FROM samples WHERE run_id = ? ORDER BY sample_id""",
        [run_id],
    )


def samples_of(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Sample rows (paths included) of several runs, for side-by-side videos."""
    return store.query(
        """SELECT run_id, sample_id, prompt_id, prompt, seed, status, error, path, preview_path
           FROM samples WHERE list_contains(?, run_id)""",
        [list(run_ids)],
    )


def sample_metric_values(store: Store, run_id: str, sample_id: str) -> pd.DataFrame:
    return store.query(
        "SELECT metric, value FROM sample_metrics WHERE run_id = ? AND sample_id = ? ORDER BY metric",
        [run_id, sample_id],
    )


def history(store: Store, suite: str, version: int | None, since: datetime | None = None,
            until: datetime | None = None) -> pd.DataFrame:
    """Every finished run's metric values over time: the regression history per model."""
    return store.query(
        f"""SELECT r.run_id, r.model, r.finished_at, r.git_sha, m.metric, m.value, m.ci_low, m.ci_high
           FROM runs r JOIN run_metrics m USING (run_id)
           WHERE r.status = 'finished' AND {_NOT_SHARD} AND r.suite = ?
             AND (? IS NULL OR r.suite_version = ?)
             AND (? IS NULL OR r.finished_at >= ?) AND (? IS NULL OR r.finished_at < ?)
           ORDER BY r.finished_at""",
        [suite, version, version, since, since, until, until],
    )

"""Read-only queries for the dashboard.

Every function takes a read-only `Store` (short-lived connections, busy retry), so the app keeps
working while a run writes to the same file; the SQL is the store's. Results are plain DataFrames;
the pages cache them keyed on `db_token`, which changes whenever the file (or its write-ahead log)
changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from vdmbench.dashboard.groups import planned_samples
from vdmbench.store import Store, dashboard_reads

# A page waits this long for a file another process is writing, then shows the last data it read.
READ_BUSY_TIMEOUT = 2.0


def open_store(db_path: str | Path, busy_timeout: float = READ_BUSY_TIMEOUT) -> Store | None:
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
    return store.has_table(table)


def count_runs(store: Store) -> int:
    return store.count_runs()


def suites(store: Store) -> pd.DataFrame:
    """One row per (suite, version) with finished runs: task, run and model counts."""
    return store.suite_table()


def runs(
    store: Store,
    suite: str | None = None,
    version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    finished_only: bool = True,
) -> pd.DataFrame:
    """Runs with their sample counts, newest first (shards are merged into a normal run; the pieces
    themselves are not results to rank)."""
    return store.run_table(suite, version, since, until, finished_only)


def all_runs(store: Store) -> pd.DataFrame:
    """Every run, shards and unfinished ones included (for the drill-down)."""
    return store.all_runs_table()


def run_settings(store: Store, suite: str, version: int | None) -> pd.DataFrame:
    """run_id, suite_hash, config_hash, suite_config of the suite's finished runs (like-for-like)."""
    return dashboard_reads.run_settings(store, suite, version)


def latest_runs(
    store: Store, suite: str, version: int | None, since: datetime | None = None, until: datetime | None = None,
    suite_hash: str | None = None,
) -> pd.DataFrame:
    """The newest finished run of each model among the runs with these effective settings
    (`suite_hash`; None: any), within the date range, with `planned` samples and `coverage`
    (ok / planned). Runs with other settings never replace each other (see groups.py)."""
    df = runs(store, suite, version, since, until)
    settings = run_settings(store, suite, version)
    if suite_hash is not None:
        df = df[df.run_id.isin(set(settings.run_id[settings.suite_hash == suite_hash]))]
    df = df.drop_duplicates("model", keep="first").reset_index(drop=True)
    planned = {r: planned_samples(c) for r, c in zip(settings.run_id, settings.suite_config)}
    df["planned"] = [planned.get(r) or n for r, n in zip(df.run_id, df.samples)]
    ok = df.samples - df.failed
    df["ok"] = ok
    # Unknown when nothing says what was planned (a run imported without sample rows): not penalized.
    df["coverage"] = [min(1.0, o / p) if p else float("nan") for o, p in zip(ok, df.planned)]
    prompts = dashboard_reads.ok_prompt_counts(store, list(df.run_id)).set_index("run_id").prompts
    df["prompts"] = [int(prompts.get(r, 0)) for r in df.run_id]
    return df


def run_metrics(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Run-level metric rows, with the direction / comparability flags lifted out of `details`."""
    df = store.run_metric_table(run_ids)
    details = list(df.details)
    df["higher_is_better"] = [d.get("higher_is_better") for d in details]
    df["comparable"] = [d.get("comparable", True) is not False for d in details]
    df["per_sample"] = [bool(d.get("per_sample", False)) for d in details]
    df["derived"] = [bool(d.get("derived", False)) for d in details]
    return df.drop(columns="details")


def sample_values(store: Store, run_ids: Sequence[str], tags: Sequence[str] = ()) -> pd.DataFrame:
    """Per-sample metric values of successful samples, optionally only samples with any of `tags`."""
    return store.sample_value_table(run_ids, tags)


def sample_tags(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """(run_id, sample_id, tag) rows, one per tag of each successful sample."""
    return store.sample_tag_table(run_ids)


def tags(store: Store, suite: str, version: int | None) -> list[str]:
    return store.suite_tags(suite, version)


def samples(store: Store, run_id: str) -> pd.DataFrame:
    """The run's samples; `tags` holds a tuple of tags, `notes` the adapter's notes (a dict) or None."""
    return store.sample_table(run_id)


def samples_of(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Sample rows (paths included) of several runs, for side-by-side videos."""
    return store.sample_files(run_ids)


def sample_metric_values(store: Store, run_id: str, sample_id: str) -> pd.DataFrame:
    return store.sample_metric_table(run_id, sample_id)


def history(store: Store, suite: str, version: int | None, since: datetime | None = None,
            until: datetime | None = None) -> pd.DataFrame:
    """Every finished run's metric values over time: the regression history per model."""
    return store.metric_history(suite, version, since, until)

"""Read-only questions the leaderboard asks that the Store façade does not: whether a file is one
this version can show (never migrating it), and each run's effective settings (for like-for-like
groups). Everything here opens the file read-only; nothing writes or migrates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vdmbench.core.errors import StoreError
from vdmbench.store.database import Store
from vdmbench.store.records import json_object
from vdmbench.store.runs import NOT_SHARD
from vdmbench.store.schema import SCHEMA_VERSION, has_table


def unusable_reason(path: str | Path, busy_timeout: float = 2.0) -> str | None:
    """One line saying why the dashboard cannot show this file, or None when it can.

    Zero-byte, non-DuckDB, damaged, newer-schema files and older-schema files that lack a column
    the pages read (never migrated here) each get their own line; an older file whose only missing
    pieces are newer optional tables (schema 4 before judge_votes) is shown as it is; a missing file is not this function's business (None). A file busy
    with another writer raises the store's StoreError ("database busy")."""
    p = Path(path)
    if not p.is_file():
        return None
    if p.stat().st_size == 0:
        return (f"{p}: the file is empty (0 bytes), not a results database; move it aside, or start the "
                "app with --db pointing at a results database")
    try:
        store = Store(p, read_only=True, busy_timeout=busy_timeout)
        version = store.schema_version() if store.has_table("schema_version") else 0
    except StoreError as e:
        if "database busy" in str(e):
            raise  # not a property of the file: the caller shows what it read last
        return str(e).splitlines()[0]
    if version > SCHEMA_VERSION:
        return (f"{p}: written by a newer vdmbench (schema {version}, this version reads {SCHEMA_VERSION}); "
                "upgrade vdmbench to see it")
    if version < SCHEMA_VERSION:
        missing = missing_columns(store)
        if not missing:
            return None  # only newer optional tables are missing (e.g. judge_votes): shown as empty
        return (f"{p}: written by an older vdmbench (schema {version}, this version reads {SCHEMA_VERSION}; "
                f"it lacks {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); the dashboard never "
                "migrates a file: keep a copy, then upgrade it by running any writing vdmbench command on it "
                "(e.g. a run with db=" + str(p) + ")")
    return None


# What the pages read, at the current schema. Tables not named here are optional: a file without
# them (arena_votes before schema 2, judge_votes before schema 5) shows them empty.
DASHBOARD_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id", "suite", "suite_version", "suite_hash", "model", "model_config", "config_hash", "status",
             "started_at", "finished_at", "git_sha", "env", "shard", "suite_config"),
    "samples": ("run_id", "sample_id", "prompt_id", "prompt", "seed", "task", "path", "sha256", "gen_seconds",
                "status", "error", "preview_path", "tags", "created_at", "notes"),
    "sample_metrics": ("run_id", "sample_id", "metric", "value"),
    "run_metrics": ("run_id", "metric", "value", "ci_low", "ci_high", "n", "details"),
}


def missing_columns(store: Store) -> list[str]:
    """`table.column` the dashboard reads that this file lacks (empty: it can be shown as it is)."""
    with store._connect() as con:
        rows = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = current_database()"
        ).fetchall()
    have = {(t, c) for t, c in rows}
    return [f"{t}.{c}" for t, cols in DASHBOARD_COLUMNS.items() for c in cols if (t, c) not in have]


def schema_version(path: str | Path, busy_timeout: float = 2.0) -> int:
    """The file's schema version, read-only (0 for a file without schema_version)."""
    store = Store(path, read_only=True, busy_timeout=busy_timeout)
    return store.schema_version() if store.has_table("schema_version") else 0


def run_settings(store: Store, suite: str, version: int | None) -> pd.DataFrame:
    """Finished non-shard runs of a suite (version) with what defines like-for-like: run_id,
    suite_hash, config_hash, suite_config (the effective suite as a dict, overrides applied)."""
    with store._connect() as con:
        df = con.execute(
            f"""SELECT r.run_id, r.suite_hash, r.config_hash, r.suite_config FROM runs r
                WHERE {NOT_SHARD} AND r.status = 'finished' AND r.suite = ?
                  AND (? IS NULL OR r.suite_version = ?)""",
            [suite, version, version],
        ).df()
    df["suite_config"] = [json_object(raw) for raw in df.suite_config]
    return df


def ok_prompt_counts(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """run_id, prompts: distinct prompts with a successful sample (the CI's bootstrap units)."""
    with store._connect() as con:
        return con.execute(
            """SELECT run_id, count(DISTINCT prompt_id) FILTER (WHERE status = 'ok') AS prompts
               FROM samples WHERE list_contains(?, run_id) GROUP BY run_id""",
            [list(run_ids)],
        ).df()


def has_vote(store: Store, vote_id: str) -> bool:
    """Whether an arena vote with this id is stored (a queued vote is then not written again)."""
    with store._connect() as con:
        if not has_table(con, "arena_votes"):
            return False
        row = con.execute("SELECT count(*) FROM arena_votes WHERE vote_id = ?", [vote_id]).fetchone()
        return bool(row and row[0])


def sample_hashes(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """run_id, sample_id, sha256 of the runs' ok samples (the Arena never pairs identical files)."""
    with store._connect() as con:
        return con.execute(
            """SELECT run_id, sample_id, sha256 FROM samples
               WHERE list_contains(?, run_id) AND status = 'ok'""",
            [list(run_ids)],
        ).df()


def vote_clips(store: Store, suite: str) -> pd.DataFrame:
    """The arena votes on a suite with the clips they compared: vote_id, prompt_id, seed, run_a,
    sample_a, model_a, run_b, sample_b, model_b, winner (empty for a file without the table)."""
    cols = ["vote_id", "prompt_id", "seed", "run_a", "sample_a", "model_a", "run_b", "sample_b", "model_b", "winner"]
    with store._connect() as con:
        if not has_table(con, "arena_votes"):
            return pd.DataFrame(columns=cols)
        return con.execute(f"SELECT {', '.join(cols)} FROM arena_votes WHERE suite = ? ORDER BY created_at",
                           [suite]).df()

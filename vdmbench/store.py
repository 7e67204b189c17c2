"""The results database: one DuckDB file (default results/vdmbench.duckdb).

Every write is parameterized SQL inside a transaction. DuckDB lets only one process hold a file
open for writing, so connections are short-lived: each operation opens, works and closes, and a
busy file is retried with backoff before a clear "database busy" error. The dashboard opens the
file read-only the same way, so it can read between a run's writes.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd

from vdmbench.errors import StoreError

SCHEMA_VERSION = 2

# Each entry migrates from version i to i+1; append, never edit, so old files upgrade in order.
_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL, suite_version INTEGER,
            suite_hash VARCHAR NOT NULL, model VARCHAR NOT NULL, adapter_config JSON,
            config_hash VARCHAR NOT NULL, status VARCHAR NOT NULL, started_at TIMESTAMP,
            finished_at TIMESTAMP, git_sha VARCHAR, env JSON, shard VARCHAR, suite_config JSON)""",
        """CREATE TABLE IF NOT EXISTS samples (
            run_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL,
            prompt VARCHAR NOT NULL, seed BIGINT NOT NULL, task VARCHAR, path VARCHAR,
            sha256 VARCHAR, gen_seconds DOUBLE, status VARCHAR NOT NULL, error VARCHAR,
            cache_key VARCHAR, preview_path VARCHAR, tags JSON, created_at TIMESTAMP,
            PRIMARY KEY (run_id, sample_id))""",
        """CREATE TABLE IF NOT EXISTS sample_metrics (
            run_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            value DOUBLE, PRIMARY KEY (run_id, sample_id, metric))""",
        """CREATE TABLE IF NOT EXISTS run_metrics (
            run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, ci_low DOUBLE,
            ci_high DOUBLE, n INTEGER, details JSON, PRIMARY KEY (run_id, metric))""",
        """CREATE TABLE IF NOT EXISTS generations (
            cache_key VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
            gen_seconds DOUBLE, created_at TIMESTAMP)""",
    ],
    [
        # Arena: blind pairwise human votes between two clips of the same prompt and seed.
        # winner is 'a', 'b' or 'tie'; the dashboard is the only writer.
        """CREATE TABLE IF NOT EXISTS arena_votes (
            vote_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL,
            seed BIGINT NOT NULL, run_a VARCHAR NOT NULL, sample_a VARCHAR NOT NULL,
            model_a VARCHAR NOT NULL, run_b VARCHAR NOT NULL, sample_b VARCHAR NOT NULL,
            model_b VARCHAR NOT NULL, winner VARCHAR NOT NULL, voter VARCHAR,
            created_at TIMESTAMP)""",
    ],
]


@dataclass(frozen=True)
class SampleRecord:
    sample_id: str
    prompt_id: str
    prompt: str
    seed: int
    task: str
    status: str  # "ok" | "failed"
    path: str | None = None
    sha256: str | None = None
    gen_seconds: float | None = None
    error: str | None = None
    cache_key: str | None = None
    preview_path: str | None = None
    tags: tuple[str, ...] = ()


def _is_lock_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "lock" in msg or "conflicting" in msg or "being used by another" in msg


class Store:
    """Access to one results database file."""

    def __init__(self, path: str | Path, *, read_only: bool = False, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        if read_only:
            if not self.path.exists():
                raise StoreError(
                    f"{self.path}: no results database here yet; create one with "
                    "`vdmbench run suite=smoke model=reference-unet3d`"
                )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.connect() as con:
                self._migrate(con)

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.Error as e:
                if not _is_lock_error(e):
                    raise StoreError(f"{self.path}: cannot open the results database ({e})") from e
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: database busy (another process holds it for writing) for "
                        f"{self.busy_timeout:.0f} s; wait for it to finish or use another db=..."
                    ) from e
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer vdmbench (schema {current} > {SCHEMA_VERSION}); upgrade vdmbench"
            )
        for version in range(current, SCHEMA_VERSION):
            con.execute("BEGIN TRANSACTION")
            for stmt in _MIGRATIONS[version]:
                con.execute(stmt)
            con.execute("DELETE FROM schema_version")
            con.execute("INSERT INTO schema_version VALUES (?)", [version + 1])
            con.execute("COMMIT")

    def schema_version(self) -> int:
        with self.connect() as con:
            return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, run: dict[str, Any]) -> None:
        cols = ["run_id", "suite", "suite_version", "suite_hash", "model", "adapter_config",
                "config_hash", "status", "started_at", "git_sha", "env", "shard", "suite_config"]
        values = [json.dumps(run[c], default=str) if c in ("adapter_config", "env", "suite_config")
                  else run.get(c) for c in cols]
        with self.transaction() as con:
            con.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values
            )

    def set_run_status(self, run_id: str, status: str, *, finished: bool = False) -> None:
        with self.transaction() as con:
            if finished:
                con.execute(
                    "UPDATE runs SET status = ?, finished_at = now() WHERE run_id = ?", [status, run_id]
                )
            else:
                con.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])

    def resumable_runs(self, suite_hash: str, config_hash: str, shard: str | None) -> list[str]:
        """Unfinished runs with the same suite, adapter config and shard, newest first."""
        with self.connect() as con:
            rows = con.execute(
                """SELECT run_id FROM runs WHERE suite_hash = ? AND config_hash = ?
                   AND shard IS NOT DISTINCT FROM ? AND status <> 'finished'
                   ORDER BY started_at DESC, run_id DESC""",
                [suite_hash, config_hash, shard],
            ).fetchall()
        return [r[0] for r in rows]

    def get_run(self, run_id: str) -> dict[str, Any]:
        df = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if df.empty:
            # Allow unique prefixes, like git.
            df = self.query("SELECT * FROM runs WHERE starts_with(run_id, ?)", [run_id])
            if len(df) > 1:
                raise StoreError(f"run id prefix {run_id!r} is ambiguous ({len(df)} runs); give more characters")
        if df.empty:
            raise StoreError(f"no run {run_id!r} in {self.path}; `vdmbench list runs` shows them")
        row = df.iloc[0].to_dict()
        for k in ("adapter_config", "env", "suite_config"):
            if isinstance(row.get(k), str):
                row[k] = json.loads(row[k])
        return row

    # -- samples -----------------------------------------------------------------------------
    def done_sample_ids(self, run_id: str) -> set[str]:
        with self.connect() as con:
            rows = con.execute("SELECT sample_id FROM samples WHERE run_id = ?", [run_id]).fetchall()
        return {r[0] for r in rows}

    def record_samples(
        self,
        run_id: str,
        samples: Sequence[SampleRecord],
        metrics: dict[str, dict[str, float]],
        generations: Sequence[tuple[str, str, str, float]] = (),
    ) -> None:
        """Write samples, their metric values and the cache entries of newly generated clips
        (cache_key, path, sha256, gen_seconds) in one transaction: all or nothing, one connection."""
        with self.transaction() as con:
            for g in generations:
                con.execute("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, now())", list(g))
            for s in samples:
                con.execute(
                    """INSERT OR REPLACE INTO samples VALUES
                       (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())""",
                    [run_id, s.sample_id, s.prompt_id, s.prompt, s.seed, s.task, s.path, s.sha256,
                     s.gen_seconds, s.status, s.error, s.cache_key, s.preview_path, json.dumps(list(s.tags))],
                )
            for sample_id, values in metrics.items():
                for metric, value in values.items():
                    con.execute(
                        "INSERT OR REPLACE INTO sample_metrics VALUES (?, ?, ?, ?)",
                        [run_id, sample_id, metric, float(value)],
                    )

    def lookup_generations(self, cache_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not cache_keys:
            return {}
        with self.connect() as con:
            rows = con.execute(
                "SELECT cache_key, path, sha256, gen_seconds FROM generations WHERE list_contains(?, cache_key)",
                [list(cache_keys)],
            ).fetchall()
        return {r[0]: {"path": r[1], "sha256": r[2], "gen_seconds": r[3]} for r in rows}

    def record_run_metrics(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as con:
            for r in rows:
                con.execute(
                    "INSERT OR REPLACE INTO run_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, r["metric"], r.get("value"), r.get("ci_low"), r.get("ci_high"),
                     r.get("n"), json.dumps(r.get("details", {}), default=str)],
                )

    # -- queries -----------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a parameterized SELECT and return a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, list(params or [])).df()

    def sample_values(self, run_id: str) -> pd.DataFrame:
        """Long table of per-sample metric values with prompt and seed, for statistics."""
        return self.query(
            """SELECT s.sample_id, s.prompt_id, s.seed, m.metric, m.value
               FROM sample_metrics m JOIN samples s USING (run_id, sample_id)
               WHERE m.run_id = ? AND s.status = 'ok' ORDER BY s.sample_id, m.metric""",
            [run_id],
        )

    def leaderboard(self, suite: str | None = None) -> pd.DataFrame:
        """Latest finished run per (suite, model) with its run metrics, long format."""
        return self.query(
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
        )

    def runs(self) -> pd.DataFrame:
        return self.query(
            """SELECT r.run_id, r.suite, r.model, r.status, r.shard, r.started_at, r.finished_at,
                      count(s.sample_id) AS samples,
                      count(s.sample_id) FILTER (WHERE s.status = 'failed') AS failed
               FROM runs r LEFT JOIN samples s USING (run_id)
               GROUP BY ALL ORDER BY r.started_at DESC"""
        )

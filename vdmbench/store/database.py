"""The results database: one DuckDB file (default results/vdmbench.duckdb).

Every write is parameterized SQL inside a transaction. DuckDB lets only one process hold a file
open for writing, so access is short-lived: each operation (or a short `session()`) takes the file,
works and lets go, and a busy file is retried with backoff before a clear "database busy" error.
The dashboard opens the file read-only the same way, so it can read between a run's writes.

Taking the file: one in-memory DuckDB per process ATTACHes it for the operation and DETACHes it
after, which releases the file lock like closing a connection does. Opening a connection to the
file instead (duckdb.connect) builds DuckDB's whole catalog each time: ~11 ms per open against
<1 ms per attach, the bulk of a small write (measured: 16 ms vs 4.4 ms).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd

from vdmbench.core.errors import StoreError

SCHEMA_VERSION = 3

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
    [
        # What an adapter says about one clip beside the frames (e.g. the reference models' prompt
        # words read as <unk>), kept with the cached clip too so a cache hit carries it.
        "ALTER TABLE samples ADD COLUMN notes JSON",
        "ALTER TABLE generations ADD COLUMN notes JSON",
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
    notes: dict[str, Any] | None = None  # the adapter's notes on this clip (Video.notes)


def _insert_rows(con: duckdb.DuckDBPyConnection, head: str, row: str, rows: Sequence[Sequence[Any]],
                 per_statement: int = 128) -> None:
    """`head VALUES row, row, ...` for many rows, parameterized, a bounded number per statement.
    The rows must not repeat a primary key (one statement cannot replace the same row twice)."""
    for i in range(0, len(rows), per_statement):
        part = rows[i:i + per_statement]
        con.execute(f"{head} {', '.join([row] * len(part))}", [v for r in part for v in r])


def _notes_json(notes: dict[str, Any] | None) -> str | None:
    return json.dumps(notes, sort_keys=True, default=str) if notes else None


def _is_lock_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "lock" in msg or "conflicting" in msg or "being used by another" in msg


def _open_elsewhere_in_process(e: Exception) -> bool:
    """DuckDB refuses to attach a file that a duckdb.connect() of this process holds open."""
    msg = str(e).lower()
    return "unique file handle conflict" in msg or "already attached" in msg


class _Busy(Exception):
    """The file is attached read-only in this process and a writer wants it: wait, like a lock."""


class _Engine:
    """The process's in-memory DuckDB, to which results files are attached while in use: each
    user gets its own cursor (its own transactions, any thread), a file is attached by its first
    user and detached by its last. A forked child starts a fresh instance and never touches (or
    destroys, which could checkpoint files) the parent's copy."""

    def __init__(self) -> None:
        self._orphans: list[Any] = []
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        self.lock = threading.Lock()  # guards con (ATTACH/DETACH) and attached
        self.con: duckdb.DuckDBPyConnection | None = None
        self.attached: dict[str, list] = {}  # alias -> [users, read_only]

    def _after_fork(self) -> None:
        if self.con is not None:
            self._orphans.append(self.con)
        self._reset()

    def acquire(self, path: Path, read_only: bool) -> tuple[str, duckdb.DuckDBPyConnection]:
        """A cursor whose current database is the file at `path`; give it back with release()."""
        alias = "db_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
        with self.lock:
            if self.con is None:
                self.con = duckdb.connect(":memory:")
            entry = self.attached.get(alias)
            if entry is None:
                self.con.execute(f"ATTACH ? AS {alias}{' (READ_ONLY)' if read_only else ''}", [str(path)])
                entry = self.attached[alias] = [0, read_only]
            elif entry[1] and not read_only:
                raise _Busy(f"{path}: attached read-only by another thread of this process")
            entry[0] += 1
            try:
                cur = self.con.cursor()
            except BaseException:
                self._drop(alias)
                raise
        try:
            cur.execute(f"USE {alias}")
        except BaseException:
            self.release(alias, cur)
            raise
        return alias, cur

    def release(self, alias: str, cur: duckdb.DuckDBPyConnection) -> None:
        try:
            cur.close()
        finally:
            with self.lock:
                self._drop(alias)

    def _drop(self, alias: str) -> None:
        entry = self.attached[alias]
        entry[0] -= 1
        if entry[0] > 0:
            return
        del self.attached[alias]
        try:
            self.con.execute(f"DETACH {alias}")
        except BaseException:
            # Never keep a file locked by accident: drop the whole instance (closing it releases
            # every file); the next user starts a fresh one.
            con, self.con = self.con, None
            self.attached.clear()
            try:
                con.close()
            except Exception:
                pass
            raise


_ENGINE = _Engine()


class Store:
    """Access to one results database file."""

    def __init__(self, path: str | Path, *, read_only: bool = False, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._held = threading.local()  # the connection of an open session(), per thread
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
        held = getattr(self._held, "con", None)
        if held is not None:  # inside session(): reuse its connection
            yield held
            return
        with self._open() as con:
            yield con

    @contextmanager
    def session(self) -> Iterator[None]:
        """Every operation of this thread inside the block uses one connection and keeps the file
        in between. Keep the block short: other processes wait while it holds the file."""
        if getattr(self._held, "con", None) is not None:
            yield
            return
        with self._open() as con:
            self._held.con, self._held.in_transaction = con, False
            try:
                yield
            finally:
                self._held.con = None

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose current database is the file, until the block ends."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.02
        while True:
            try:
                alias, con = _ENGINE.acquire(self.path, self.read_only)
                break
            except (duckdb.Error, _Busy) as e:
                if isinstance(e, duckdb.Error) and _open_elsewhere_in_process(e):
                    alias, con = None, None  # a plain duckdb.connect() of this process has it: share that
                    break
                if isinstance(e, duckdb.Error) and not _is_lock_error(e):
                    raise StoreError(f"{self.path}: cannot open the results database ({e})") from e
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: database busy (another process holds it for writing) for "
                        f"{self.busy_timeout:.0f} s; wait for it to finish or use another db=..."
                    ) from e
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        if con is None:
            with self._connect_directly() as con:
                yield con
            return
        try:
            yield con
        finally:
            _ENGINE.release(alias, con)

    @contextmanager
    def _connect_directly(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as e:
            raise StoreError(f"{self.path}: cannot open the results database ({e})") from e
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        with self.connect() as con:
            in_session = con is getattr(self._held, "con", None)
            if in_session and self._held.in_transaction:  # nested: part of the session's transaction
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            if in_session:
                self._held.in_transaction = True
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                if in_session:
                    self._held.in_transaction = False
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
    def done_sample_ids(self, run_id: str, *, include_failed: bool = True) -> set[str]:
        """Samples of the run that resume skips: all recorded ones, or only the ok ones."""
        with self.connect() as con:
            rows = con.execute("SELECT sample_id FROM samples WHERE run_id = ? AND (? OR status = 'ok')",
                               [run_id, include_failed]).fetchall()
        return {r[0] for r in rows}

    def count_ok(self, run_id: str) -> int:
        with self.connect() as con:
            (n,) = con.execute("SELECT count(*) FROM samples WHERE run_id = ? AND status = 'ok'", [run_id]).fetchone()
        return int(n)

    def run_status(self, run_id: str) -> str | None:
        with self.connect() as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return row[0] if row else None

    def failed_samples(self, run_id: str) -> list[tuple[str, str]]:
        """(sample_id, error) of the run's failed samples, in sample order."""
        with self.connect() as con:
            rows = con.execute("SELECT sample_id, error FROM samples WHERE run_id = ? AND status = 'failed' "
                               "ORDER BY sample_id", [run_id]).fetchall()
        return [(r[0], r[1] or "") for r in rows]

    def record_samples(
        self,
        run_id: str,
        samples: Sequence[SampleRecord],
        metrics: dict[str, dict[str, float]],
        generations: Sequence[tuple] = (),
    ) -> None:
        """Write samples, their metric values and the cache entries of newly generated clips
        (cache_key, path, sha256, gen_seconds[, notes]) in one transaction: all or nothing, one connection.

        Rows go in as multi-row INSERTs: one statement per ~hundred rows instead of one per row
        (DuckDB spends ~3 ms on each INSERT OR REPLACE statement, a few rows cost about the same)."""
        gens = {g[0]: [*g[:4], _notes_json(g[4] if len(g) > 4 else None)]
                for g in generations}  # a repeated key: the last one wins, as before
        rows = {s.sample_id: [run_id, s.sample_id, s.prompt_id, s.prompt, s.seed, s.task, s.path, s.sha256,
                              s.gen_seconds, s.status, s.error, s.cache_key, s.preview_path,
                              json.dumps(list(s.tags)), _notes_json(s.notes)] for s in samples}
        values = {(sample_id, metric): [run_id, sample_id, metric, float(value)]
                  for sample_id, per_sample in metrics.items() for metric, value in per_sample.items()}
        with self.transaction() as con:
            _insert_rows(con, "INSERT OR REPLACE INTO generations VALUES", "(?, ?, ?, ?, now(), ?)", list(gens.values()))
            _insert_rows(con, "INSERT OR REPLACE INTO samples VALUES",
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)", list(rows.values()))
            _insert_rows(con, "INSERT OR REPLACE INTO sample_metrics VALUES", "(?, ?, ?, ?)", list(values.values()))

    def lookup_generations(self, cache_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not cache_keys:
            return {}
        with self.connect() as con:
            return self._lookup_generations(con, cache_keys)

    @staticmethod
    def _lookup_generations(con: duckdb.DuckDBPyConnection, cache_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not cache_keys:
            return {}
        rows = con.execute(
            "SELECT cache_key, path, sha256, gen_seconds, notes FROM generations WHERE list_contains(?, cache_key)",
            [list(cache_keys)],
        ).fetchall()
        return {r[0]: {"path": r[1], "sha256": r[2], "gen_seconds": r[3], "notes": json.loads(r[4]) if r[4] else None}
                for r in rows}

    def record_run_metrics(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        with self.transaction() as con:
            self._insert_run_metrics(con, run_id, rows)

    def finish_run(self, run_id: str, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Record the run metrics and mark the run done in one transaction (a run is never
        'finished' without its metrics): 'finished' when at least one sample succeeded, else
        'failed' (never on the leaderboard; the next run of it retries). Returns (ok, failed)."""
        with self.transaction() as con:
            ok, failed = con.execute(
                """SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'failed')
                   FROM samples WHERE run_id = ?""", [run_id]).fetchone()
            self._insert_run_metrics(con, run_id, rows)
            con.execute("UPDATE runs SET status = ?, finished_at = now() WHERE run_id = ?",
                        ["finished" if ok else "failed", run_id])
        return int(ok), int(failed)

    @staticmethod
    def _insert_run_metrics(con: duckdb.DuckDBPyConnection, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        _insert_rows(con, "INSERT OR REPLACE INTO run_metrics VALUES", "(?, ?, ?, ?, ?, ?, ?)", list({
            r["metric"]: [run_id, r["metric"], r.get("value"), r.get("ci_low"), r.get("ci_high"), r.get("n"),
                          json.dumps(r.get("details", {}), default=str)] for r in rows}.values()))

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

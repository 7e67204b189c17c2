"""The results database: one DuckDB file (default results/vdmbench.duckdb), through `Store`.

`Store` is the façade the rest of vdmbench uses: one named, typed method per question or write.
The SQL lives beside it: `engine` (taking the file: attach, sessions, transactions, busy retry),
`schema` (DDL, migrations, schema_version), and one query module per table group (`runs`,
`samples`, `metrics`, `votes`); `records` holds the typed rows, with JSON columns decoded there.
Reads give dataclasses; a few give DataFrames where the caller needs a table (the dashboard's
pages, `vdmbench list runs`, the statistics), and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from vdmbench.core.errors import StoreError
from vdmbench.store import metrics as _metrics
from vdmbench.store import runs as _runs
from vdmbench.store import samples as _samples
from vdmbench.store import schema as _schema
from vdmbench.store import votes as _votes
from vdmbench.store.engine import Connection, Engine, check_intact
from vdmbench.store.records import LeaderboardRow, MetricRow, RunRecord, SampleRecord, SampleRow, SampleValue
from vdmbench.store.schema import MIGRATIONS, SCHEMA_VERSION

_MIGRATIONS = MIGRATIONS  # the name older tests and scripts import

__all__ = ["SCHEMA_VERSION", "LeaderboardRow", "MetricRow", "RunRecord", "SampleRecord", "SampleRow",
           "SampleValue", "Store"]


class Store:
    """Access to one results database file.

    Each call takes the file for its own short connection (or the thread's open `session()`) and
    lets go after; writes are transactions. Opened writable, the file is created and migrated to
    the current schema; opened read-only it must exist."""

    def __init__(self, path: str | Path, *, read_only: bool = False, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._engine = Engine(self.path, read_only=read_only, busy_timeout=busy_timeout)
        if read_only and not self.path.exists():
            raise StoreError(
                f"{self.path}: no results database here yet; create one with "
                "`vdmbench run suite=smoke model=reference-unet3d`"
            )
        if self.path.exists() and self.path.stat().st_size > 0:
            # Checked read-only first: a damaged file is never opened for writing (nor migrated).
            with Engine(self.path, read_only=True, busy_timeout=busy_timeout).connect() as con:
                check_intact(con, self.path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                _schema.migrate(con, self.path)

    # -- connections -------------------------------------------------------------------------
    def session(self) -> AbstractContextManager[None]:
        """Every operation of this thread inside the block uses one connection and keeps the file
        in between. Keep the block short: other processes wait while it holds the file."""
        return self._engine.session()

    def _connect(self) -> AbstractContextManager[Connection]:
        return self._engine.connect()

    def _transaction(self) -> AbstractContextManager[Connection]:
        return self._engine.transaction()

    def _query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Any SELECT, as a DataFrame: for tests that look at the tables, never for vdmbench's
        code (which asks through a named method, so that SQL stays in vdmbench/store/)."""
        with self._connect() as con:
            return con.execute(sql, list(params or [])).df()

    # -- schema ------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._connect() as con:
            return _schema.schema_version(con)

    def newer_schema_warning(self) -> str | None:
        """For readers (`show`, `list`, `export`): a file written by a newer vdmbench opens
        read-only, but what this version shows of it may be incomplete. None when it is not newer."""
        version = self.schema_version() if self.has_table("schema_version") else 0
        if version <= _schema.SCHEMA_VERSION:
            return None
        return (f"{self.path} was written by a newer vdmbench (schema {version} > {_schema.SCHEMA_VERSION}): "
                "what is shown may be incomplete; upgrade vdmbench")

    def has_table(self, table: str) -> bool:
        """Whether the file has `table` (an old file may predate e.g. `arena_votes`)."""
        with self._connect() as con:
            return _schema.has_table(con, table)

    def load_frames(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """Append rows to tables in one transaction: {table name: DataFrame with its columns}
        (e.g. a benchmark's synthetic database)."""
        with self._transaction() as con:
            _schema.append_frames(con, frames)

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, run: Mapping[str, Any]) -> None:
        """Insert a `runs` row: run_id, suite, suite_version, suite_hash, model, model_config,
        config_hash, status, started_at, git_sha, env, shard, suite_config (JSON ones as values)."""
        with self._transaction() as con:
            _runs.create_run(con, run)

    def set_run_status(self, run_id: str, status: str, *, finished: bool = False) -> None:
        """Set the status; `finished` also stamps finished_at."""
        with self._transaction() as con:
            _runs.set_status(con, run_id, status, finished=finished)

    def run_status(self, run_id: str) -> str | None:
        """The run's status, None when there is no such run (exact id)."""
        with self._connect() as con:
            return _runs.status(con, run_id)

    def resumable_runs(self, suite_hash: str, config_hash: str, shard: str | None) -> list[str]:
        """Unfinished runs with the same suite, adapter config and shard, newest first; never a
        merge's run (state 'merging': a merge in progress, or what a killed one left)."""
        with self._connect() as con:
            return _runs.resumable(con, suite_hash, config_hash, shard)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id, or the only run whose id starts with it (like git); StoreError
        when there is none or the prefix is ambiguous."""
        with self._connect() as con:
            return _runs.get(con, run_id, str(self.path))

    def finished_shard_runs(self) -> list[RunRecord]:
        """Every finished shard run (shard=I/N), newest first."""
        with self._connect() as con:
            return _runs.finished_shards(con)

    def create_merged_run(self, merged_id: str, template_id: str, shard_ids: Sequence[str],
                          replaces: Sequence[str] = ()) -> None:
        """A new run `merged_id` ('merging', no shard) with the manifest of `template_id` and the
        samples and per-sample values of the runs `shard_ids`, in one transaction, which also
        deletes the runs `replaces` (what killed merges left in state 'merging')."""
        with self._transaction() as con:
            if replaces:
                _runs.delete(con, replaces)
            _runs.copy_shards(con, merged_id, template_id, shard_ids)

    def merging_leftovers(self, suite_hash: str, config_hash: str) -> list[str]:
        """Runs of this suite and model config still in state 'merging' (a merge in progress, or
        one that was killed). A run never resumes one of them (see resumable_runs)."""
        with self._connect() as con:
            return _runs.merging_leftovers(con, suite_hash, config_hash)

    def finish_merged_run(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record a merged run's metrics and mark it finished, in one transaction."""
        with self._transaction() as con:
            _metrics.record(con, run_id, rows)
            _runs.set_status(con, run_id, "finished", finished=True)

    def finish_run(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Record the run metrics and mark the run done in one transaction (a run is never
        'finished' without its metrics): 'finished' when at least one sample succeeded, else
        'failed' (never on the leaderboard; the next run of it retries). Returns (ok, failed)."""
        with self._transaction() as con:
            ok, failed = _runs.sample_counts(con, run_id)
            _metrics.record(con, run_id, rows)
            _runs.set_status(con, run_id, "finished" if ok else "failed", finished=True)
        return ok, failed

    def count_runs(self) -> int:
        """Runs of any status."""
        with self._connect() as con:
            return _runs.count(con)

    def runs(self) -> pd.DataFrame:
        """Every run with its sample and failure counts, newest first, as a table (DataFrame:
        `vdmbench list runs` prints its columns): run_id, suite, model, status, shard,
        started_at, finished_at, samples, failed."""
        with self._connect() as con:
            return _runs.listing(con)

    def suite_table(self) -> pd.DataFrame:
        """One row per (suite, version) with finished runs (shards left out): suite,
        suite_version, task, runs, models, first_finished, last_finished. A DataFrame, for the
        dashboard's selection."""
        with self._connect() as con:
            return _runs.suites(con)

    def run_table(self, suite: str | None = None, version: int | None = None, since: datetime | None = None,
                  until: datetime | None = None, finished_only: bool = True) -> pd.DataFrame:
        """Runs (no shards) with their sample counts, newest finished first, filtered by suite,
        version and finish time [since, until): run_id, suite, suite_version, model, status,
        started_at, finished_at, git_sha, samples, failed. A DataFrame, for the dashboard."""
        with self._connect() as con:
            return _runs.table(con, suite, version, since, until, finished_only)

    def all_runs_table(self) -> pd.DataFrame:
        """Every run, shards and unfinished ones included, newest first: run_id, suite,
        suite_version, model, status, shard, started_at, finished_at. A DataFrame, for the
        dashboard's drill-down."""
        with self._connect() as con:
            return _runs.all_runs(con)

    # -- samples -----------------------------------------------------------------------------
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
        with self._transaction() as con:
            _samples.record(con, run_id, samples, metrics, generations)

    def done_sample_ids(self, run_id: str, *, include_failed: bool = True) -> set[str]:
        """Samples of the run that resume skips: all recorded ones, or only the ok ones."""
        with self._connect() as con:
            return _samples.done_ids(con, run_id, include_failed)

    def count_ok(self, run_id: str) -> int:
        with self._connect() as con:
            return _samples.count_ok(con, run_id)

    def failed_samples(self, run_id: str) -> list[tuple[str, str]]:
        """(sample_id, error) of the run's failed samples, in sample order."""
        with self._connect() as con:
            return _samples.failed(con, run_id)

    def samples(self, run_id: str, *, ok_only: bool = False,
                order: Literal["sample", "prompt"] = "sample") -> list[SampleRow]:
        """The run's samples (exact id), ordered by sample id (`order="sample"`) or by prompt id
        then seed (`order="prompt"`); only the successful ones with `ok_only`."""
        with self._connect() as con:
            return _samples.rows(con, run_id, ok_only, order)

    def sample_metrics(self, run_id: str) -> list[SampleValue]:
        """Every per-sample metric value of the run (failed samples' too), by sample and metric."""
        with self._connect() as con:
            return _samples.values(con, run_id)

    def lookup_generations(self, cache_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Cached clips by cache key: {key: {path, sha256, gen_seconds, notes}} for the keys found."""
        if not cache_keys:
            return {}
        with self._connect() as con:
            return _samples.lookup_generations(con, cache_keys)

    def sample_values(self, run_id: str) -> pd.DataFrame:
        """Long table of per-sample metric values of the run's successful samples, with prompt and
        seed (sample_id, prompt_id, seed, metric, value): a DataFrame, for the statistics."""
        with self._connect() as con:
            return _samples.ok_values(con, run_id)

    def sample_value_table(self, run_ids: Sequence[str], tags: Sequence[str] = ()) -> pd.DataFrame:
        """Per-sample values of the successful samples of several runs, optionally only samples
        with any of `tags`: run_id, sample_id, prompt_id, prompt, seed, metric, value. A DataFrame,
        for the dashboard."""
        with self._connect() as con:
            return _samples.ok_values_of(con, run_ids, tags)

    def sample_tag_table(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """(run_id, sample_id, tag) rows, one per tag of each successful sample. A DataFrame, for
        the dashboard."""
        with self._connect() as con:
            return _samples.tag_rows(con, run_ids)

    def suite_tags(self, suite: str, version: int | None = None) -> list[str]:
        """Every tag of the suite's samples (any version when None), sorted."""
        with self._connect() as con:
            return _samples.suite_tags(con, suite, version)

    def sample_table(self, run_id: str) -> pd.DataFrame:
        """The run's samples by sample id: sample_id, prompt_id, prompt, seed, task, status, error,
        gen_seconds, path, preview_path, tags (a tuple of str), notes (a dict or None). A
        DataFrame, for the dashboard's drill-down."""
        with self._connect() as con:
            return _samples.table(con, run_id)

    def sample_files(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Sample rows with their paths, of several runs: run_id, sample_id, prompt_id, prompt,
        seed, status, error, path, preview_path. A DataFrame, for side-by-side videos."""
        with self._connect() as con:
            return _samples.files_of(con, run_ids)

    def sample_metric_table(self, run_id: str, sample_id: str) -> pd.DataFrame:
        """(metric, value) of one sample, by metric. A DataFrame, for the dashboard."""
        with self._connect() as con:
            return _samples.metric_table(con, run_id, sample_id)

    # -- run metrics -------------------------------------------------------------------------
    def record_run_metrics(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write run-level metric rows ({metric, value, ci_low, ci_high, n, details}), replacing any."""
        with self._transaction() as con:
            _metrics.record(con, run_id, rows)

    def run_metrics(self, run_id: str) -> list[MetricRow]:
        """The run's metric rows (exact id), by metric."""
        with self._connect() as con:
            return _metrics.of_run(con, run_id)

    def leaderboard(self, suite: str | None = None) -> list[LeaderboardRow]:
        """Latest finished run per (suite, model) (no shards) with its run metrics, by suite,
        model and metric."""
        with self._connect() as con:
            return _metrics.leaderboard(con, suite)

    def run_metric_table(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Run-level metric rows of several runs, by run and metric: run_id, metric, value, ci_low,
        ci_high, n, details (a dict). A DataFrame, for the dashboard."""
        with self._connect() as con:
            return _metrics.table(con, run_ids)

    def metric_history(self, suite: str, version: int | None = None, since: datetime | None = None,
                       until: datetime | None = None) -> pd.DataFrame:
        """Every finished run's metric values over time (no shards), oldest first: run_id, model,
        finished_at, git_sha, metric, value, ci_low, ci_high. A DataFrame, for the dashboard."""
        with self._connect() as con:
            return _metrics.history(con, suite, version, since, until)

    # -- arena votes -------------------------------------------------------------------------
    def record_vote(self, *, vote_id: str, suite: str, prompt_id: str, seed: int, run_a: str, sample_a: str,
                    model_a: str, run_b: str, sample_b: str, model_b: str, winner: str,
                    voter: str | None = None) -> None:
        """One arena vote ('a', 'b' or 'tie') between two clips of one prompt and seed."""
        vote = {"vote_id": vote_id, "suite": suite, "prompt_id": prompt_id, "seed": seed, "run_a": run_a,
                "sample_a": sample_a, "model_a": model_a, "run_b": run_b, "sample_b": sample_b,
                "model_b": model_b, "winner": winner, "voter": voter}
        with self._transaction() as con:
            _votes.record(con, vote)

    def votes(self, suite: str) -> pd.DataFrame:
        """Votes on a suite, oldest first: model_a, model_b, winner, prompt_id, seed, voter,
        created_at. A DataFrame, for the ratings; the file must have `arena_votes` (has_table)."""
        with self._connect() as con:
            return _votes.of_suite(con, suite)

    # -- judge votes -------------------------------------------------------------------------
    def record_judge_votes(self, votes: pd.DataFrame, *, suite: str, judge: str, criterion: str) -> int:
        """Store a VLM judge's pairwise verdicts (the DataFrame `compare_runs` gives: prompt_id,
        seed, run_a, sample_a, model_a, run_b, sample_b, model_b, winner a | b | tie | None, and
        optionally forward/backward raw replies) in one transaction. `judge` is the judge's
        identity string. Idempotent: a pair judged again by the same judge on the same criterion
        replaces its row (whichever run came first). Returns the number of pairs written."""
        with self._transaction() as con:
            return _votes.record_judge(con, votes, suite, judge, criterion)

    def judge_votes(self, suite: str, criterion: str | None = None) -> pd.DataFrame:
        """The judge votes on a suite (all criteria when None), oldest first, with the table's
        columns: vote_id, suite, judge, criterion, prompt_id, seed, run_a, sample_a, model_a,
        run_b, sample_b, model_b, winner, forward, backward, created_at. A DataFrame; empty (same
        columns) for a file that predates the table (schema < 5)."""
        with self._connect() as con:
            if not _schema.has_table(con, "judge_votes"):
                return pd.DataFrame(columns=list(_votes.JUDGE_VOTE_COLUMNS))
            return _votes.judge_of_suite(con, suite, criterion)

    # -- export ------------------------------------------------------------------------------
    def stored_tables(self, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(samples with every column, per-sample values, run metrics) of the run (exact id) as
        stored, JSON columns as their JSON text: DataFrames, for the file exports."""
        with self._connect() as con:
            samples, values = _samples.stored(con, run_id)
            return samples, values, _metrics.stored(con, run_id)


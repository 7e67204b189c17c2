"""The schema: its DDL as a list of migrations, applied in order, and the version it has reached.

`schema_version(version)` holds one row: the number of migrations applied. A file written by a
newer vdmbench (a higher version) is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from vdmbench.core.errors import StoreError
from vdmbench.store.engine import Connection

SCHEMA_VERSION = 5

# Each entry migrates from version i to i+1; append, never edit, so old files upgrade in order.
MIGRATIONS: list[list[str]] = [
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
    [
        # One name for one concept: the model config (a YAML of adapters/) that made the run.
        "ALTER TABLE runs RENAME COLUMN adapter_config TO model_config",
    ],
    [
        # A VLM judge's pairwise verdicts, next to the human ones, so the two can be compared.
        # judge: the judge's identity (backend/model/revision/template version); winner a | b | tie,
        # NULL when a call failed; forward/backward: the raw replies of the two orders.
        """CREATE TABLE IF NOT EXISTS judge_votes (vote_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL,
            judge VARCHAR NOT NULL, criterion VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL, seed BIGINT NOT NULL,
            run_a VARCHAR NOT NULL, sample_a VARCHAR NOT NULL, model_a VARCHAR NOT NULL, run_b VARCHAR NOT NULL,
            sample_b VARCHAR NOT NULL, model_b VARCHAR NOT NULL, winner VARCHAR, forward VARCHAR,
            backward VARCHAR, created_at TIMESTAMP)""",
    ],
]

# The tables a current file has (what load_frames may fill).
TABLES = ("runs", "samples", "sample_metrics", "run_metrics", "generations", "arena_votes", "judge_votes")


def migrate(con: Connection, path: Path) -> None:
    """Bring the file up to SCHEMA_VERSION, one migration per transaction."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = (row[0] if row else None) or 0
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer vdmbench (schema {current} > {SCHEMA_VERSION}); upgrade vdmbench"
        )
    for version in range(current, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        for stmt in MIGRATIONS[version]:
            con.execute(stmt)
        con.execute("DELETE FROM schema_version")
        con.execute("INSERT INTO schema_version VALUES (?)", [version + 1])
        con.execute("COMMIT")


def schema_version(con: Connection) -> int:
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def has_table(con: Connection, table: str) -> bool:
    """Whether the file has this table (not another file attached to the same process)."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                      "AND table_catalog = current_database()", [table]).fetchone()
    return bool(row and row[0])


def append_frames(con: Connection, frames: Mapping[str, pd.DataFrame]) -> None:
    """Append each DataFrame's rows to the table of its name (columns named as the table's)."""
    for name, frame in frames.items():
        if name not in TABLES:
            raise StoreError(f"no table {name!r} to load rows into (tables: {', '.join(TABLES)})")
        columns = ", ".join('"' + str(c).replace('"', '""') + '"' for c in frame.columns)
        con.register("frame", frame)
        try:
            con.execute(f"INSERT INTO {name} ({columns}) SELECT * FROM frame")
        finally:
            con.unregister("frame")

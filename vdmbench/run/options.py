"""The options of one run (`vdmbench run KEY=VALUE`): where results go, device, threads,
batching, shards, resume, cache, failure budget. The Hydra config (cli/conf/run.yaml) lists the
same keys with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import DEFAULT_RESULTS_DIR


@dataclass
class RunOptions:
    results_dir: Path = DEFAULT_RESULTS_DIR
    db: Path | None = None  # default: <results_dir>/vdmbench.duckdb
    device: str = "auto"
    batch_size: int = 8  # clips per scoring batch
    precision: str = "fp32"
    shard: tuple[int, int] | None = None  # (index, count)
    resume: bool = True
    use_cache: bool = True
    preview: bool = True
    run_id: str | None = None
    progress: bool = True
    workers: int = 2  # decoder processes for scoring stored clips (overlap with compute)
    # Finished samples are written to the database at most this often, in one transaction: each
    # write (attach, insert, commit, checkpoint, plus syncing the files) costs ~10-40 ms, too much
    # per clip for a fast model. A kill loses at most this much finished work (its clips are then
    # regenerated, never duplicated).
    flush_seconds: float = 2.0
    # Write files and database rows in a background thread, overlapped with the next generate()
    # (off: the main thread writes between batches; the results are the same). Measured on the
    # CPU reference model: never slower, and free where generation leaves a core idle or waits on
    # a GPU or a server (benchmarks/bench_runner.py overhead --variants background serial).
    background_writes: bool = True
    timeout: float | None = None  # seconds per request before a hung backend call is abandoned
    # torch intra-op threads while the run works: None = auto (every usable core but one; see
    # vdmbench/core/threads.py). Recorded in runs.env and replayed by `vdmbench reproduce`.
    threads: int | None = None
    # More failed samples than this (a count, or a fraction of the samples) and `vdmbench run`
    # exits 1; a run in which no sample succeeded always does (see vdmbench/run/failures.py).
    max_failed: int | float | None = None
    # On resume, generate the failed samples of the run again (a run where every sample failed
    # is always retried: its failures were the environment's, e.g. a missing package).
    retry_failed: bool = False
    overrides: list[str] = field(default_factory=list)  # recorded in the manifest

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else Path(self.results_dir) / "vdmbench.duckdb"


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value in (None, "", "null"):
        return None
    try:
        i, n = (int(x) for x in str(value).split("/"))
    except ValueError as e:
        raise ConfigError(f"shard must look like I/N (e.g. 0/4), got {value!r}") from e
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard {value!r}: need 0 <= I < N")
    return i, n

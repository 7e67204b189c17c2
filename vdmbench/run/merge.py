"""`vdmbench merge`: combine the finished shards of a sharded run into one run.

Shards are runs of the same suite (hash) and model config with `shard=I/N`. The merged run copies
their samples and per-sample values and recomputes every run-level metric over all samples
(set-level metrics such as FVD stream the clips again), so it equals an unsharded run.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store import RunRecord, Store


def find_shard_set(store: Store, run_ids: list[str] | None) -> list[RunRecord]:
    """The shard runs to merge: the given ids, or the newest complete finished set."""
    if run_ids:
        runs = [store.get_run(r) for r in run_ids]
    else:
        runs = store.finished_shard_runs()
        if not runs:
            raise ConfigError("no finished shard runs to merge; run with shard=I/N first")
        head = runs[0]
        runs = [r for r in runs if (r["suite_hash"], r["config_hash"]) == (head["suite_hash"], head["config_hash"])]
    keys = {(r["suite_hash"], r["config_hash"]) for r in runs}
    if len(keys) != 1:
        raise ConfigError("these runs are of different suites or model configs; merge shards of one run only")
    counts = {int(r["shard"].split("/")[1]) for r in runs if r.get("shard")}
    if len(counts) != 1 or any(not r.get("shard") for r in runs):
        raise ConfigError("every run to merge must be a shard (shard=I/N) with the same N")
    n = counts.pop()
    by_index: dict[int, RunRecord] = {}
    for r in runs:  # newest first: keep the newest run of each shard index
        by_index.setdefault(int(r["shard"].split("/")[0]), r)
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ConfigError(f"shards {missing} of {n} are missing; run them with shard=I/{n} and merge again")
    unfinished = [r["run_id"] for r in by_index.values() if r["status"] != "finished"]
    if unfinished:
        raise ConfigError(f"shard runs {unfinished} are not finished; re-run them to resume, then merge")
    return [by_index[i] for i in range(n)]


def merge(store: Store, shards: list[RunRecord], results_dir: str | Path = DEFAULT_RESULTS_DIR) -> str:
    """Merge `shards` into a new run; returns its id.

    Killed at any moment, a merge leaves either nothing, or a run in state 'merging' that no
    `vdmbench run` ever adopts (resumable_runs skips it) and that the next merge of the same suite
    and model config deletes, in the transaction that copies the samples again. The metrics and
    the state 'finished' are written together, in one transaction."""
    first = shards[0]
    merged_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    ids = [s["run_id"] for s in shards]
    suite = parse_suite(first["suite_config"], source=f"run {first['run_id']}")
    runner = Runner(suite, first["model_config"], RunOptions(results_dir=Path(results_dir), db=store.path, progress=False))
    metrics = runner.build_metrics()  # before anything is written: a bad metric leaves nothing behind
    lock = runner._lock(merged_id)
    try:
        leftovers = []
        for run_id in store.merging_leftovers(first["suite_hash"], first["config_hash"]):
            held = runner._lock(run_id)  # taken: its merge is dead (the OS drops a killed process's lock)
            if held is not None:
                leftovers.append(run_id)
                held.close()
        store.create_merged_run(merged_id, first["run_id"], ids, replaces=leftovers)
        store.finish_merged_run(merged_id, runner.statistics(merged_id, metrics))
    finally:
        if lock is not None:
            lock.close()
    return merged_id

"""`vdmbench reproduce RUN`: run a stored run again from its manifest and report any difference.

The stored suite and adapter config are replayed without the cache into a separate results folder
(the original is never touched); clips are compared by sha256 and metric values exactly. Package
versions and device that differ from the original are listed, since they explain most differences.
"""

from __future__ import annotations

import math
from pathlib import Path

from vdmbench.config.suite import parse_suite
from vdmbench.core.provenance import environment
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store


def reproduce(store: Store, run_id: str, out_dir: Path, progress: bool = True) -> dict:
    run = store.get_run(run_id)
    run_id = run["run_id"]
    suite = parse_suite(run["suite_config"], source=f"run {run_id}")
    device = run["env"].get("device", "cpu")
    shard = None
    if run.get("shard"):
        i, n = run["shard"].split("/")
        shard = (int(i), int(n))
    # The thread count changes low bits of conv outputs: replay the original's (older runs
    # recorded only torch's count at the time, `torch_threads`).
    threads = run["env"].get("threads") or run["env"].get("torch_threads")
    runner = Runner(suite, run["adapter_config"], RunOptions(
        results_dir=out_dir, device=device, use_cache=False, resume=False, shard=shard, progress=progress,
        threads=int(threads) if threads else None,
    ))
    summary = runner.run()
    new = runner.store
    diffs: list[str] = []
    old_s = store.query("SELECT sample_id, sha256, status FROM samples WHERE run_id = ?", [run_id]).set_index("sample_id")
    new_s = new.query("SELECT sample_id, sha256, status FROM samples WHERE run_id = ?", [summary.run_id]).set_index("sample_id")
    for sid in sorted(set(old_s.index) | set(new_s.index)):
        if sid not in new_s.index or sid not in old_s.index:
            diffs.append(f"sample {sid}: present in only one run")
        elif old_s.status[sid] != new_s.status[sid]:
            diffs.append(f"sample {sid}: status {old_s.status[sid]} -> {new_s.status[sid]}")
        elif old_s.sha256[sid] != new_s.sha256[sid]:
            diffs.append(f"sample {sid}: clip differs (sha256 {str(old_s.sha256[sid])[:12]} -> {str(new_s.sha256[sid])[:12]})")
    old_m = store.query("SELECT sample_id, metric, value FROM sample_metrics WHERE run_id = ?", [run_id])
    new_m = new.query("SELECT sample_id, metric, value FROM sample_metrics WHERE run_id = ?", [summary.run_id])
    joined = old_m.merge(new_m, on=["sample_id", "metric"], how="outer", suffixes=("_old", "_new"))
    for r in joined.itertuples():
        if not _same(r.value_old, r.value_new):
            diffs.append(f"sample {r.sample_id} {r.metric}: {r.value_old!r} -> {r.value_new!r}")
    old_r = store.query("SELECT metric, value FROM run_metrics WHERE run_id = ?", [run_id]).set_index("metric").value
    new_r = new.query("SELECT metric, value FROM run_metrics WHERE run_id = ?", [summary.run_id]).set_index("metric").value
    for metric in sorted(set(old_r.index) | set(new_r.index)):
        a, b = old_r.get(metric), new_r.get(metric)
        if not _same(a, b):
            diffs.append(f"run metric {metric}: {a!r} -> {b!r}")
    env_now = environment(device)
    env_diff = {
        k: (v, env_now["packages"].get(k)) for k, v in run["env"].get("packages", {}).items()
        if env_now["packages"].get(k) != v
    }
    return {"run_id": run_id, "reproduction": summary.run_id, "db": str(new.path), "differences": diffs,
            "package_differences": env_diff, "threads": runner.threads}


def _same(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or a != a) and (b is None or b != b)
    return a == b

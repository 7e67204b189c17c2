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
    runner = Runner(suite, run["model_config"], RunOptions(
        results_dir=out_dir, device=device, cache=False, resume=False, shard=shard, progress=progress,
        threads=int(threads) if threads else None,
    ))
    summary = runner.run()
    new = runner.store
    diffs: list[str] = []
    old_s = {s.sample_id: s for s in store.samples(run_id)}
    new_s = {s.sample_id: s for s in new.samples(summary.run_id)}
    for sid in sorted(set(old_s) | set(new_s)):
        if sid not in new_s or sid not in old_s:
            diffs.append(f"sample {sid}: present in only one run")
        elif old_s[sid].status != new_s[sid].status:
            diffs.append(f"sample {sid}: status {old_s[sid].status} -> {new_s[sid].status}")
        elif old_s[sid].sha256 != new_s[sid].sha256:
            diffs.append(f"sample {sid}: clip differs (sha256 {str(old_s[sid].sha256)[:12]} -> {str(new_s[sid].sha256)[:12]})")
    old_m = {(v.sample_id, v.metric): v.value for v in store.sample_metrics(run_id)}
    new_m = {(v.sample_id, v.metric): v.value for v in new.sample_metrics(summary.run_id)}
    for sid, metric in sorted(set(old_m) | set(new_m)):  # a value missing on one side shows as nan
        a, b = old_m.get((sid, metric), math.nan), new_m.get((sid, metric), math.nan)
        if not _same(a, b):
            diffs.append(f"sample {sid} {metric}: {a!r} -> {b!r}")
    old_r = {r.metric: r.value for r in store.run_metrics(run_id)}
    new_r = {r.metric: r.value for r in new.run_metrics(summary.run_id)}
    for metric in sorted(set(old_r) | set(new_r)):
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

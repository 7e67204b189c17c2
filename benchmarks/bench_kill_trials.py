"""Kill trials: SIGKILL `vdmbench run` at random moments, resume, and check that nothing is lost.

After every trial: each (prompt, seed) of the suite is in `samples` exactly once, every referenced
file exists and matches its sha256, no temporary file is left, metric rows exist only for ok
samples, and the run is finished with its run metrics. Prints one line per trial and a summary.

    python benchmarks/bench_kill_trials.py --trials 10 [--model reference-random] [--suite smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def check(results: Path, expected: int) -> list[str]:
    problems = []
    con = duckdb.connect(str(results / "vdmbench.duckdb"), read_only=True)
    try:
        # A kill that lands after the run finished (e.g. while the leaderboard prints) makes the
        # second invocation a new, fully cached run: each run must then be complete on its own.
        for run_id, n, distinct in con.execute(
                "SELECT run_id, count(*), count(DISTINCT sample_id) FROM runs LEFT JOIN samples USING (run_id) "
                "GROUP BY run_id").fetchall():
            if n != expected or distinct != expected:
                problems.append(f"samples of run {run_id}: {n} rows, {distinct} distinct, expected {expected}")
        for path, sha, status in con.execute("SELECT path, sha256, status FROM samples").fetchall():
            if status == "ok":
                f = results / path
                if not f.is_file():
                    problems.append(f"missing file {path}")
                elif hashlib.sha256(f.read_bytes()).hexdigest() != sha:
                    problems.append(f"sha256 mismatch {path}")
        orphans = con.execute(
            """SELECT count(*) FROM sample_metrics m LEFT JOIN samples s USING (run_id, sample_id)
               WHERE s.sample_id IS NULL OR s.status <> 'ok'"""
        ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} metric rows without an ok sample")
        runs = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
        if runs not in (["finished"], ["finished", "finished"]):
            problems.append(f"runs: {runs}")
        if con.execute("SELECT count(*) FROM run_metrics").fetchone()[0] == 0:
            problems.append("no run metrics")
    finally:
        con.close()
    stray = [p for p in results.rglob("*.tmp")]
    if stray:
        problems.append(f"stray temporary files: {[p.name for p in stray]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--model", default="reference-random")
    ap.add_argument("--suite", default="smoke")
    ap.add_argument("--max-delay", type=float, default=12.0, help="kill within this many seconds of the start")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*", default=["suite.steps=8"])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lost = failed_trials = 0
    for trial in range(args.trials):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "vdmbench.cli.commands", "run", f"suite={args.suite}", f"model={args.model}",
                   "progress=false", *args.overrides]
            proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            delay = rng.uniform(0.5, args.max_delay)
            time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            results = Path(tmp) / "results"
            before = 0
            if (results / "vdmbench.duckdb").exists():
                before = duckdb.connect(str(results / "vdmbench.duckdb"), read_only=True).execute(
                    "SELECT count(*) FROM samples").fetchone()[0]
            done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            from vdmbench.config.suite import load_suite

            expected = len(load_suite(args.suite).samples())
            problems = check(results, expected) if done.returncode == 0 else [f"resume failed: {done.stderr[-300:]}"]
            lost += sum("missing" in p or "expected" in p for p in problems)
            failed_trials += bool(problems)
            print(f"trial {trial:2d}: killed={'yes' if killed else 'no (finished first)'} at {delay:5.2f} s, "
                  f"{before}/{expected} samples stored before resume -> "
                  f"{'OK' if not problems else 'PROBLEMS: ' + '; '.join(problems)}", flush=True)
    print(f"\n{args.trials} kill trials, {failed_trials} with problems, rows lost: {lost}")
    return 1 if failed_trials else 0


if __name__ == "__main__":
    raise SystemExit(main())

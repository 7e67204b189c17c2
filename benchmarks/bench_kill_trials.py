"""Kill trials: SIGKILL vdmbench at random moments (during a run, a merge, a score, one of two
concurrent writers) or fill its disk, then run the same command again, and compare the final
leaderboard with an uninterrupted run's: rows lost, rows duplicated.

After every trial: each (prompt, seed) of the suite is in `samples` exactly once per run, every
referenced file exists and matches its sha256, no temporary file is left, metric rows exist only
for ok samples, every run is finished with its run metrics, and the leaderboard (metric values and
n of the newest finished run of each model) equals the uninterrupted run's. Prints one line per
trial and a table per kind.

    python benchmarks/bench_kill_trials.py --kinds run,merge,score,concurrent,disk-full --trials 10
    python benchmarks/bench_kill_trials.py --kinds run --model reference-random --suite smoke suite.steps=8

By default the models and suite are the test fixtures' (tests/fixtures/configs: `tiny`, 12 clips,
`toy-slow` sleeping VDMBENCH_TEST_DELAY seconds per clip), so a trial takes seconds. `disk-full`
mounts a small tmpfs where the machine allows it (root), otherwise it limits the file size with
`ulimit -f`; it fills the file system, runs until the run stops on the full disk, frees the space
and runs again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "configs"


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def leaderboard(db: Path) -> dict[tuple, tuple]:
    """(model, metric) -> (value, n) of the newest finished unsharded run of each model."""
    found = rows(db, """SELECT r.model, m.metric, round(m.value, 9), m.n FROM run_metrics m JOIN runs r USING (run_id)
                        WHERE r.status = 'finished' AND r.shard IS NULL
                        QUALIFY r.started_at = max(r.started_at) OVER (PARTITION BY r.model)""")
    return {(model, metric): (value, n) for model, metric, value, n in found}


def check(results: Path, expected: int, baseline: dict, *, merged: bool = False) -> tuple[list[str], int, int]:
    """(problems, rows lost, rows duplicated) of a results folder against the expected leaderboard."""
    db = results / "vdmbench.duckdb"
    problems: list[str] = []
    lost = duplicated = 0
    per_run = rows(db, "SELECT run_id, r.status, r.shard, r.model, count(s.sample_id), count(DISTINCT s.sample_id) "
                       "FROM runs r LEFT JOIN samples s USING (run_id) GROUP BY ALL")
    shards = {}
    for run_id, status, shard, model, n, distinct in per_run:
        want = expected if shard is None else None
        if shard is not None:
            shards.setdefault(model, 0)
            shards[model] += distinct
        if status != "finished":
            problems.append(f"run {run_id} is {status}")
            duplicated += n if status == "merging" else 0
        if n != distinct:
            duplicated += n - distinct
            problems.append(f"run {run_id}: {n} rows, {distinct} distinct")
        if want is not None and status == "finished" and distinct < want:
            lost += want - distinct
            problems.append(f"run {run_id}: {distinct} of {want} samples")
    if merged:
        finished = [r for r in per_run if r[2] is None and r[1] == "finished"]
        if len(finished) > 1:
            duplicated += sum(r[4] for r in finished[1:])
            problems.append(f"{len(finished)} finished merged runs")
    for path, sha, status in rows(db, "SELECT path, sha256, status FROM samples"):
        if status == "ok":
            f = results / path
            if not f.is_file():
                problems.append(f"missing file {path}")
            elif hashlib.sha256(f.read_bytes()).hexdigest() != sha:
                problems.append(f"sha256 mismatch {path}")
    orphans = rows(db, """SELECT count(*) FROM sample_metrics m LEFT JOIN samples s USING (run_id, sample_id)
                          WHERE s.sample_id IS NULL OR s.status <> 'ok'""")[0][0]
    if orphans:
        problems.append(f"{orphans} metric rows without an ok sample")
    board = leaderboard(db)
    if board != baseline:
        missing = set(baseline) - set(board)
        lost += len(missing)
        problems.append(f"leaderboard differs: {sorted(set(board.items()) ^ set(baseline.items()))[:4]}")
    stray = [p.name for p in results.rglob("*.tmp")]
    if stray:
        problems.append(f"stray temporary files: {stray}")
    return problems, lost, duplicated


class Kinds:
    """One trial of each kind: returns (what happened before the repair, problems, lost, duplicated)."""

    def __init__(self, args: argparse.Namespace, rng: random.Random) -> None:
        self.args, self.rng = args, rng
        self.env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                    "VDMBENCH_TEST_DELAY": str(args.delay), "OMP_NUM_THREADS": "1"}
        search = [f"hydra.searchpath=[file://{args.configs}]"] if args.configs else []
        self.run_args = ["progress=false", *search, *args.overrides]
        self.baselines: dict[str, dict] = {}

    def cmd(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "vdmbench", *argv]

    def vdmbench_run(self, tmp: Path, *extra: str, model: str | None = None) -> list[str]:
        return self.cmd("run", f"suite={self.args.suite}", f"model={model or self.args.model}", *self.run_args, *extra)

    def expected(self) -> int:
        sys.path.insert(0, str(REPO))
        from vdmbench.config.suite import load_suite

        path = Path(self.args.configs) / "suites" / f"{self.args.suite}.yaml" if self.args.configs else None
        return len(load_suite(str(path) if path and path.is_file() else self.args.suite).samples())

    def baseline(self, key: str, make) -> dict:
        if key not in self.baselines:
            with tempfile.TemporaryDirectory() as tmp:
                make(Path(tmp))
                self.baselines[key] = leaderboard(Path(tmp) / "results" / "vdmbench.duckdb")
        return self.baselines[key]

    def sh(self, argv: list[str], tmp: Path, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=tmp, env=self.env, capture_output=True, text=True, **kw)

    def kill_at_random(self, argv: list[str], tmp: Path, max_delay: float) -> tuple[bool, float]:
        proc = subprocess.Popen(argv, cwd=tmp, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = self.rng.uniform(0.5, max_delay)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return killed, delay

    # -- kinds --------------------------------------------------------------------------------
    def run(self, tmp: Path):
        base = self.baseline("run", lambda t: self.sh(self.vdmbench_run(t), t, check=True))
        killed, delay = self.kill_at_random(self.vdmbench_run(tmp), tmp, self.args.max_delay)
        done = self.sh(self.vdmbench_run(tmp), tmp)
        if done.returncode != 0:
            return f"killed={killed} at {delay:.2f} s", [f"resume failed: {done.stderr[-300:]}"], 0, 0
        return (f"killed={'yes' if killed else 'no'} at {delay:5.2f} s",
                *check(tmp / "results", self.expected(), base))

    def _shards(self, tmp: Path) -> None:
        for shard in ("0/2", "1/2"):
            self.sh(self.vdmbench_run(tmp, f"shard={shard}"), tmp, check=True)

    def merge(self, tmp: Path):
        def merged(t: Path) -> None:
            self._shards(t)
            self.sh(self.cmd("merge"), t, check=True)

        base = self.baseline("merge", merged)
        self._shards(tmp)
        killed, delay = self.kill_at_random(self.cmd("merge"), tmp, self.args.max_delay_merge)
        db = tmp / "results" / "vdmbench.duckdb"
        (suite_hash, config_hash), = rows(db, "SELECT DISTINCT suite_hash, config_hash FROM runs")
        leftovers = {r[0] for r in rows(db, "SELECT run_id FROM runs WHERE status = 'merging'")}
        # A `vdmbench run` of the same suite and model meanwhile must not adopt what was left.
        sys.path.insert(0, str(REPO))
        from vdmbench.store.database import Store

        adopted = bool(leftovers & set(Store(db, read_only=True).resumable_runs(suite_hash, config_hash, None)))
        finished = rows(db, "SELECT count(*) FROM runs WHERE status = 'finished' AND shard IS NULL")[0][0]
        if not finished:  # what a user does: merge again unless the merge had finished
            again = self.sh(self.cmd("merge"), tmp)
            if again.returncode != 0:
                return f"killed={killed}", [f"merge again failed: {again.stderr[-300:]}"], 0, 0
        left = len(leftovers)
        problems, lost, dup = check_merge(tmp / "results", self.expected(), base, self.args.model)
        if adopted:
            problems.append("a run adopted the killed merge's leftovers")
        return f"killed={'yes' if killed else 'no'} at {delay:5.2f} s, {left} 'merging' left", problems, lost, dup

    def score(self, tmp: Path):
        def scored(t: Path) -> None:
            self.sh(self.vdmbench_run(t), t, check=True)
            self.sh(self.cmd("score", str(t / "results" / "videos" / self.args.model), "--metrics", "flicker", "--json", "out.json"), t,
                    check=True)

        self.baseline("run", lambda t: self.sh(self.vdmbench_run(t), t, check=True))
        if "score" not in self.baselines:
            with tempfile.TemporaryDirectory() as t:
                scored(Path(t))
                self.baselines["score"] = _score_rows(Path(t) / "out.json", Path(t))
        base = self.baselines["score"]
        self.sh(self.vdmbench_run(tmp), tmp, check=True)
        argv = self.cmd("score", str(tmp / "results" / "videos" / self.args.model), "--metrics", "flicker", "--json", "out.json")
        killed, delay = self.kill_at_random(argv, tmp, self.args.max_delay_merge)
        problems = []
        if (tmp / "out.json").exists():
            try:
                _score_rows(tmp / "out.json", tmp)
            except ValueError:
                problems.append("a killed score left a half-written --json")
        done = self.sh(argv, tmp)
        if done.returncode != 0:
            return f"killed={killed}", [f"score again failed: {done.stderr[-300:]}"], 0, 0
        got = _score_rows(tmp / "out.json", tmp)
        lost = len(set(base) - set(got))
        dup = max(0, len(got) - len(set(got)))
        if got != base:
            problems.append("scores differ from the uninterrupted score's")
        if list(tmp.rglob("*.tmp")):
            problems.append("stray temporary files")
        return f"killed={'yes' if killed else 'no'} at {delay:5.2f} s", problems, lost, dup

    def concurrent(self, tmp: Path):
        other = self.args.other_model

        def both(t: Path) -> None:
            self.sh(self.vdmbench_run(t), t, check=True)
            self.sh(self.vdmbench_run(t, model=other), t, check=True)

        base = self.baseline("concurrent", both)
        partner = subprocess.Popen(self.vdmbench_run(tmp, model=other), cwd=tmp, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        killed, delay = self.kill_at_random(self.vdmbench_run(tmp), tmp, self.args.max_delay)
        _, err = partner.communicate(timeout=600)
        problems = [] if partner.returncode == 0 else [f"the other writer failed: {err[-300:]}"]
        done = self.sh(self.vdmbench_run(tmp), tmp)
        if done.returncode != 0:
            return f"killed={killed}", [*problems, f"resume failed: {done.stderr[-300:]}"], 0, 0
        more, lost, dup = check(tmp / "results", self.expected(), base)
        return f"killed={'yes' if killed else 'no'} at {delay:5.2f} s", problems + more, lost, dup

    def disk_full(self, tmp: Path):
        base = self.baseline("run", lambda t: self.sh(self.vdmbench_run(t), t, check=True))
        results = tmp / "results"
        results.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.args.disk_mb}m", "tmpfs", str(results)],
                                 capture_output=True).returncode == 0
        try:
            if mounted:
                # Leave 0.1-4 MB free (a finished run takes ~4.5 MB): the run stops somewhere between its first and last clip.
                free = shutil.disk_usage(results).free
                room = self.rng.randint(100, 4000) * 1024
                with open(results / "filler", "wb") as f:
                    f.write(b"\0" * max(0, free - room))
                first = self.sh(self.vdmbench_run(tmp), tmp)
                (results / "filler").unlink()
            else:  # no mount: a per-process file-size limit (bytes in 512-byte blocks) for the first try
                limit = self.rng.randint(300, 1800)
                first = self.sh(["bash", "-c", f"ulimit -f {limit}; exec \"$@\"", "_", *self.vdmbench_run(tmp)], tmp)
            stopped = first.returncode
            err_lines = [ln for ln in first.stderr.splitlines() if ln.startswith("vdmbench: error:")]
            problems = []
            if stopped == 0:
                what = "finished before the disk filled"
            else:
                what = f"stopped with exit {stopped}: {err_lines[-1][:90] if err_lines else ''}"
                if stopped != 2 or "Traceback" in first.stderr or len(err_lines) != 1:
                    problems.append(f"not a one-line error: exit {stopped}, {len(err_lines)} lines")
            stored_failed = 0
            if (results / "vdmbench.duckdb").exists():
                try:
                    stored_failed = rows(results / "vdmbench.duckdb",
                                         "SELECT count(*) FROM samples WHERE status = 'failed'")[0][0]
                except duckdb.Error:
                    stored_failed = 0
            if stored_failed:
                problems.append(f"{stored_failed} samples stored as failed by the full disk")
            done = self.sh(self.vdmbench_run(tmp), tmp)
            if done.returncode != 0:
                return what, [*problems, f"run again failed: {done.stderr[-300:]}"], 0, 0
            more, lost, dup = check(results, self.expected(), base)
            return f"{'tmpfs' if mounted else 'ulimit -f'}; {what}", problems + more, lost, dup
        finally:
            if mounted:
                subprocess.run(["umount", str(results)], capture_output=True)


def check_merge(results: Path, expected: int, baseline: dict, model: str) -> tuple[list[str], int, int]:
    """check() for a merge trial: the merged run (and the shards) against the merged baseline."""
    return check(results, expected, baseline, merged=True)


def _score_rows(path: Path, root: Path) -> dict:
    """file name -> its values, plus the set's metrics, of a `vdmbench score --json` file."""
    import json

    data = json.loads(path.read_text())
    out = {name: {k: round(v, 9) for k, v in values.items()} for name, values in data.get("per_sample", {}).items()}
    out["__metrics__"] = {k: round(v, 9) for k, v in data.get("metrics", {}).items()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="run", help="comma-separated: run, merge, score, concurrent, disk-full")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--configs", default=str(FIXTURES), help="extra Hydra search path ('' for none)")
    ap.add_argument("--model", default="toy-slow")
    ap.add_argument("--other-model", default="toy-noise", help="the second writer of `concurrent`")
    ap.add_argument("--suite", default="tiny")
    ap.add_argument("--delay", type=float, default=0.3, help="VDMBENCH_TEST_DELAY: seconds per clip of toy-slow")
    ap.add_argument("--max-delay", type=float, default=8.0, help="kill a run within this many seconds of its start")
    ap.add_argument("--max-delay-merge", type=float, default=6.0, help="the same for merge and score")
    ap.add_argument("--disk-mb", type=int, default=32, help="size of the tmpfs of `disk-full`")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*", default=[])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = Kinds(args, rng)
    table = []
    for kind in args.kinds.split(","):
        trial_of = getattr(kinds, kind.replace("-", "_"))
        bad = lost = dup = 0
        for trial in range(args.trials):
            with tempfile.TemporaryDirectory() as tmp:
                what, problems, n_lost, n_dup = trial_of(Path(tmp))
            bad += bool(problems)
            lost, dup = lost + n_lost, dup + n_dup
            print(f"{kind} trial {trial:2d}: {what} -> {'OK' if not problems else 'PROBLEMS: ' + '; '.join(problems)}",
                  flush=True)
        table.append((kind, args.trials, bad, lost, dup))
    print("\n| kind | trials | with problems | rows lost | rows duplicated |\n| --- | --- | --- | --- | --- |")
    for kind, n, bad, lost, dup in table:
        print(f"| {kind} | {n} | {bad} | {lost} | {dup} |")
    return 1 if any(bad for _, _, bad, _, _ in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())

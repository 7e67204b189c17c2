"""Issue #15 item 6: a merge killed with SIGKILL leaves nothing a run adopts, and the next merge
replaces its leftovers: one merged run, no duplicated rows, the same metrics as an unsharded run."""

import os
import subprocess
import sys

import duckdb

from tests.fixtures import REPO
from tests.test_cli_run import db_rows

# `vdmbench merge`, killed by SIGKILL once the merged run's samples are copied, before its metrics.
KILLED_MERGE = """
import os, signal
import vdmbench.run.merge as m
m.Runner.statistics = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from vdmbench.cli.commands import main
main(["merge"])
"""


def killed_merge(tmp_path):
    p = subprocess.run([sys.executable, "-c", KILLED_MERGE], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert p.returncode == -9, p.stderr


def test_killed_merge_is_never_adopted_and_the_next_merge_replaces_it(vdmbench_cli, tmp_path):
    for shard in ("0/2", "1/2"):
        vdmbench_cli("run", "suite=tiny", "model=toy-noise", f"shard={shard}", check=True)
    killed_merge(tmp_path)
    assert db_rows(tmp_path, "SELECT runs.status, count(*) FROM runs JOIN samples USING (run_id) WHERE shard IS NULL "
                             "GROUP BY runs.status") == [("merging", 12)]

    # The same suite and model, unsharded: a run of its own (from the cache), not the leftover.
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    assert "resumed" not in p.stdout
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'merging'") == [(1,)]

    killed_merge(tmp_path)  # killed twice: still one leftover at most
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'merging'") == [(1,)]

    merged = vdmbench_cli("merge", check=True)
    assert "merged 2 shards" in merged.stdout
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'merging'") == [(0,)]
    per_run = db_rows(tmp_path, """SELECT count(*), count(DISTINCT sample_id) FROM samples JOIN runs USING (run_id)
                                   WHERE shard IS NULL GROUP BY run_id""")
    assert per_run == [(12, 12), (12, 12)]  # the unsharded run and the merged one, nothing duplicated
    assert db_rows(tmp_path, "SELECT count(*) FROM sample_metrics") == [(24 * 3,)]
    values = db_rows(tmp_path, """SELECT run_id, metric, value, ci_low, ci_high, n FROM run_metrics
                                  JOIN runs USING (run_id) WHERE shard IS NULL ORDER BY metric, run_id""")
    by_run: dict = {}
    for run_id, *rest in values:
        by_run.setdefault(run_id, []).append(tuple(rest))
    first, second = by_run.values()
    assert first == second


def test_a_merge_in_progress_is_not_resumed_by_a_run(vdmbench_cli, tmp_path):
    """A 'merging' run is someone's merge at work (or a dead one): never a run's to resume."""
    for shard in ("0/2", "1/2"):
        vdmbench_cli("run", "suite=tiny", "model=toy-noise", f"shard={shard}", check=True)
    killed_merge(tmp_path)
    (merging,), = db_rows(tmp_path, "SELECT run_id FROM runs WHERE status = 'merging'")
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT status FROM runs WHERE run_id = ?", [merging]).fetchall() == [("merging",)]
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'finished' AND shard IS NULL").fetchall() == [(1,)]
    finally:
        con.close()

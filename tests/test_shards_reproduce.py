"""Sharded runs merge into the unsharded result; a stored run reproduces bit for bit; a hung
backend is cut off by the per-request timeout."""

import duckdb

from tests.test_cli_run import db_rows


def test_shards_merge_to_the_unsharded_result(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", "shard=0/2", check=True)
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", "shard=1/2", check=True)
    assert db_rows(tmp_path, "SELECT count(*) FROM samples") == [(12,)]
    merged = vdmbench_cli("merge", check=True)
    assert "merged 2 shards" in merged.stdout
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", "results_dir=single", check=True)
    merged_vals = db_rows(tmp_path, """SELECT metric, value, ci_low, ci_high, n FROM run_metrics
                                       JOIN runs USING (run_id) WHERE shard IS NULL ORDER BY metric""")
    con = duckdb.connect(str(tmp_path / "single" / "vdmbench.duckdb"), read_only=True)
    single = con.execute("SELECT metric, value, ci_low, ci_high, n FROM run_metrics ORDER BY metric").fetchall()
    con.close()
    assert merged_vals == single


def test_merge_refuses_incomplete_shard_sets(vdmbench_cli):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", "shard=0/3", check=True)
    p = vdmbench_cli("merge")
    assert p.returncode == 2 and "shards [1, 2] of 3 are missing" in p.stderr


def test_reproduce_is_bit_identical(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    (run_id,), = db_rows(tmp_path, "SELECT run_id FROM runs")
    p = vdmbench_cli("reproduce", run_id)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "bit-identical" in p.stdout


def test_hung_backend_times_out_and_the_run_goes_on(vdmbench_cli, tmp_path):
    p = vdmbench_cli("run", "suite=tiny-flaky", "model=toy-hang", "timeout=2",
                     "suite.prompts=[{id: ok1, text: fine},{id: stuck, text: please hang},{id: ok2, text: also fine}]")
    assert p.returncode == 0, p.stderr
    status = dict(db_rows(tmp_path, "SELECT sample_id, status FROM samples"))
    assert status == {"ok1-s0": "ok", "stuck-s0": "failed", "ok2-s0": "ok"}
    (err,), = db_rows(tmp_path, "SELECT error FROM samples WHERE sample_id = 'stuck-s0'")
    assert "timed out after 2 s" in err

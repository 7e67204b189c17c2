"""Exit codes CI can trust: a run with no successful sample fails, `max_failed=` makes it stricter,
the summary lists the failures; the thread count is an option, recorded and replayed."""

import json

import duckdb
import pytest

from vdmbench.core.errors import ConfigError
from vdmbench.core.resources import resolve_threads, usable_cores
from vdmbench.run.failures import failure_budget_exceeded, parse_max_failed


def rows(tmp_path, sql):
    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_where_every_sample_fails_exits_1_and_is_not_finished(vdmbench_cli, tmp_path):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-broken")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "no sample succeeded" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "0 samples ok, 12 failed" in p.stdout
    assert rows(tmp_path, "SELECT status FROM runs") == [("failed",)]
    listed = vdmbench_cli("list", "runs", check=True)
    assert "│ failed │" in listed.stdout and "│ finished │" not in listed.stdout
    assert "No finished runs" in vdmbench_cli("show", check=True).stdout  # never on the leaderboard


def test_summary_lists_the_first_failures_and_how_many_more(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-broken")
    listed = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("failed ")]
    assert len(listed) == 10 and all("imaginary_backend" in ln for ln in listed)
    assert "... and 2 more" in p.stdout


def test_rerun_after_the_cause_is_fixed_retries_every_failed_sample(vdmbench_cli, tmp_path):
    assert vdmbench_cli("run", "suite=tiny", "model=toy-broken").returncode == 1
    p = vdmbench_cli("run", "suite=tiny", "model=toy-broken", env={"VDMBENCH_TEST_FIXED": "1"}, check=True)
    assert "resumed: 12 samples ok, 0 failed" in p.stdout
    assert rows(tmp_path, "SELECT status, count(*) FROM runs GROUP BY ALL") == [("finished", 1)]
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT sample_id) FROM samples WHERE status = 'ok'") == [(12, 12)]


@pytest.mark.parametrize("limit, code", [("1", 1), ("2", 0), ("0.25", 1), ("0.5", 0), ("'40%'", 1), ("'60%'", 0)])
def test_max_failed_makes_a_partly_failed_run_exit_1(vdmbench_cli, limit, code):
    # tiny-flaky: 2 of 4 samples fail
    p = vdmbench_cli("run", "suite=tiny-flaky", "model=toy-flaky", f"max_failed={limit}")
    assert p.returncode == code, (p.stdout, p.stderr)
    if code:
        assert "2 of 4 samples failed, more than max_failed" in p.stderr


def test_partly_failed_run_without_max_failed_exits_0(vdmbench_cli, tmp_path):
    assert vdmbench_cli("run", "suite=tiny-flaky", "model=toy-flaky").returncode == 0
    assert rows(tmp_path, "SELECT status FROM runs") == [("finished",)]


def test_max_failed_parsing():
    assert parse_max_failed(None) is None and parse_max_failed("3") == 3 and parse_max_failed(0) == 0
    assert parse_max_failed(0.1) == 0.1 and parse_max_failed("10%") == pytest.approx(0.1)
    for bad in (-1, 1.0, "1.5", "lots", "150%", True):
        with pytest.raises(ConfigError, match="max_failed must be"):
            parse_max_failed(bad)
    assert failure_budget_exceeded(3, 10, 2) and not failure_budget_exceeded(2, 10, 2)
    assert failure_budget_exceeded(2, 10, 0.1) and not failure_budget_exceeded(1, 10, 0.1)


def test_bad_max_failed_is_a_one_line_error(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "max_failed=lots")
    assert p.returncode == 2 and "max_failed must be" in p.stderr


def test_threads_default_leaves_a_core_and_explicit_counts_are_taken():
    assert resolve_threads("auto") == resolve_threads(None) == max(1, usable_cores() - 1)
    assert resolve_threads(3) == 3 and resolve_threads("2") == 2
    for bad in (0, "x", "1.5", -2):
        with pytest.raises(ConfigError, match="threads must be"):
            resolve_threads(bad)


def test_thread_count_is_set_for_the_run_recorded_and_restored(vdmbench_cli, tmp_path):
    import torch

    before = torch.get_num_threads()
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "threads=2", check=True)
    assert "2 CPU threads" in p.stdout
    env = json.loads(rows(tmp_path, "SELECT env FROM runs")[0][0])
    assert env["threads"] == 2 and env["torch_threads"] == 2
    assert torch.get_num_threads() == before  # the process's setting is given back


def test_reproduce_replays_the_stored_thread_count(tmp_path):
    import torch

    from tests.fixtures import REPO  # noqa: F401  (tests run from the repository root)
    from vdmbench.config.suite import parse_suite
    from vdmbench.run.reproduce import reproduce
    from vdmbench.run.runner import Runner, RunOptions
    from vdmbench.store.database import Store

    suite = parse_suite({"name": "t", "num_frames": 4, "height": 16, "width": 16, "metrics": ["flicker"],
                         "prompts": [{"id": "a", "text": "a red circle moving right"}]})
    model = {"name": "toy", "adapter": "callable", "params": {"target": "tests.fixtures.generators:noise"}}
    first = Runner(suite, model, RunOptions(results_dir=tmp_path / "r", progress=False, workers=0, threads=2)).run()
    assert first.threads == 2
    torch.set_num_threads(1)  # a different default in the reproducing process
    report = reproduce(Store(first.db, read_only=True), first.run_id, tmp_path / "again", progress=False)
    assert report["threads"] == 2 and report["differences"] == []
    again = Store(report["db"], read_only=True).get_run(report["reproduction"])
    assert again["env"]["threads"] == 2

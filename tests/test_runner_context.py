"""The runner lends its adapter the run's context: the device and the results folder (where a
hosted API's job journal lives), whatever the current directory is (issue #15 item 1)."""

from pathlib import Path

from vdmbench.config.suite import parse_suite
from vdmbench.run.runner import Runner, RunOptions

SUITE = parse_suite({"name": "ctx", "num_frames": 4, "height": 16, "width": 16, "metrics": ["flicker"],
                     "prompts": [{"id": "a", "text": "a red circle moving right"}]})
MODEL = {"name": "toy", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}
HTTP = {"name": "api", "adapter": "http", "params": {
    "base_url": "https://api.example.com", "submit": {"path": "/v1", "job_id": "id"},
    "poll": {"path": "/v1/{job_id}", "status": "s", "done": ["ok"], "video_url": "u"}}}


def test_adapter_gets_the_runs_device_and_results_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "elsewhere" / "results"
    runner = Runner(SUITE, MODEL, RunOptions(results_dir=results, progress=False, workers=0, device="cpu"))
    ctx = runner.adapter.context
    assert ctx.device == "cpu" and Path(ctx.results_dir) == results
    assert Path(ctx.journal_dir) == results / "http-jobs"
    assert runner.run().ok == 1


def test_http_journal_follows_the_results_dir_not_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "data" / "results"
    adapter = Runner(SUITE, HTTP, RunOptions(results_dir=results, progress=False)).adapter
    assert adapter.journal.folder == results / "http-jobs" / "api"
    assert not (tmp_path / "results").exists()

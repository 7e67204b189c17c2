"""End-to-end through the real CLI in subprocesses: run, resume after SIGKILL, failures, errors."""

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
import torch

from tests.fixtures import FIXTURE_CONFIGS, REPO
from vdmbench.core.video import Video, write_video


def db_rows(tmp_path, sql, params=()):
    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_run_prints_leaderboard_and_stores_everything(vdmbench_cli, tmp_path):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-moving-square", check=True)
    assert "leaderboard" in p.stdout and "toy-moving-square" in p.stdout and "flicker" in p.stdout
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'finished'") == [(1,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM samples WHERE status = 'ok'") == [(12,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM sample_metrics") == [(24,)]
    (value, n), = db_rows(tmp_path, "SELECT value, n FROM run_metrics WHERE metric = 'flicker'")
    assert n == 12 and 0.9 < value < 1.0
    env = json.loads(db_rows(tmp_path, "SELECT env FROM runs")[0][0])
    assert env["packages"]["torch"] and env["device"] == "cpu"
    for (path,) in db_rows(tmp_path, "SELECT path FROM samples"):
        assert (tmp_path / "results" / path).is_file()


def test_second_run_uses_cache_and_noise_scores_worse(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-moving-square", check=True)
    p = vdmbench_cli("run", "suite=tiny", "model=toy-moving-square", check=True)
    assert "0 generated, 12 from cache" in p.stdout
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    flicker = dict(db_rows(tmp_path, """SELECT r.model, m.value FROM run_metrics m JOIN runs r USING (run_id)
                                        WHERE m.metric = 'flicker'"""))
    assert flicker["toy-noise"] < flicker["toy-moving-square"]
    show = vdmbench_cli("show", check=True)
    assert "toy-noise" in show.stdout and "toy-moving-square" in show.stdout


def test_sigkill_midway_then_resume(tmp_path):
    log = tmp_path / "gen.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "VDMBENCH_TEST_GENLOG": str(log), "VDMBENCH_TEST_DELAY": "0.5"}
    cmd = [sys.executable, "-m", "vdmbench.cli.commands", "run", "suite=tiny", "model=toy-slow", "progress=false",
           "flush_seconds=0", f"hydra.searchpath=[file://{FIXTURE_CONFIGS}]"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    videos = tmp_path / "results" / "videos" / "toy-slow"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(videos.glob("*.mp4"))) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r[0] for r in db_rows(tmp_path, "SELECT sample_id FROM samples")}
    assert 0 < len(before) < 12, "the kill should land midway"
    generated_before = log.read_text().split()

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout
    generated = log.read_text().split()
    regenerated = [s for s in generated[len(generated_before):] if s in before]
    assert regenerated == [], f"finished samples were generated again: {regenerated}"
    assert db_rows(tmp_path, "SELECT count(*), count(DISTINCT sample_id) FROM samples") == [(12, 12)]
    assert db_rows(tmp_path, "SELECT count(*) FROM runs") == [(1,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM sample_metrics") == [(24,)]
    assert not list(videos.glob(".*.tmp")), "stray temporary files"
    import hashlib
    for path, sha in db_rows(tmp_path, "SELECT path, sha256 FROM samples"):
        assert hashlib.sha256((tmp_path / "results" / path).read_bytes()).hexdigest() == sha


def test_failed_samples_are_recorded_and_the_rest_scored(vdmbench_cli, tmp_path):
    p = vdmbench_cli("run", "suite=tiny-flaky", "model=toy-flaky", check=True)
    rows = dict(db_rows(tmp_path, "SELECT sample_id, status FROM samples"))
    assert rows == {"good1-s0": "ok", "good2-s0": "ok", "bad-s0": "failed", "nan-s0": "failed"}
    errors = dict(db_rows(tmp_path, "SELECT sample_id, error FROM samples WHERE status = 'failed'"))
    assert "backend exploded on purpose" in errors["bad-s0"]
    assert "NaN" in errors["nan-s0"]
    assert db_rows(tmp_path, "SELECT n FROM run_metrics WHERE metric = 'flicker'") == [(2,)]
    assert "2 failed" in p.stdout


def test_folder_run_with_a_corrupt_video(vdmbench_cli, tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for text in ["a red circle moving right", "a blue square moving up"]:
        for seed in (0, 1):
            frames = torch.randint(0, 256, (6, 16, 16, 3), generator=g, dtype=torch.uint8)
            write_video(Video(frames, 8.0), folder / f"{text}-{seed}.mp4")
    (folder / "a green triangle moving left-0.mp4").write_bytes(b"\x00\x00\x00 garbage, not an mp4" * 20)
    cfg = tmp_path / "cfg" / "adapters"
    cfg.mkdir(parents=True)
    (cfg / "my-videos.yaml").write_text(f"name: my-videos\nadapter: folder\nparams: {{path: {folder}}}\n")
    p = vdmbench_cli("run", "suite=tiny", "model=my-videos", f"hydra.searchpath=[file://{tmp_path / 'cfg'}]")
    assert p.returncode == 0, p.stderr
    status = dict(db_rows(tmp_path, "SELECT sample_id, status FROM samples"))
    assert [k for k, v in status.items() if v == "ok"] == sorted(["a-s0", "a-s1", "b-s0", "b-s1"]) or \
        sorted(k for k, v in status.items() if v == "ok") == ["a-s0", "a-s1", "b-s0", "b-s1"]
    err = dict(db_rows(tmp_path, "SELECT sample_id, error FROM samples WHERE status='failed'"))
    assert "cannot" in err["c-s0"] or "corrupt" in err["c-s0"]
    assert "no video for prompt" in err["d-s0"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "suite=nope"], "unknown suite 'nope'"),
        (["run", "suite=tiny", "model=nope"], "unknown model 'nope'"),
        (["run", "suite=tiny", "model=toy-noise", "suite.metrics=[flicker,bogus]"], "unknown metric 'bogus'"),
        (["run", "suite=tiny", "model=toy-noise", "suite.num_frames=0"], "'num_frames' must be an integer >= 1"),
        (["export", "nothing-here"], "no results database"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(vdmbench_cli, args, message):
    p = vdmbench_cli(*args)
    assert p.returncode != 0
    lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], p.stderr


def test_malformed_suite_file(vdmbench_cli, tmp_path):
    d = tmp_path / "cfg" / "suites"
    d.mkdir(parents=True)
    (d / "broken.yaml").write_text("name: broken\nnum_frames: 8\nprompts: [\n")
    p = vdmbench_cli("run", "suite=broken", "model=toy-noise", f"hydra.searchpath=[file://{tmp_path / 'cfg'}]")
    assert p.returncode != 0
    assert "broken" in p.stderr


def test_export_formats(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    (run_id,), = db_rows(tmp_path, "SELECT run_id FROM runs")
    for fmt in ("csv", "parquet", "json"):
        vdmbench_cli("export", run_id, "--format", fmt, check=True)
    import pandas as pd

    df = pd.read_parquet(tmp_path / "results" / "exports" / f"{run_id}.samples.parquet")
    assert len(df) == 12 and "flicker" in df.columns
    doc = json.loads((tmp_path / "results" / "exports" / f"{run_id}.json").read_text())
    assert doc["run"]["run_id"] == run_id and len(doc["samples"]) == 12


def test_help_texts(vdmbench_cli):
    top = vdmbench_cli("--help", check=True).stdout
    for cmd in ("run", "show", "list", "export"):
        assert cmd in top
    assert "suite=NAME" in vdmbench_cli("run", "--help", check=True).stdout
    assert "tiny" not in vdmbench_cli("list", "suites", check=True).stdout  # fixtures are not shipped
    assert "smoke" in vdmbench_cli("list", "suites", check=True).stdout


def test_two_runs_on_one_database_both_complete(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "VDMBENCH_TEST_DELAY": "0.1"}
    base = [sys.executable, "-m", "vdmbench.cli.commands", "run", "suite=tiny", "progress=false",
            f"hydra.searchpath=[file://{FIXTURE_CONFIGS}]"]
    procs = [subprocess.Popen([*base, f"model={m}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for m in ("toy-slow", "toy-noise")]
    # Meanwhile a reader (the dashboard's way: short read-only connections) keeps getting answers.
    from vdmbench.store.database import Store

    reads = 0
    while any(p.poll() is None for p in procs):
        if (tmp_path / "results" / "vdmbench.duckdb").exists():
            Store(tmp_path / "results" / "vdmbench.duckdb", read_only=True).runs()
            reads += 1
        time.sleep(0.2)
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    assert reads > 0
    assert db_rows(tmp_path, "SELECT model, count(*) FROM samples JOIN runs USING (run_id) GROUP BY model ORDER BY model") == [
        ("toy-noise", 12), ("toy-slow", 12)]


def test_same_run_twice_at_once_never_shares_a_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "VDMBENCH_TEST_DELAY": "0.2"}
    cmd = [sys.executable, "-m", "vdmbench.cli.commands", "run", "suite=tiny", "model=toy-slow", "progress=false",
           f"hydra.searchpath=[file://{FIXTURE_CONFIGS}]"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    # Two separate runs (the second could not take the first's lock), each complete, no duplicates.
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'finished'") == [(2,)]
    assert db_rows(tmp_path, "SELECT run_id, count(*), count(DISTINCT sample_id) FROM samples GROUP BY run_id HAVING count(*) <> 12") == []

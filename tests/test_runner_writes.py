"""How the runner stores finished samples: on the main thread or in the background writer thread,
with the same results either way; write failures; a kill in the middle of writing; flat memory."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vdmbench.run.writer as writer_module
from tests.fixtures import REPO
from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import StoreError, VideoError
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store

SUITE = {"name": "w", "num_frames": 6, "height": 16, "width": 16, "fps": 8, "seeds": [0, 1], "metrics": ["flicker"]}
PROMPTS = [{"id": c, "text": f"prompt {c}"} for c in "abcdef"]
FLAKY = {"name": "flaky", "adapter": "callable", "params": {"target": "tests.fixtures.generators:flaky"}}
SQUARE = {"name": "square", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}


def run(results: Path, adapter=SQUARE, prompts=PROMPTS, **options):
    suite = parse_suite({**SUITE, "prompts": prompts})
    r = Runner(suite, adapter, RunOptions(results_dir=results, progress=False, **options))
    return r, r.run()


def stored(results: Path) -> dict:
    queries = {
        "samples": """SELECT sample_id, status, error, path, sha256, cache_key, preview_path IS NOT NULL AS preview
                      FROM samples ORDER BY sample_id""",
        "values": "SELECT sample_id, metric, value FROM sample_metrics ORDER BY sample_id, metric",
        "run_metrics": "SELECT metric, value, ci_low, ci_high, n FROM run_metrics ORDER BY metric",
        "generations": "SELECT cache_key, path, sha256 FROM generations ORDER BY cache_key",
        "status": "SELECT status FROM runs",
    }
    with Store(results / "vdmbench.duckdb", read_only=True)._connect() as con:
        out = {}
        for key, sql in queries.items():
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            out[key] = [dict(zip(names, row)) for row in cur.fetchall()]
    out["status"] = [r["status"] for r in out["status"]]
    return out


def test_background_and_main_thread_writes_store_the_same_results(tmp_path):
    prompts = [*PROMPTS[:4], {"id": "bad", "text": "please fail"}, {"id": "nan", "text": "a nan clip"}]
    _, serial = run(tmp_path / "serial", FLAKY, prompts, background_writes=False, flush_seconds=0)
    _, background = run(tmp_path / "background", FLAKY, prompts, background_writes=True)
    assert (serial.ok, serial.failed) == (background.ok, background.failed) == (8, 4)
    a, b = stored(tmp_path / "serial"), stored(tmp_path / "background")
    assert a == b  # the same rows, paths, file hashes, values and statistics
    assert a["status"] == ["finished"]
    for s in a["samples"]:
        if s["status"] == "ok":
            f = tmp_path / "background" / s["path"]
            assert hashlib.sha256(f.read_bytes()).hexdigest() == s["sha256"]
    # and a fully cached re-run (files read back, nothing generated) still gives the same values
    _, again = run(tmp_path / "background", FLAKY, prompts, background_writes=True, resume=False)
    assert again.generated == 4 and again.cached == 8  # only the failed ones are tried again
    assert [m["value"] for m in again.metrics] == [m["value"] for m in background.metrics]


@pytest.mark.parametrize("background", [False, True])
def test_a_file_that_cannot_be_written_is_a_failed_sample(tmp_path, monkeypatch, background):
    real = writer_module.write_video

    def write_video(video, path, **kw):
        if path.name.startswith("c-s1-"):
            raise VideoError(f"{path}: disk full (on purpose)")
        return real(video, path, **kw)

    monkeypatch.setattr(writer_module, "write_video", write_video)
    _, summary = run(tmp_path, background_writes=background)
    assert (summary.ok, summary.failed) == (11, 1)
    got = stored(tmp_path)
    failed = [s for s in got["samples"] if s["status"] == "failed"]
    assert [(s["sample_id"], s["path"], s["sha256"], s["preview"]) for s in failed] == [("c-s1", None, None, False)]
    assert "disk full (on purpose)" in failed[0]["error"]
    assert "c-s1" not in {v["sample_id"] for v in got["values"]}  # no metric values for it
    assert failed[0]["cache_key"] not in {g["cache_key"] for g in got["generations"]}  # nor a cache entry
    assert got["status"] == ["finished"] and [m["n"] for m in got["run_metrics"]] == [11, 11]
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("background", [False, True])
def test_a_failed_database_write_stops_the_run_and_what_was_recorded_is_whole(tmp_path, monkeypatch, background):
    real = Store.record_samples
    calls = []

    def record_samples(self, *args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise StoreError("database busy (on purpose)")
        return real(self, *args, **kw)

    monkeypatch.setattr(Store, "record_samples", record_samples)
    with pytest.raises(StoreError, match="on purpose"):
        run(tmp_path, background_writes=background, flush_seconds=0)
    got = stored(tmp_path)
    assert got["status"] == ["interrupted"]
    assert len(got["samples"]) == 2  # the first two flushes, complete; nothing after the failure
    for s in got["samples"]:
        assert hashlib.sha256((tmp_path / s["path"]).read_bytes()).hexdigest() == s["sha256"]
    monkeypatch.setattr(Store, "record_samples", real)
    _, summary = run(tmp_path, background_writes=background)  # and the run resumes from there
    assert summary.resumed and summary.ok == 12 and summary.generated == 10


def test_writer_queue_is_bounded(tmp_path, monkeypatch):
    """A generator faster than the writer waits for it: at most a couple of clips in memory."""
    import tests.fixtures.generators as gens

    real_write, real_square = writer_module.write_video, gens.moving_square
    generated, written, ahead = [], [], []

    def slow_write(video, path, **kw):
        time.sleep(0.05)
        written.append(path)
        return real_write(video, path, **kw)

    def counting_square(req):
        ahead.append(len(generated) - len(written))
        generated.append(req)
        return real_square(req)

    monkeypatch.setattr(writer_module, "write_video", slow_write)
    monkeypatch.setattr(gens, "moving_square", counting_square)
    prompts = [{"id": f"p{i}", "text": f"prompt {i}"} for i in range(10)]
    _, summary = run(tmp_path, SQUARE, prompts, background_writes=True)
    assert summary.ok == 20 and len(written) == 20
    # generated but not yet written when the next generate() starts: two queued chunks plus the
    # one being written (chunks of one clip); an unbounded queue would let this grow to ~19
    assert max(ahead) <= 4, ahead


CHILD = r"""
import os, sys, time
from pathlib import Path
import vdmbench.run.runner as R
import vdmbench.run.writer as W
from vdmbench.config.suite import parse_suite
results, hang_at = Path(sys.argv[1]), int(sys.argv[2])
real, calls = W.write_video, []
def write_video(video, path, **kw):
    calls.append(path)
    if len(calls) == hang_at:  # what a kill in the middle of encoding leaves: a partial temporary file
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{path.name}.{os.getpid()}.partial.tmp").write_bytes(b"half a video")
        (results / "writing").write_text(path.name)
        time.sleep(600)
    return real(video, path, **kw)
W.write_video = write_video
suite = parse_suite({"name": "w", "num_frames": 6, "height": 16, "width": 16, "fps": 8, "seeds": [0, 1],
                     "metrics": ["flicker"], "prompts": [{"id": c, "text": "prompt " + c} for c in "abcdef"]})
adapter = {"name": "square", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}
s = R.Runner(suite, adapter, R.RunOptions(results_dir=results, progress=False, flush_seconds=0,
                                          background_writes=True)).run()
print("resumed" if s.resumed else "new", s.generated)
"""


def test_sigkill_while_the_writer_thread_writes_then_resume(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    log = tmp_path / "gen.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "VDMBENCH_TEST_GENLOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(results), "5"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (results / "writing").exists() and proc.poll() is None:
        time.sleep(0.05)
    assert (results / "writing").exists(), "the writer never reached the 5th clip"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    db = results / "vdmbench.duckdb"
    before = Store(db, read_only=True)._query("SELECT sample_id, path, sha256 FROM samples")
    assert len(before) == 4  # each flushed right after its file; the 5th was being written
    for path, sha in zip(before.path, before.sha256):
        assert hashlib.sha256((results / path).read_bytes()).hexdigest() == sha
    writing = (results / "writing").read_text()
    assert not any(Path(p).name == writing for p in before.path)
    assert list(results.rglob("*.partial.tmp")), "the test should leave a half-written file behind"
    generated_before = log.read_text().split()

    done = subprocess.run([sys.executable, "-c", CHILD, str(results), "0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["resumed", "8"]
    regenerated = set(log.read_text().split()[len(generated_before):]) & set(before.sample_id)
    assert not regenerated, f"finished samples were generated again: {regenerated}"
    store = Store(db, read_only=True)
    assert store._query("SELECT count(*) AS n, count(DISTINCT sample_id) AS d FROM samples").values.tolist() == [[12, 12]]
    assert store._query("SELECT status FROM runs").status.tolist() == ["finished"]
    assert int(store._query("SELECT count(*) AS n FROM sample_metrics").n[0]) == 24
    for path, sha in store._query("SELECT path, sha256 FROM samples").values:
        assert hashlib.sha256((results / path).read_bytes()).hexdigest() == sha
    assert not list(results.rglob("*.tmp")), "stray temporary files"


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux-only")
def test_writer_thread_runs_at_lower_cpu_priority_than_generation(tmp_path, monkeypatch):
    """The writer yields the CPU to generation (its nice value is raised), the main thread keeps its own."""
    seen = {}
    store_files = writer_module.SampleFiles.store

    def spy(self, items, written):
        import threading

        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["thread"] = threading.current_thread().name
        return store_files(self, items, written)

    monkeypatch.setattr(writer_module.SampleFiles, "store", spy)
    main_before = os.getpriority(os.PRIO_PROCESS, 0)
    _, summary = run(tmp_path, prompts=PROMPTS[:1])
    assert summary.ok == 2
    assert seen["thread"] == "vdmbench-writer"
    assert seen["nice"] == max(main_before, writer_module._WRITER_NICE) > 0
    assert os.getpriority(os.PRIO_PROCESS, 0) == main_before

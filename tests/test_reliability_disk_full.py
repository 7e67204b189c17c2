"""Issue #15 item 4: a full (or failing) disk is the machine's failure, not the samples': the run
stops with one line and exit 2, stays resumable, and the same command finishes it with the same
leaderboard as an uninterrupted run. Never a sample stored as failed with "No space left"."""

import errno
import json

import duckdb
import pytest

from vdmbench.core.errors import VideoError
from vdmbench.core.faults import EnvironmentFailure, environment_failure, raise_if_environment

RUN = ("run", "suite=tiny", "model=toy-moving-square", "flush_seconds=0")


def rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def leaderboard(db):
    return rows(db, "SELECT metric, round(value, 12), n FROM run_metrics JOIN runs USING (run_id) "
                    "WHERE status = 'finished' ORDER BY metric")


def one_line_error(p, words):
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "invalidated" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("vdmbench: error:")]
    assert len(lines) == 1 and words in lines[0], p.stderr
    return lines[0]


@pytest.fixture
def clean_leaderboard(vdmbench_cli, tmp_path):
    vdmbench_cli(*RUN, "results_dir=clean", check=True)
    return leaderboard(tmp_path / "clean" / "vdmbench.duckdb")


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on device"), (errno.EIO, "input/output error"),
                                         (errno.EDQUOT, "disk quota exceeded"), (errno.EROFS, "read-only file system")])
def test_full_disk_while_writing_clips_stops_the_run_and_resume_finishes_it(
        vdmbench_cli, tmp_path, monkeypatch, clean_leaderboard, code, words):
    import vdmbench.run.writer as writer

    real, calls = writer.write_video, []

    def filling_up(video, path, *a, **kw):
        calls.append(path)
        if len(calls) > 5:
            raise VideoError(f"{path}: cannot write video") from OSError(code, "disk trouble", str(path))
        return real(video, path, *a, **kw)

    monkeypatch.setattr(writer, "write_video", filling_up)
    line = one_line_error(vdmbench_cli(*RUN), words)
    assert "run the same command again" in line and ".mp4" in line
    db = tmp_path / "results" / "vdmbench.duckdb"
    assert rows(db, "SELECT count(*) FROM samples WHERE status = 'failed'") == [(0,)]
    assert rows(db, "SELECT status FROM runs") == [("interrupted",)]

    monkeypatch.setattr(writer, "write_video", real)  # space freed
    p = vdmbench_cli(*RUN, check=True)
    assert "resumed" in p.stdout
    assert rows(db, "SELECT count(*), count(DISTINCT sample_id) FROM samples WHERE status = 'ok'") == [(12, 12)]
    assert rows(db, "SELECT count(*) FROM runs") == [(1,)]
    assert leaderboard(db) == clean_leaderboard


def test_full_disk_under_the_database_is_one_line_and_resumable(vdmbench_cli, tmp_path, monkeypatch, clean_leaderboard):
    import vdmbench.store.samples as samples

    real, calls = samples.record, []

    def full(con, *a, **kw):
        calls.append(1)
        if len(calls) > 2:
            raise duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write file '
                                              '"results/vdmbench.duckdb.wal": No space left on device')
        return real(con, *a, **kw)

    monkeypatch.setattr(samples, "record", full)
    line = one_line_error(vdmbench_cli(*RUN), "no space left on device")
    assert "results database" in line
    monkeypatch.setattr(samples, "record", real)
    vdmbench_cli(*RUN, check=True)
    db = tmp_path / "results" / "vdmbench.duckdb"
    assert rows(db, "SELECT count(*), count(DISTINCT sample_id) FROM samples WHERE status = 'ok'") == [(12, 12)]
    assert leaderboard(db) == clean_leaderboard


def test_invalidated_database_is_one_line(vdmbench_cli, monkeypatch):
    import vdmbench.store.samples as samples

    def invalid(con, *a, **kw):
        raise duckdb.FatalException("FATAL Error: Failed: database has been invalidated because of a previous fatal error")

    monkeypatch.setattr(samples, "record", invalid)
    one_line_error(vdmbench_cli(*RUN), "results database")


def test_samples_failed_by_a_full_disk_earlier_are_retried(vdmbench_cli, tmp_path, clean_leaderboard):
    """Rows an older version stored as failed with "No space left on device" (or a killed worker)."""
    vdmbench_cli(*RUN, check=True)
    db = tmp_path / "results" / "vdmbench.duckdb"
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM sample_metrics WHERE sample_id IN ('a-s0', 'b-s1')")
    con.execute("UPDATE samples SET status = 'failed', path = NULL, error = 'VideoError: x.mp4: cannot write video "
                "(OSError: [Errno 28] No space left on device)' WHERE sample_id = 'a-s0'")
    con.execute("UPDATE samples SET status = 'failed', path = NULL, "
                "error = 'RuntimeError: DataLoader worker (pid 7) is killed by signal: Killed.' WHERE sample_id = 'b-s1'")
    con.execute("UPDATE runs SET status = 'interrupted'")
    con.close()
    vdmbench_cli(*RUN, check=True)
    assert rows(db, "SELECT count(*) FROM samples WHERE status = 'ok'") == [(12,)]
    assert leaderboard(db) == clean_leaderboard


def test_environment_failure_is_found_in_the_cause_chain():
    e = VideoError("clip.mp4: cannot write video")
    e.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert environment_failure(e) == ("no space left on device", "free space")
    assert environment_failure(VideoError("clip.mp4: corrupt")) is None
    with pytest.raises(EnvironmentFailure, match="no space left on device while writing clip.mp4; free space"):
        raise_if_environment(e, "clip.mp4")
    raise_if_environment(ValueError("bad frames"), "clip.mp4")  # a sample's own failure: nothing raised
    assert json.dumps(str(EnvironmentFailure("x")))


def test_a_killed_worker_inside_generation_stops_the_run_and_resume_finishes_it(
        vdmbench_cli, tmp_path, monkeypatch, clean_leaderboard):
    """A backend's worker process killed (out of memory) is the machine's failure: the run stops
    with one line (exit 2), what finished is stored, nothing is stored as failed, and the same
    command generates the rest, with the leaderboard of an uninterrupted run."""
    import tests.fixtures.generators as generators

    real, calls = generators.moving_square, []

    def killed(req):
        calls.append(req.seed)
        if len(calls) > 5:
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed.")
        return real(req)

    monkeypatch.setattr(generators, "moving_square", killed)
    line = one_line_error(vdmbench_cli(*RUN), "a worker process was killed while generating samples")
    assert "run the same command again" in line
    db = tmp_path / "results" / "vdmbench.duckdb"
    assert rows(db, "SELECT count(*) FROM samples WHERE status = 'failed'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM samples WHERE status = 'ok'") == [(5,)]
    assert rows(db, "SELECT status FROM runs") == [("interrupted",)]
    monkeypatch.setattr(generators, "moving_square", real)
    p = vdmbench_cli(*RUN, check=True)
    assert "resumed" in p.stdout
    assert rows(db, "SELECT count(*), count(DISTINCT sample_id) FROM samples WHERE status = 'ok'") == [(12, 12)]
    assert leaderboard(db) == clean_leaderboard

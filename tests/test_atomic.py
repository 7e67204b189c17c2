"""The one atomic-write helper: all or nothing, temporary names that always fit, leftovers of a
killed writer removed by pid."""

import os
import subprocess
import sys

import pytest

from vdmbench.core import atomic


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic.write_text(target, "old")
    atomic.write_text(target, "new", fsync=True)
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


@pytest.mark.parametrize("name", ["x" * 251 + ".mp4", "é" * 125 + ".mp4", "a"])
def test_temporary_names_fit_the_file_name_limit_whatever_the_target(tmp_path, name):
    assert len(name.encode()) <= 255
    tmp = atomic.temp_path(tmp_path / name)
    assert len(tmp.name.encode()) <= atomic.NAME_MAX_BYTES and tmp.parent == tmp_path
    assert atomic.temp_owner(tmp.name) == os.getpid()
    atomic.write_text(tmp_path / name, "ok")  # the real file system agrees
    assert (tmp_path / name).read_text() == "ok"


def test_symlink_targets_are_placed_atomically(tmp_path):
    src = tmp_path / "src.mp4"
    src.write_bytes(b"v")
    with atomic.atomic_path(tmp_path / "link.mp4") as tmp:
        os.symlink(src, tmp)
    assert (tmp_path / "link.mp4").is_symlink() and (tmp_path / "link.mp4").read_bytes() == b"v"


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f".clip.mp4.~{dead_pid}~0123abcd.tmp").write_text("x")
        (tmp_path / f".clip.mp4.~{live.pid}~0123abcd.tmp").write_text("x")
        (tmp_path / f".old-style.mp4.{dead_pid}.tmp").write_text("x")  # names of earlier versions
        (tmp_path / "clip.mp4").write_text("kept")
        atomic.remove_stale_temporaries(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".clip.mp4.~{live.pid}~0123abcd.tmp", "clip.mp4"])
    finally:
        live.kill()
        live.wait()

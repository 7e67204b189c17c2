"""Issue #15 item 5: a truncated or damaged results file is checked before anything is written: a
one-line error, exit 2, and the file is never modified."""

import hashlib

import pytest

from vdmbench.core.errors import StoreError
from vdmbench.store.database import Store


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def results(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    return tmp_path / "results"


def one_error_line(p):
    lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1, (p.returncode, p.stderr)
    return lines[0]


def test_truncated_file_is_refused_and_left_as_it_was(vdmbench_cli, results):
    db = results / "vdmbench.duckdb"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    before = digest(db)
    for args in (["run", "suite=tiny", "model=toy-moving-square"], ["list", "runs"], ["show"]):
        line = one_error_line(vdmbench_cli(*args))
        assert "truncated" in line and "move it aside" in line, line
    assert digest(db) == before
    assert not list(results.glob("*.wal"))


def test_damaged_blocks_give_one_line_not_a_traceback(vdmbench_cli, results):
    db = results / "vdmbench.duckdb"
    data = bytearray(db.read_bytes())
    for i in range(3 * 4096 + 100, len(data), 4096):  # scribble over every block, keep the headers
        data[i:i + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    before = digest(db)
    line = one_error_line(vdmbench_cli("list", "runs"))
    assert "vdmbench: error:" in line and "Traceback" not in line
    assert ("damaged" in line or "cannot open" in line or "truncated" in line), line
    one_error_line(vdmbench_cli("run", "suite=tiny", "model=toy-moving-square"))
    assert digest(db) == before


def test_healthy_file_passes_the_check(results):
    store = Store(results / "vdmbench.duckdb")  # opens for writing: checked, then migrated
    assert store.count_runs() == 1
    with pytest.raises(StoreError, match="no results database here yet"):
        Store(results / "nope.duckdb", read_only=True)


def test_busy_detection_matches_only_lock_conflicts():
    from vdmbench.store.engine import _is_lock_error

    held = ('IO Error: Could not set lock on file "r.duckdb": Conflicting lock is held in python (PID 7). '
            "See also https://duckdb.org/docs/connect/concurrency")
    assert _is_lock_error(Exception(held))
    for other in ("IO Error: Corrupt database file: computed checksum does not match stored checksum in block 3",
                  "Could not read enough bytes from file: attempted to read 262144 bytes (block 12)"):
        assert not _is_lock_error(Exception(other))

import duckdb
import pytest

from vdmbench.errors import StoreError
from vdmbench.store import SCHEMA_VERSION, SampleRecord, Store


def test_schema_created_and_versioned(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    assert store.schema_version() == SCHEMA_VERSION
    tables = set(store.query("SELECT table_name FROM information_schema.tables").table_name)
    assert {"runs", "samples", "sample_metrics", "run_metrics", "schema_version", "generations"} <= tables
    Store(tmp_path / "r.duckdb")  # reopening does not migrate twice
    assert len(store.query("SELECT * FROM schema_version")) == 1


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.duckdb"
    Store(path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE schema_version SET version = 999")
    con.close()
    with pytest.raises(StoreError, match="newer vdmbench"):
        Store(path)


def _run(store, run_id="r1"):
    store.create_run({
        "run_id": run_id, "suite": "s", "suite_version": 1, "suite_hash": "h", "model": "m'; DROP TABLE runs; --",
        "adapter_config": {"name": "m"}, "config_hash": "c", "status": "running", "started_at": "2026-01-01 00:00:00",
        "git_sha": None, "env": {}, "shard": None, "suite_config": {},
    })


def test_writes_are_parameterized_and_idempotent(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    rec = SampleRecord("a-s0", "a", "it's a \"quoted\" prompt; DROP TABLE samples", 0, "t2v", "ok")
    store.record_samples("r1", [rec], {"a-s0": {"flicker": 0.5}})
    store.record_samples("r1", [rec], {"a-s0": {"flicker": 0.5}})  # a retried batch: no duplicates
    assert len(store.query("SELECT * FROM samples")) == 1
    assert len(store.query("SELECT * FROM sample_metrics")) == 1
    assert store.get_run("r1")["model"] == "m'; DROP TABLE runs; --"
    assert store.query("SELECT prompt FROM samples").prompt[0] == rec.prompt


def test_failed_transaction_writes_nothing(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    rec = SampleRecord("a-s0", "a", "p", 0, "t2v", "ok")
    with pytest.raises(Exception):
        store.record_samples("r1", [rec], {"a-s0": {"flicker": "not a number"}})
    assert store.query("SELECT count(*) AS n FROM samples").n[0] == 0


def test_read_only_store_needs_existing_file(tmp_path):
    with pytest.raises(StoreError, match="no results database"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def _hold_lock(path, seconds):
    import subprocess
    import sys

    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('locked', flush=True); time.sleep({seconds})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_busy_database_gives_clear_error_then_waits(tmp_path):
    path = tmp_path / "r.duckdb"
    Store(path)
    proc = _hold_lock(path, 3)
    try:
        with pytest.raises(StoreError, match="database busy"):
            Store(path, busy_timeout=0.5)
        store = Store(path, busy_timeout=30)  # retries until the other process lets go
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        proc.kill()
        proc.wait()


def test_run_prefix_lookup(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store, "20260101-aaa")
    assert store.get_run("20260101")["run_id"] == "20260101-aaa"
    with pytest.raises(StoreError, match="no run"):
        store.get_run("zzz")

import json
from pathlib import Path

import duckdb
import pytest

from tests._old_schema import old_schema_db
from vdmbench.core.errors import StoreError
from vdmbench.store.database import SCHEMA_VERSION, SampleRecord, Store


def test_schema_created_and_versioned(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    assert store.schema_version() == SCHEMA_VERSION
    tables = set(store._query("SELECT table_name FROM information_schema.tables").table_name)
    assert {"runs", "samples", "sample_metrics", "run_metrics", "schema_version", "generations"} <= tables
    Store(tmp_path / "r.duckdb")  # reopening does not migrate twice
    assert len(store._query("SELECT * FROM schema_version")) == 1


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
        "model_config": {"name": "m"}, "config_hash": "c", "status": "running", "started_at": "2026-01-01 00:00:00",
        "git_sha": None, "env": {}, "shard": None, "suite_config": {},
    })


def test_writes_are_parameterized_and_idempotent(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    rec = SampleRecord("a-s0", "a", "it's a \"quoted\" prompt; DROP TABLE samples", 0, "t2v", "ok")
    store.record_samples("r1", [rec], {"a-s0": {"flicker": 0.5}})
    store.record_samples("r1", [rec], {"a-s0": {"flicker": 0.5}})  # a retried batch: no duplicates
    assert len(store._query("SELECT * FROM samples")) == 1
    assert len(store._query("SELECT * FROM sample_metrics")) == 1
    assert store.get_run("r1")["model"] == "m'; DROP TABLE runs; --"
    assert store._query("SELECT prompt FROM samples").prompt[0] == rec.prompt


def test_failed_transaction_writes_nothing(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    rec = SampleRecord("a-s0", "a", "p", 0, "t2v", "ok")
    with pytest.raises(Exception):
        store.record_samples("r1", [rec], {"a-s0": {"flicker": "not a number"}})
    assert store._query("SELECT count(*) AS n FROM samples").n[0] == 0


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


def _other_process_can_write(path) -> bool:
    import subprocess
    import sys

    code = f"import duckdb; c = duckdb.connect({str(path)!r}); c.execute('SELECT 1'); c.close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_the_file_is_let_go_after_each_operation_and_each_session(tmp_path):
    path = tmp_path / "r.duckdb"
    store = Store(path)
    _run(store)
    assert _other_process_can_write(path)
    with store.session():
        assert store.get_run("r1")["run_id"] == "r1"
        assert not _other_process_can_write(path)  # held for the whole session
        store.record_samples("r1", [SampleRecord("a-s0", "a", "p", 0, "t2v", "ok")], {"a-s0": {"m": 1.0}})
    assert _other_process_can_write(path)
    assert len(Store(path, read_only=True)._query("SELECT * FROM samples")) == 1


def test_session_transactions_nest_and_roll_back_together(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    other = Store(tmp_path / "other.duckdb")
    _run(store)
    with store.session():
        with pytest.raises(ValueError):
            with store._transaction():
                store.record_samples("r1", [SampleRecord("a-s0", "a", "p", 0, "t2v", "ok")], {})  # nested
                other.record_samples("x", [SampleRecord("b-s0", "b", "p", 0, "t2v", "ok")], {})  # its own
                raise ValueError("roll back")
        assert store._query("SELECT count(*) AS n FROM samples").n[0] == 0
        assert other._query("SELECT count(*) AS n FROM samples").n[0] == 1
        store.record_samples("r1", [SampleRecord("a-s0", "a", "p", 0, "t2v", "ok")], {})
    assert store._query("SELECT count(*) AS n FROM samples").n[0] == 1


def test_many_rows_and_repeated_keys_in_one_write(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    recs = [SampleRecord(f"s{i}", f"p{i}", f"prompt {i}", i, "t2v", "ok", tags=("x",)) for i in range(300)]
    values = {r.sample_id: {"flicker": i / 300, "motion": 1.0} for i, r in enumerate(recs)}
    gens = [(f"k{i % 200}", f"v{i}.mp4", "0" * 64, float(i)) for i in range(300)]  # keys repeat: last wins
    store.record_samples("r1", recs, values, gens)
    assert store._query("SELECT count(*) AS n FROM samples").n[0] == 300
    assert store._query("SELECT count(*) AS n FROM sample_metrics").n[0] == 600
    g = store.lookup_generations(["k5", "k150"])
    assert (g["k5"]["path"], g["k150"]["path"]) == ("v205.mp4", "v150.mp4")
    assert store._query("SELECT value FROM sample_metrics WHERE sample_id = 's150' AND metric = 'flicker'").value[0] == 0.5


def test_finish_run_records_metrics_status_and_counts_at_once(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    _run(store)
    store.record_samples("r1", [SampleRecord("a-s0", "a", "p", 0, "t2v", "ok"),
                                SampleRecord("b-s0", "b", "p", 0, "t2v", "failed", error="x")], {})
    with pytest.raises(Exception):  # a bad row: neither metrics nor the finished status
        store.finish_run("r1", [{"metric": "flicker", "value": "not a number"}])
    assert store.get_run("r1")["status"] == "running"
    assert store.finish_run("r1", [{"metric": "flicker", "value": 0.9, "n": 1}]) == (1, 1)
    assert store.get_run("r1")["status"] == "finished"
    assert store._query("SELECT value FROM run_metrics").value.tolist() == [0.9]


def test_a_plain_duckdb_connection_of_this_process_is_shared(tmp_path):
    path = tmp_path / "r.duckdb"
    store = Store(path)
    con = duckdb.connect(str(path))  # e.g. a user's notebook; DuckDB will not attach the file twice
    try:
        _run(store)
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    finally:
        con.close()
    assert store.get_run("r1")["run_id"] == "r1"


def test_threads_and_a_forked_child_use_the_store(tmp_path):
    import os
    import threading

    path = tmp_path / "r.duckdb"
    store = Store(path)
    _run(store)
    errors = []

    def reader():
        try:
            for _ in range(20):
                assert Store(path, read_only=True).get_run("r1")["run_id"] == "r1"
                store._query("SELECT count(*) FROM samples")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    pid = os.fork()
    if pid == 0:  # the child has its own DuckDB instance
        try:
            Store(path).record_samples("r1", [SampleRecord("c-s0", "c", "p", 0, "t2v", "ok")], {})
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert store._query("SELECT sample_id FROM samples").sample_id.tolist() == ["c-s0"]


def test_schema_2_database_is_migrated_and_keeps_its_rows(tmp_path):
    """A database written before samples/generations had `notes` opens, gains the columns, keeps rows."""

    path = tmp_path / "old.duckdb"
    con = old_schema_db(path, 2)
    con.execute("INSERT INTO generations VALUES ('k', 'v.mp4', ?, 1.0, now())", ["0" * 64])
    con.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 5
    assert store.lookup_generations(["k"])["k"] == {"path": "v.mp4", "sha256": "0" * 64, "gen_seconds": 1.0, "notes": None}
    _run(store)
    store.record_samples("r1", [SampleRecord("a-s0", "a", "p", 0, "t2v", "ok", notes={"unknown_words": ["x"]})], {},
                         [("k2", "w.mp4", "1" * 64, 2.0, {"unknown_words": ["x"]})])
    assert json.loads(store._query("SELECT notes FROM samples").notes[0]) == {"unknown_words": ["x"]}
    assert store.lookup_generations(["k2"])["k2"]["notes"] == {"unknown_words": ["x"]}


def test_schema_3_database_renames_adapter_config_and_keeps_the_runs(tmp_path):
    """Schema 4 calls the runs' model config what the command line calls it (model=): a file of
    schema 3 opens with its runs intact under the new column name; old baseline files still load."""
    from vdmbench.gate.baseline import load_baseline

    path = tmp_path / "old.duckdb"
    con = old_schema_db(path, 3)
    con.execute("""INSERT INTO runs (run_id, suite, suite_hash, model, adapter_config, config_hash, status)
                   VALUES ('r0', 's', 'h', 'm', '{"name": "m", "adapter": "callable"}', 'c', 'finished')""")
    con.close()
    store = Store(path)
    assert store.schema_version() == 5
    assert store.get_run("r0").model_config == {"name": "m", "adapter": "callable"}
    old = load_baseline(Path(__file__).resolve().parent / "fixtures" / "baseline-smoke-schema3.json")  # written at schema 3
    assert old.run["model_config"]["name"] == "reference-unet3d" and "adapter_config" not in old.run

"""Taking a results file: connections, the per-process attach, sessions, transactions, busy retry.

Every write is parameterized SQL inside a transaction. DuckDB lets only one process hold a file
open for writing, so access is short-lived: each operation (or a short `session()`) takes the file,
works and lets go, and a busy file is retried with backoff before a clear "database busy" error.
The dashboard opens the file read-only the same way, so it can read between a run's writes.

Taking the file: one in-memory DuckDB per process ATTACHes it for the operation and DETACHes it
after, which releases the file lock like closing a connection does. Opening a connection to the
file instead (duckdb.connect) builds DuckDB's whole catalog each time: ~11 ms per open against
<1 ms per attach, the bulk of a small write (measured: 16 ms vs 4.4 ms).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from vdmbench.core.errors import StoreError
from vdmbench.core.faults import raise_if_environment

Connection = duckdb.DuckDBPyConnection


def _is_lock_error(e: Exception) -> bool:
    """Another process holds the file (DuckDB: "Could not set lock on file ...: Conflicting lock is
    held"). Only those words: a damaged file's errors mention "block" and must not wait as busy."""
    msg = str(e).lower()
    return ("could not set lock" in msg or "conflicting lock" in msg or "being used by another" in msg
            or "resource temporarily unavailable" in msg)


def _open_elsewhere_in_process(e: Exception) -> bool:
    """DuckDB refuses to attach a file that a duckdb.connect() of this process holds open."""
    msg = str(e).lower()
    return "unique file handle conflict" in msg or "already attached" in msg


class _Busy(Exception):
    """The file is attached read-only in this process and a writer wants it: wait, like a lock."""


class _ProcessDuckDB:
    """The process's in-memory DuckDB, to which results files are attached while in use: each
    user gets its own cursor (its own transactions, any thread), a file is attached by its first
    user and detached by its last. A forked child starts a fresh instance and never touches (or
    destroys, which could checkpoint files) the parent's copy."""

    def __init__(self) -> None:
        self._orphans: list[Any] = []
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        self.lock = threading.Lock()  # guards con (ATTACH/DETACH) and attached
        self.con: Connection | None = None
        self.attached: dict[str, list] = {}  # alias -> [users, read_only]

    def _after_fork(self) -> None:
        if self.con is not None:
            self._orphans.append(self.con)
        self._reset()

    def acquire(self, path: Path, read_only: bool) -> tuple[str, Connection]:
        """A cursor whose current database is the file at `path`; give it back with release()."""
        alias = "db_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
        with self.lock:
            if self.con is None:
                self.con = duckdb.connect(":memory:")
            entry = self.attached.get(alias)
            if entry is None:
                self.con.execute(f"ATTACH ? AS {alias}{' (READ_ONLY)' if read_only else ''}", [str(path)])
                entry = self.attached[alias] = [0, read_only]
            elif entry[1] and not read_only:
                raise _Busy(f"{path}: attached read-only by another thread of this process")
            entry[0] += 1
            try:
                cur = self.con.cursor()
            except BaseException:
                self._drop(alias)
                raise
        try:
            cur.execute(f"USE {alias}")
        except BaseException:
            self.release(alias, cur)
            raise
        return alias, cur

    def release(self, alias: str, cur: Connection) -> None:
        try:
            cur.close()
        finally:
            with self.lock:
                self._drop(alias)

    def _drop(self, alias: str) -> None:
        entry = self.attached[alias]
        entry[0] -= 1
        if entry[0] > 0:
            return
        del self.attached[alias]
        con = self.con
        if con is None:
            return
        try:
            con.execute(f"DETACH {alias}")
        except BaseException:
            # Never keep a file locked by accident: drop the whole instance (closing it releases
            # every file); the next user starts a fresh one.
            self.con = None
            self.attached.clear()
            try:
                con.close()
            except Exception:
                pass
            raise


_DUCKDB = _ProcessDuckDB()


class Engine:
    """Access to one results file: short-lived connections with busy retry, sessions that keep
    one connection for several operations, and transactions (nested ones join the session's)."""

    def __init__(self, path: Path, *, read_only: bool, busy_timeout: float) -> None:
        self.path = path
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._held = threading.local()  # the connection of an open session(), per thread

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to the file: the session's when this thread has one open, else a new one."""
        held = getattr(self._held, "con", None)
        if held is not None:  # inside session(): reuse its connection
            yield held
            return
        with self._open() as con:
            yield con

    @contextmanager
    def session(self) -> Iterator[None]:
        """Every operation of this thread inside the block uses one connection and keeps the file
        in between. Keep the block short: other processes wait while it holds the file."""
        if getattr(self._held, "con", None) is not None:
            yield
            return
        with self._open() as con:
            self._held.con, self._held.in_transaction = con, False
            try:
                yield
            finally:
                self._held.con = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside a transaction: committed when the block ends, rolled back when it
        raises. Inside a session's transaction it is part of that one (all or nothing together)."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        with self.connect() as con:
            in_session = con is getattr(self._held, "con", None)
            if in_session and self._held.in_transaction:  # nested: part of the session's transaction
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            if in_session:
                self._held.in_transaction = True
            try:
                yield con
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # a failed write (a full disk) may have invalidated the database: the error below says why
                raise
            finally:
                if in_session:
                    self._held.in_transaction = False
            con.execute("COMMIT")

    @contextmanager
    def _open(self) -> Iterator[Connection]:
        """A connection whose current database is the file, until the block ends."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.02
        alias: str | None
        con: Connection | None
        while True:
            try:
                alias, con = _DUCKDB.acquire(self.path, self.read_only)
                break
            except (duckdb.Error, _Busy) as e:
                if isinstance(e, duckdb.Error) and _open_elsewhere_in_process(e):
                    alias, con = None, None  # a plain duckdb.connect() of this process has it: share that
                    break
                if isinstance(e, duckdb.Error) and not _is_lock_error(e):
                    raise_if_environment(e, f"the results database {self.path}")
                    raise StoreError(f"{self.path}: cannot open the results database ({e})") from e
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: database busy (another process holds it for writing) for "
                        f"{self.busy_timeout:.0f} s; wait for it to finish or use another db=..."
                    ) from e
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        try:
            if con is None or alias is None:
                with self._connect_directly() as direct:
                    yield direct
                return
            try:
                yield con
            finally:
                _DUCKDB.release(alias, con)
        except duckdb.Error as e:
            # A full or failing disk (DuckDB then invalidates the database): one line that says
            # what to do, and the run stays resumable.
            raise_if_environment(e, f"the results database {self.path}")
            if isinstance(e, (duckdb.IOException, duckdb.InternalException, duckdb.SerializationException)):
                # A block that cannot be read: the file is truncated or damaged (not busy, not a bug
                # of the caller). One line that says what to do, instead of DuckDB's traceback.
                raise StoreError(unreadable(self.path, e)) from e
            raise

    @contextmanager
    def _connect_directly(self) -> Iterator[Connection]:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as e:
            raise_if_environment(e, f"the results database {self.path}")
            raise StoreError(f"{self.path}: cannot open the results database ({e})") from e
        try:
            yield con
        finally:
            con.close()


_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the first block


def unreadable(path: Path, e: BaseException) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return (f"{path}: the results database cannot be read ({first}); it is truncated or damaged. "
            "Restore it from a copy, or move it aside to start a new one")


def check_intact(con: Connection, path: Path) -> None:
    """Refuse a file shorter than the blocks its header lists (a truncated copy, a full disk),
    before anything is written into it: DuckDB would otherwise append to it and fail later."""
    # Every block in use lies in the file, so the file holds at least that many (free blocks at
    # the end may have been cut off by a checkpoint: total_blocks would over-count). A WAL beside
    # it holds blocks not yet written back: no conclusion then.
    if not path.exists() or path.with_name(path.name + ".wal").exists():
        return
    row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    if row is None:
        return
    expected = _HEADER_BYTES + int(row[0]) * int(row[1])
    size = path.stat().st_size
    if size < expected:
        raise StoreError(f"{path}: the results database is truncated ({size:,} of {expected:,} bytes) and was not "
                         "modified. Restore it from a copy, or move it aside to start a new one")


def insert_rows(con: Connection, head: str, row: str, rows: Sequence[Sequence[Any]], per_statement: int = 128) -> None:
    """`head VALUES row, row, ...` for many rows, parameterized, a bounded number per statement:
    one statement per ~hundred rows instead of one per row (DuckDB spends ~3 ms on each INSERT OR
    REPLACE statement, a few rows cost about the same). The rows must not repeat a primary key
    (one statement cannot replace the same row twice)."""
    for i in range(0, len(rows), per_statement):
        part = rows[i:i + per_statement]
        con.execute(f"{head} {', '.join([row] * len(part))}", [v for r in part for v in r])

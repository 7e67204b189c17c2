"""Storing finished samples: the lossless clip, its hash and preview, then the database rows,
in a background thread while the main thread generates the next batch.

A row is committed only after its files are complete and synced, so a SIGKILL (or a power cut) at
any moment leaves the database consistent.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vdmbench.core.errors import VdmbenchError, error_text
from vdmbench.core.faults import raise_if_environment
from vdmbench.core.hashing import sha256_file
from vdmbench.core.video import Video, write_preview, write_video
from vdmbench.run.plan import PlannedSample
from vdmbench.run.timing import Timings
from vdmbench.store.database import SampleRecord, Store


@dataclass
class FinishedSample:
    """A sample of a chunk, generated (or read from the cache) and scored, not yet stored."""

    planned: PlannedSample
    video: Video | None
    fresh: bool  # newly generated: its lossless file is still to be written
    info: dict[str, Any]  # path, sha256 (cached clips), gen_seconds
    error: str | None
    values: dict[str, float]


class SampleFiles:
    """Where a run's clips and previews go, and how their paths are stored: relative to the
    database's folder, so a results folder can be moved as a whole."""

    def __init__(self, video_dir: Path, preview_dir: Path, db_dir: Path, *, task: str, preview: bool) -> None:
        self.video_dir, self.preview_dir, self.db_dir = Path(video_dir), Path(preview_dir), Path(db_dir)
        self.task, self.preview = task, preview

    def relative(self, path: Path) -> str:
        return os.path.relpath(Path(path).resolve(), self.db_dir)

    def absolute(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.db_dir / p

    def store(self, items: Sequence[FinishedSample], written: list[Path]) -> tuple[list[SampleRecord], dict, list]:
        """Write the lossless file, hash and preview of each newly generated sample (adding the
        files to `written`, to be synced before the rows are committed); returns the rows. A sample
        whose file cannot be written is recorded as failed, unless the machine failed (a full
        disk, EIO, a read-only file system): that raises EnvironmentFailure and stops the run, which
        stays resumable. Runs in the writer."""
        records: list[SampleRecord] = []
        values: dict[str, dict[str, float]] = {}
        generations: list[tuple] = []
        for it in items:
            p, info, error = it.planned, dict(it.info), it.error
            video = it.video
            stored = video is not None  # generated or cached; a clip that failed scoring is kept too
            if video is not None and it.fresh:
                target = self.video_dir / f"{p.prompt.id}-s{p.seed}-{p.cache_key[:12]}.mp4"
                try:
                    path = write_video(video, target)
                    written.append(path)
                    info.update(path=path, sha256=sha256_file(path))
                    generations.append((p.cache_key, self.relative(path), info["sha256"], info["gen_seconds"],
                                        info.get("notes")))
                except Exception as e:
                    raise_if_environment(e, str(target))  # not the sample's fault: never stored as failed
                    error, stored = error_text(e), False
            if video is not None and stored and self.preview:
                prev = self.preview_dir / f"{p.cache_key}.mp4"
                if not prev.is_file():
                    try:
                        written.append(write_preview(video, prev))
                    except VdmbenchError as e:
                        raise_if_environment(e, str(prev))
                        # otherwise: a preview is a convenience; the lossless file is the result
                info["preview"] = prev
            ok = error is None
            records.append(SampleRecord(
                sample_id=p.sample_id, prompt_id=p.prompt.id, prompt=p.prompt.text, seed=p.seed,
                task=self.task, status="ok" if ok else "failed",
                path=self.relative(info["path"]) if info.get("path") else None, sha256=info.get("sha256"),
                gen_seconds=info.get("gen_seconds"), error=error, cache_key=p.cache_key,
                preview_path=self.relative(info["preview"]) if info.get("preview") and ok else None,
                tags=p.prompt.tags, notes={**(info.get("notes") or {}), **info.get("metric_notes", {})} or None,
            ))
            if ok:
                values[p.sample_id] = it.values
        return records, values, generations


class _PendingWrites:
    """Finished samples not yet in the database (see RunOptions.flush_seconds)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.records: list[SampleRecord] = []
        self.metrics: dict[str, dict[str, float]] = {}
        self.generations: list[tuple] = []  # (cache_key, path, sha256, gen_seconds, notes)
        self.written: list[Path] = []  # files to sync to disk before the rows are committed
        self.since = time.monotonic()

    def add(self, records, metrics, generations) -> None:
        self.records += records
        self.metrics.update(metrics)
        self.generations += generations

    def due(self, seconds: float) -> bool:
        return time.monotonic() - self.since >= seconds

    def wait(self, seconds: float) -> float | None:
        """How long the writer may wait for more work before this must be flushed (None: forever)."""
        if not self.records:
            return None
        return max(0.0, seconds - (time.monotonic() - self.since))


_STOP = object()


class SampleWriter:
    """Stores finished samples in order: files first (temporary name, then rename), then, at most
    every `flush_seconds` and once at the end, the files are synced to disk (all at once) and the
    rows written in one transaction.

    With background writes this runs in one thread fed by a small bounded queue, so writing
    overlaps the next generate() and memory stays flat (the main thread waits when the writer is
    two chunks behind); without, `submit` does the work at once. A row is committed only after its
    files are complete and synced, so a SIGKILL (or a power cut) at any moment leaves the database
    consistent: a sample whose row was not committed is generated again on resume, its file
    replaced atomically, a temporary file deleted by its pid. A file that cannot be written makes a
    failed sample; a failed database write, or a full or failing disk, stops the run.
    """

    def __init__(self, files: SampleFiles, store: Store, run_id: str, *, flush_seconds: float,
                 background: bool, timings: Timings) -> None:
        self.files, self.store, self.run_id = files, store, run_id
        self.flush_seconds, self.timings = flush_seconds, timings
        self.pending = _PendingWrites()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if background:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            # A daemon: an interpreter that exits abruptly is not kept alive by it; close() joins it.
            self.thread = threading.Thread(target=self._loop, name="vdmbench-writer", daemon=True)
            self.thread.start()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, items: list[FinishedSample]) -> None:
        if self.thread is None:
            self._handle(items)
            return
        with self.timings.stage("wait_writer"):
            while True:  # never block forever on a writer that has died
                self.check()
                try:
                    self.queue.put(items, timeout=0.5)
                    return
                except queue.Full:
                    if not self.thread.is_alive():
                        raise RuntimeError("the vdmbench writer thread stopped unexpectedly") from self.error

    def close(self, reraise: bool = True) -> None:
        """Write everything submitted and flush; raise the writer's error (if `reraise`)."""
        if self.thread is not None:
            with self.timings.stage("wait_writer"):
                self._close()
        else:
            self._close()
        if reraise:
            self.check()

    def _close(self) -> None:
        if self.thread is not None:
            while self.thread.is_alive():
                try:
                    self.queue.put(_STOP, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self.thread.join()
        elif self.error is None:  # after a failed database write, nothing more is written
            try:
                self._flush()
            except BaseException as e:
                self.error = e

    def _handle(self, items: list[FinishedSample]) -> None:
        with self.timings.stage("write_files"):
            records, values, generations = self.files.store(items, self.pending.written)
        self.pending.add(records, values, generations)
        if self.pending.due(self.flush_seconds):
            self._flush()

    def _flush(self) -> None:
        p = self.pending
        if p.records:
            with self.timings.stage("db_writes"):
                try:
                    _sync_to_disk(p.written)  # the files (and their renames) before the rows naming them
                    self.store.record_samples(self.run_id, p.records, p.metrics, p.generations)
                except BaseException as e:
                    self.error = e
                    raise
        p.clear()

    def _loop(self) -> None:
        _yield_cpu_to_generation()
        while True:
            try:
                job = self.queue.get(timeout=self.pending.wait(self.flush_seconds))
            except queue.Empty:  # nothing new while generating: flush what is due now
                job = None
            if job is _STOP:
                break
            if self.error is not None:
                continue  # keep draining so the main thread never blocks; it raises the error
            try:
                if job is None:
                    self._flush()
                else:
                    self._handle(job)
            except BaseException as e:
                self.error = e
        if self.error is None:
            try:
                self._flush()
            except BaseException as e:
                self.error = e


_WRITER_NICE = 10  # a writer's slice of a busy CPU: ~1/10 of an equal thread's (Linux CFS weights)


def _yield_cpu_to_generation() -> None:
    """Lower the calling thread's CPU priority (Linux: nice is per thread; the encoder threads it
    starts inherit it). Where generation runs on the CPU, torch's threads fill every core and a
    writer at equal priority steals whole time slices from them; a lower-priority writer uses the
    idle moments instead and catches up while the main thread waits for it (the queue is bounded).
    Elsewhere, or where not permitted, nothing changes."""
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), _WRITER_NICE))
    except (OSError, AttributeError):
        pass


def _sync_to_disk(files: Sequence[Path]) -> None:
    """fsync the files and their folders. In parallel: a file system commits concurrent syncs
    together (measured on ext4: 10 files in ~2-12 ms at once, ~35 ms one after another)."""
    targets = [*dict.fromkeys(files), *dict.fromkeys(Path(f).parent for f in files)]
    if not targets:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(targets)), thread_name_prefix="vdmbench-fsync") as pool:
        list(pool.map(_fsync, targets))


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # gone (e.g. replaced meanwhile); nothing to sync
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)

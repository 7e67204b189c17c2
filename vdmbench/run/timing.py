"""Seconds per stage of a run, for benchmarks/bench_runner.py: setup, generate, cache_reads,
score, wait_writer, finish, total (main thread); write_files, db_writes (writer thread)."""

from __future__ import annotations

import time


class Timings(dict):
    """stage -> seconds; `with timings.stage("score"): ...` adds the block's time to it."""

    def stage(self, key: str) -> Timer:
        return Timer(self, key)

    def add(self, key: str, seconds: float) -> None:
        self[key] = self.get(key, 0.0) + seconds


class Timer:
    """Adds the seconds between start() and stop() (or a with-block) to timings[key]."""

    def __init__(self, timings: Timings, key: str) -> None:
        self.timings, self.key = timings, key
        self.t0: float | None = None

    def start(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def stop(self) -> None:
        if self.t0 is not None:
            self.timings.add(self.key, time.perf_counter() - self.t0)
            self.t0 = None

    def __enter__(self) -> Timer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

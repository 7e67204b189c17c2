"""The runner: plan -> generate -> write -> score -> store, with a content-addressed cache,
resume and shards.

For each (prompt, seed) of a suite the cache key is a hash of (model config, request): a clip that
exists under its key is never generated twice, a killed run resumes where it stopped (the samples
already in the database are skipped), and a failed sample is recorded with its error while the
rest go on. The pieces: options.py (what a run may be told), plan.py (samples and cache keys),
reference_sets.py (real clips for FVD), scoring.py (metric values and run statistics),
writer.py (files, then rows, in a background thread), timing.py (seconds per stage).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from vdmbench.adapters import AdapterContext, build_adapter
from vdmbench.adapters.base import (
    Adapter,
    GenerationRequest,
    backend_exit_text,
    config_hash,
    model_cache_config,
)
from vdmbench.adapters.outputs import bounded_video
from vdmbench.config.suite import Suite
from vdmbench.core import atomic
from vdmbench.core.atomic import remove_stale_temporaries
from vdmbench.core.errors import (
    AdapterError,
    ConfigError,
    VdmbenchError,
    VideoError,
    error_text,
)
from vdmbench.core.faults import environment_failure, environment_failure_text, raise_if_environment
from vdmbench.core.hashing import sha256_file
from vdmbench.core.naming import safe_filename
from vdmbench.core.provenance import environment, git_sha, redact_config
from vdmbench.core.resources import resolve_device, resolve_threads, torch_threads
from vdmbench.core.video import Video, read_video
from vdmbench.metrics import MetricContext, VideoMetric, build_metric, metric_spec
from vdmbench.run.checks import check_metric_spec, check_reference
from vdmbench.run.options import RunOptions, parse_shard
from vdmbench.run.plan import PlannedSample, plan_samples
from vdmbench.run.reference_sets import reference_id, reference_loader
from vdmbench.run.scoring import (
    per_sample_statistics,
    run_statistics,
    score_chunk,
    set_level_values,
)
from vdmbench.run.timing import Timings
from vdmbench.run.writer import FinishedSample, SampleFiles, SampleWriter
from vdmbench.store.database import Store

__all__ = ["RunOptions", "RunSummary", "Runner", "parse_shard", "plan_samples"]


@dataclass
class RunSummary:
    run_id: str
    db: Path
    ok: int
    failed: int
    generated: int
    cached: int
    metrics: list[dict[str, Any]]
    resumed: bool
    status: str = "finished"  # "failed" when no sample succeeded
    threads: int = 1


class Runner:
    """Runs one suite on one model into one database."""

    def __init__(self, suite: Suite, model_config: dict[str, Any], options: RunOptions,
                 adapter: Adapter | None = None) -> None:
        self.suite = suite
        self.model_config = model_config
        self.options = options
        self.device = resolve_device(options.device)
        self.threads = resolve_threads(options.threads)
        self._adapter = adapter
        bind = getattr(adapter, "bind", None)  # BaseAdapter has it; a duck-typed Adapter may not
        if callable(bind):
            bind(self.adapter_context())
        self._run_lock: IO[str] | None = None
        self.timings = Timings()  # seconds per stage of the last run() (run/timing.py)
        self.background_writes = bool(options.background_writes)
        self.store = Store(options.db_path)
        self.files = SampleFiles(
            Path(options.results_dir) / "videos" / safe_filename(model_config["name"]),
            Path(options.results_dir) / "previews" / safe_filename(model_config["name"]),
            options.db_path.resolve().parent, task=suite.task, preview=options.preview,
        )

    # -- pieces ------------------------------------------------------------------------------
    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:  # built lazily: a fully cached run never loads the model
            self._adapter = build_adapter(self.model_config, context=self.adapter_context())
        return self._adapter

    def adapter_context(self) -> AdapterContext:
        """What this run lends its adapter: its device and its results folder (where a hosted
        API's job journal lives, so a restart from another directory finds it)."""
        return AdapterContext(device=self.device, results_dir=Path(self.options.results_dir))

    def config_hash(self) -> str:
        return config_hash(model_cache_config(self.model_config))

    def metric_context(self) -> MetricContext:
        return MetricContext(
            device=self.device, batch_size=self.options.batch_size, precision=self.options.precision,
            cache_dir=Path(self.options.results_dir) / "cache" / "features",
            reference=reference_loader(self.suite, self.options.batch_size, self.options.workers),
            reference_id=reference_id(self.suite), seed=0,
        )

    def build_metrics(self) -> list[VideoMetric]:
        """The suite's metrics, checked before any is built (names, every option, the reference
        set): a mistake is a one-line ConfigError here, never a traceback halfway through a run."""
        for spec in self.suite.metrics:
            check_metric_spec(spec)
        ctx = self.metric_context()
        metrics = []
        for spec in self.suite.metrics:
            try:
                metrics.append(build_metric(spec, ctx))
            except (ValueError, TypeError) as e:  # e.g. torchmetrics refusing an option's value
                if isinstance(e, VdmbenchError):
                    raise
                raise ConfigError(f"metric {metric_spec(spec)[0]!r}: {e}") from e
        for m in metrics:
            if "reference" in m.inputs and ctx.reference is None:
                raise ConfigError(f"suite {self.suite.name!r}: metric {m.name!r} needs a 'reference' set in the suite")
        if any("reference" in m.inputs for m in metrics):
            check_reference(self.suite)
        return metrics

    def statistics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
        """The run's statistics (what `vdmbench merge` recomputes over the merged samples)."""
        return run_statistics(self.store, self.files, run_id, metrics,
                              batch_size=self.options.batch_size, workers=self.options.workers)

    # -- run ---------------------------------------------------------------------------------
    def _lock(self, run_id: str) -> IO[str] | None:
        """An exclusive lock on the run's folder, held while this process works on it. The OS
        releases it when the process dies, so a killed run is resumable at once, and a second
        process never works on the same run."""
        import fcntl

        folder = Path(self.options.results_dir) / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "lock", "w")  # noqa: SIM115 (held for the run; the OS drops the lock on exit)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        return handle

    def start_or_resume(self) -> tuple[str, bool]:
        shard = f"{self.options.shard[0]}/{self.options.shard[1]}" if self.options.shard else None
        candidates: list[str] = []
        if self.options.run_id:
            if self.store.run_status(self.options.run_id) is not None:
                candidates = [self.options.run_id]
        elif self.options.resume:
            candidates = self.store.resumable_runs(self.suite.hash, self.config_hash(), shard)
        for run_id in candidates:
            lock = self._lock(run_id)
            if lock is not None:
                self._run_lock = lock
                return run_id, True
            if self.options.run_id:
                raise ConfigError(f"run {run_id} is being worked on by another process; wait for it to finish")
        run_id = self.options.run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self._run_lock = self._lock(run_id)  # before the row exists, so nobody else can take it
        record = {
            "run_id": run_id, "suite": self.suite.name, "suite_version": self.suite.version,
            "suite_hash": self.suite.hash, "model": self.model_config["name"],
            "model_config": redact_config(self.model_config), "config_hash": self.config_hash(),
            "status": "running", "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "git_sha": git_sha(),
            "env": {**environment(self.device, overrides=self.options.overrides), "threads": self.threads},
            "shard": shard, "suite_config": redact_config(self.suite.to_dict()),
        }
        self.store.create_run(record)
        _write_manifest(Path(self.options.results_dir) / "runs" / run_id / "manifest.json", record)
        return run_id, False

    def run(self) -> RunSummary:
        self.timings = Timings()
        with self.timings.stage("total"), torch_threads(self.threads):
            return self._run()

    def _run(self) -> RunSummary:
        setup = self.timings.stage("setup").start()
        metrics = self.build_metrics()  # fail fast on unknown metrics, before generating
        planned = plan_samples(self.suite, self.model_config, self.options.shard)
        # One connection for finding/creating the run, what is done and what is cached: each costs
        # ~15 ms, more than the harness may spend per clip (benchmarks/bench_runner.py overhead).
        with self.store.session():
            run_id, resumed = self.start_or_resume()
            done = self.store.done_sample_ids(run_id, include_failed=not self._retry_failed(run_id))
            done -= self._failed_by_environment(run_id)  # a full disk or a killed worker: try again
            todo = [p for p in planned if p.sample_id not in done]
            hits = self.store.lookup_generations([p.cache_key for p in todo]) if self.options.cache else {}
        remove_stale_temporaries(self.files.video_dir)
        remove_stale_temporaries(self.files.preview_dir)
        generated = cached = 0
        try:
            per_sample = [m for m in metrics if m.per_sample]
            bar = _progress(len(planned), len(planned) - len(todo), self.options.progress, self.model_config["name"])
            step = self._chunk_size(todo, hits)
            writer = SampleWriter(self.files, self.store, run_id, flush_seconds=self.options.flush_seconds,
                                  background=self.background_writes, timings=self.timings)
            setup.stop()
            try:
                for chunk in _chunks(todo, step):
                    writer.check()  # a failed database write stops the run early
                    items, g, c, fault = self._process(chunk, per_sample, hits)
                    writer.submit(items)
                    if fault is not None:  # what finished is stored; the run stops, resumable
                        raise_if_environment(fault, "samples", doing="generating")
                    generated, cached = generated + g, cached + c
                    bar.update(len(chunk))
            except BaseException:
                # What finished is still recorded (e.g. on Ctrl-C); the original error goes on.
                writer.close(reraise=False)
                raise
            writer.close()
            bar.close()
            with self.timings.stage("finish"):
                set_metrics = [m for m in metrics if not m.per_sample]
                set_level = (set_level_values(self.store, self.files, run_id, set_metrics,
                                              batch_size=self.options.batch_size, workers=self.options.workers)
                             if set_metrics and self.store.count_ok(run_id) else [])  # set metrics need clips
                with self.store.session():  # read the values, record the statistics, finish: one connection
                    rows = per_sample_statistics(self.store, run_id, metrics) + set_level
                    ok, failed = self.store.finish_run(run_id, rows)
        except BaseException:
            try:
                self.store.set_run_status(run_id, "interrupted")
            except Exception:
                pass  # e.g. the disk is full: the run stays 'running', resumable all the same
            raise
        finally:
            if self._run_lock is not None:
                self._run_lock.close()
                self._run_lock = None
        return RunSummary(run_id, self.options.db_path, ok, failed, generated, cached, rows, resumed,
                          status="finished" if ok else "failed", threads=self.threads)

    def _failed_by_environment(self, run_id: str) -> set[str]:
        """Failed samples whose error was the machine's (a full disk, EIO, a killed worker), as
        older versions stored them: never a sample's own failure, so resume tries them again."""
        return {sid for sid, error in self.store.failed_samples(run_id)
                if environment_failure_text(error or "") is not None}

    def _retry_failed(self, run_id: str) -> bool:
        if self.options.retry_failed:
            return True
        return self.store.run_status(run_id) == "failed"

    def _chunk_size(self, todo: Sequence[PlannedSample], hits: dict[str, Any]) -> int:
        """Samples per generate() call: the adapter's batch size, so every finished batch is
        handed to the writer as soon as it is scored. A fully cached run never builds the model."""
        if todo and len(hits) < len(todo):
            return max(1, int(self.adapter.capabilities.batch_size))
        return max(1, self.options.batch_size)

    def _process(self, chunk: Sequence[PlannedSample], metrics: Sequence[VideoMetric],
                 hits: dict[str, dict[str, Any]]) -> tuple[list[FinishedSample], int, int, Exception | None]:
        """Generate (or load from cache) and score one chunk of samples; the writer stores them.
        The last item is the machine's failure met while generating (e.g. a killed worker), if any:
        its samples are left out, to be generated again when the run resumes."""
        videos: dict[str, Video] = {}
        errors: dict[str, str] = {}
        info: dict[str, dict[str, Any]] = {}
        misses = []
        reading = self.timings.stage("cache_reads").start()
        for p in chunk:
            hit = hits.get(p.cache_key)
            if hit and self.files.absolute(hit["path"]).is_file():
                try:
                    path = self.files.absolute(hit["path"])
                    if sha256_file(path) != hit["sha256"]:
                        raise VideoError(f"{path}: cached file changed on disk (sha256 mismatch)")
                    videos[p.sample_id] = read_video(path)
                    info[p.sample_id] = {**hit, "path": path}
                    continue
                except VdmbenchError:
                    pass  # regenerate below
            misses.append(p)
        reading.stop()
        fresh: set[str] = set()
        fault: Exception | None = None
        if misses:
            t0 = time.perf_counter()
            try:
                outputs = self._generate([p.request for p in misses])
                if len(outputs) != len(misses):
                    raise AdapterError(f"adapter returned {len(outputs)} videos for {len(misses)} requests")
            except (Exception, SystemExit) as e:  # the whole call failed: every request in it failed
                # (sys.exit() inside a backend ends these samples with a message, not the run)
                err = AdapterError(backend_exit_text(e)) if isinstance(e, SystemExit) else e
                outputs = [err] * len(misses)
            machine = [out for out in outputs if isinstance(out, Exception) and environment_failure(out)]
            per_clip = (time.perf_counter() - t0) / len(misses)
            self.timings.add("generate", per_clip * len(misses))
            for p, out in zip(misses, outputs):
                if machine and isinstance(out, Exception) and environment_failure(out):
                    fault = fault or out  # the machine's failure (a killed worker, a full disk):
                    continue  # not stored at all, so the same command generates it again
                try:
                    # Scored from memory: the lossless file's round trip is bit-exact
                    # (tests/test_video.py), so these are exactly the frames that will be stored.
                    video = _validate_output(out, p.request)
                    if self.background_writes:
                        # The writer encodes it while the adapter runs again: it must own the frames
                        # (a backend may reuse its output buffer). Cheap next to a generation.
                        video = Video(video.frames.clone(), video.fps, dict(video.notes))
                    videos[p.sample_id] = video
                    info[p.sample_id] = {"gen_seconds": per_clip, "notes": video.notes or None}
                    fresh.add(p.sample_id)
                except Exception as e:
                    errors[p.sample_id] = error_text(e)
        with self.timings.stage("score"):
            values = score_chunk(chunk, videos, errors, info, metrics)
        items = [FinishedSample(p, videos.get(p.sample_id), p.sample_id in fresh, info.get(p.sample_id, {}),
                           errors.get(p.sample_id), values.get(p.sample_id, {}))
                 for p in chunk if p.sample_id in videos or p.sample_id in errors]
        return items, len(misses), len(chunk) - len(misses), fault

    def _generate(self, requests: list[GenerationRequest]) -> list[Any]:
        """Call the adapter, abandoning the call after `timeout` seconds per request."""
        if not self.options.timeout:
            return list(self.adapter.generate(requests))
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["out"] = list(self.adapter.generate(requests))
            except BaseException as e:  # handed to the caller below
                result["err"] = e

        # A daemon thread: a backend that never returns must not keep the process alive at exit.
        worker = threading.Thread(target=work, name="vdmbench-generate", daemon=True)
        worker.start()
        limit = self.options.timeout * len(requests)
        worker.join(limit)
        if worker.is_alive():
            raise AdapterError(f"generation timed out after {limit:g} s (timeout={self.options.timeout:g} s per request)")
        if "err" in result:
            err = result["err"]
            if isinstance(err, KeyboardInterrupt):
                # Raised by the backend in its own thread (a Ctrl-C reaches the main thread, in
                # join above): this call's samples fail with a message; the run goes on.
                raise AdapterError(backend_exit_text(err)) from err
            raise err
        return result["out"]


def _validate_output(out: Any, req: GenerationRequest) -> Video:
    """The Video an adapter returned for `req`, or the error it stands for.

    Frames that are still a view (e.g. an `expand` of a tiny tensor) are bounded by the request
    before anything copies them; a clip whose frame count or size differs from the request is
    kept, flagged with notes["shape_mismatch"] = {"requested": [T, H, W], "returned": [T, H, W]}
    (stored with the sample). See vdmbench/adapters/outputs.py."""
    if isinstance(out, SystemExit):
        raise AdapterError(backend_exit_text(out))
    if isinstance(out, BaseException):
        raise out
    if not isinstance(out, Video):
        raise AdapterError(f"adapter returned {type(out).__name__}, expected a vdmbench Video")
    if out.num_frames < 1:
        raise AdapterError("adapter returned an empty video")
    return bounded_video(out, req)


def _write_manifest(path: Path, record: dict[str, Any]) -> None:
    """The run's manifest next to its files: everything that produced it, as JSON (atomic)."""
    import json

    atomic.write_text(path, json.dumps(record, indent=2, default=str))


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="clip",
                dynamic_ncols=True, mininterval=0.5)

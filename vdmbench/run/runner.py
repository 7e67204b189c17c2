"""generate -> write -> score -> store, with a content-addressed cache, resume and shards.

For each (prompt, seed) of a suite the cache key is a hash of (adapter config, request): a clip
that exists under its key is never generated twice, a killed run resumes where it stopped (the
samples already in the database are skipped), and a failed sample is recorded with its error while
the rest go on. Files are written under a temporary name and renamed; finished samples' rows and
metric values are written in one transaction, after their files are synced to disk, so there are
no half-written rows or files.

`_SampleWriter` stores finished samples (lossless file, hash, preview, then rows) in a background
thread while the main thread generates and scores the next batch.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from vdmbench.adapters import build_adapter
from vdmbench.adapters.base import (
    Adapter,
    GenerationRequest,
    adapter_cache_config,
    cache_key,
    config_hash,
)
from vdmbench.config.suite import Prompt, Suite
from vdmbench.core import atomic
from vdmbench.core.atomic import remove_stale_temporaries
from vdmbench.core.errors import AdapterError, ConfigError, VdmbenchError, VideoError
from vdmbench.core.hashing import folder_fingerprint, sha256_file
from vdmbench.core.naming import safe_filename
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.core.provenance import environment, git_sha, redact_config
from vdmbench.core.stats import clustered_bootstrap_mean
from vdmbench.core.threads import resolve_threads, torch_threads
from vdmbench.core.video import Video, read_video, write_preview, write_video
from vdmbench.core.video_loader import iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch, MetricContext, VideoMetric, build_metric
from vdmbench.store.database import SampleRecord, Store


@dataclass
class RunOptions:
    results_dir: Path = DEFAULT_RESULTS_DIR
    db: Path | None = None  # default: <results_dir>/vdmbench.duckdb
    device: str = "auto"
    batch_size: int = 8  # clips per scoring batch
    precision: str = "fp32"
    shard: tuple[int, int] | None = None  # (index, count)
    resume: bool = True
    use_cache: bool = True
    preview: bool = True
    run_id: str | None = None
    progress: bool = True
    workers: int = 2  # decoder processes for scoring stored clips (overlap with compute)
    # Finished samples are written to the database at most this often, in one transaction: each
    # write (attach, insert, commit, checkpoint, plus syncing the files) costs ~10-40 ms, too much
    # per clip for a fast model. A kill loses at most this much finished work (its clips are then
    # regenerated, never duplicated).
    flush_seconds: float = 2.0
    # Write files and database rows in a background thread, overlapped with the next generate()
    # (off: the main thread writes between batches; the results are the same). Measured on the
    # CPU reference model: never slower, and free where generation leaves a core idle or waits on
    # a GPU or a server (benchmarks/bench_runner.py overhead --variants background serial).
    background_writes: bool = True
    timeout: float | None = None  # seconds per request before a hung backend call is abandoned
    # torch intra-op threads while the run works: None = auto (every usable core but one; see
    # vdmbench/core/threads.py). Recorded in runs.env and replayed by `vdmbench reproduce`.
    threads: int | None = None
    # More failed samples than this (a count, or a fraction of the samples) and `vdmbench run`
    # exits 1; a run in which no sample succeeded always does (see vdmbench/run/failures.py).
    max_failed: int | float | None = None
    # On resume, generate the failed samples of the run again (a run where every sample failed
    # is always retried: its failures were the environment's, e.g. a missing package).
    retry_failed: bool = False
    overrides: list[str] = field(default_factory=list)  # recorded in the manifest

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else Path(self.results_dir) / "vdmbench.duckdb"


@dataclass(frozen=True)
class PlannedSample:
    sample_id: str
    prompt: Prompt
    seed: int
    request: GenerationRequest
    cache_key: str
    ground_truth: Video | None = None
    source: Video | None = None


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


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value in (None, "", "null"):
        return None
    try:
        i, n = (int(x) for x in str(value).split("/"))
    except ValueError as e:
        raise ConfigError(f"shard must look like I/N (e.g. 0/4), got {value!r}") from e
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard {value!r}: need 0 <= I < N")
    return i, n


def plan_samples(suite: Suite, adapter_config: dict[str, Any], shard: tuple[int, int] | None = None) -> list[PlannedSample]:
    """Every sample of the suite (or of one shard), with its request and cache key."""
    conditioning = None
    if suite.task != "t2v":
        try:
            from vdmbench.data import conditioning
        except ImportError as e:
            raise ConfigError(f"suite {suite.name!r} (task {suite.task}) needs vdmbench.data.conditioning: {e}") from e
    planned = []
    for index, (prompt, seed) in enumerate(suite.samples()):
        if shard and index % shard[1] != shard[0]:
            continue
        gt = source = None
        cond_frames, cond_indices, strength = None, (), suite.strength
        if conditioning is not None:
            c = conditioning.prepare(suite, prompt, seed)
            gt, source = c.ground_truth, c.source
            cond_frames, cond_indices = c.cond_frames, tuple(c.cond_indices)
            strength = c.strength if c.strength is not None else strength
        req = GenerationRequest(
            prompt=prompt.text, seed=seed, num_frames=suite.num_frames, height=suite.height,
            width=suite.width, fps=suite.fps, task=suite.task, steps=suite.steps,
            guidance=suite.guidance, cond_frames=cond_frames, cond_indices=cond_indices,
            strength=strength, extra={"prompt_id": prompt.id, **suite.params, **prompt.params},
        )
        planned.append(
            PlannedSample(f"{prompt.id}-s{seed}", prompt, seed, req, cache_key(adapter_config, req), gt, source)
        )
    return planned


class Runner:
    """Runs one suite on one model into one database."""

    def __init__(self, suite: Suite, adapter_config: dict[str, Any], options: RunOptions,
                 adapter: Adapter | None = None) -> None:
        self.suite = suite
        self.adapter_config = adapter_config
        self.options = options
        self.device = resolve_device(options.device)
        self.threads = resolve_threads(options.threads)
        self._adapter = adapter
        self._run_lock = None
        # Seconds spent per stage of the last run(), for benchmarks/bench_runner.py: setup, generate,
        # cache_reads, score, wait_writer, finish, total (main thread); write_files, db_writes (writer).
        self.timings: dict[str, float] = {}
        self.background_writes = bool(options.background_writes)
        self.store = Store(options.db_path)
        self.db_dir = options.db_path.resolve().parent
        self.video_dir = Path(options.results_dir) / "videos" / safe_filename(adapter_config["name"])
        self.preview_dir = Path(options.results_dir) / "previews" / safe_filename(adapter_config["name"])

    # -- pieces ------------------------------------------------------------------------------
    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:  # built lazily: a fully cached run never loads the model
            self._adapter = build_adapter(self.adapter_config)
        return self._adapter

    def config_hash(self) -> str:
        return config_hash(adapter_cache_config(self.adapter_config))

    def metric_context(self) -> MetricContext:
        return MetricContext(
            device=self.device, batch_size=self.options.batch_size, precision=self.options.precision,
            cache_dir=Path(self.options.results_dir) / "cache" / "features",
            reference=reference_loader(self.suite, self.options.batch_size, self.options.workers),
            reference_id=reference_id(self.suite), seed=0,
        )

    def build_metrics(self) -> list[VideoMetric]:
        ctx = self.metric_context()
        metrics = [build_metric(spec, ctx) for spec in self.suite.metrics]
        for m in metrics:
            if "reference" in m.requires and ctx.reference is None:
                raise ConfigError(f"suite {self.suite.name!r}: metric {m.name!r} needs a 'reference' set in the suite")
        return metrics

    def _relative(self, path: Path) -> str:
        return os.path.relpath(Path(path).resolve(), self.db_dir)

    def _absolute(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.db_dir / p

    # -- run ---------------------------------------------------------------------------------
    def _lock(self, run_id: str):
        """An exclusive lock on the run's folder, held while this process works on it. The OS
        releases it when the process dies, so a killed run is resumable at once, and a second
        process never works on the same run."""
        import fcntl

        folder = Path(self.options.results_dir) / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "lock", "w")
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
            if not self.store.query("SELECT 1 FROM runs WHERE run_id = ?", [self.options.run_id]).empty:
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
            "suite_hash": self.suite.hash, "model": self.adapter_config["name"],
            "adapter_config": redact_config(self.adapter_config), "config_hash": self.config_hash(),
            "status": "running", "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "git_sha": git_sha(),
            "env": {**environment(self.device, overrides=self.options.overrides), "threads": self.threads},
            "shard": shard, "suite_config": self.suite.to_dict(),
        }
        self.store.create_run(record)
        _write_manifest(Path(self.options.results_dir) / "runs" / run_id / "manifest.json", record)
        return run_id, False

    def _timed(self, key: str) -> "_Timer":
        return _Timer(self.timings, key)

    def run(self) -> RunSummary:
        self.timings = {}
        with self._timed("total"), torch_threads(self.threads):
            return self._run()

    def _run(self) -> RunSummary:
        setup = self._timed("setup").start()
        metrics = self.build_metrics()  # fail fast on unknown metrics, before generating
        planned = plan_samples(self.suite, self.adapter_config, self.options.shard)
        # One connection for finding/creating the run, what is done and what is cached: each costs
        # ~15 ms, more than the harness may spend per clip (benchmarks/bench_runner.py overhead).
        with self.store.session():
            run_id, resumed = self.start_or_resume()
            done = self.store.done_sample_ids(run_id, include_failed=not self._retry_failed(run_id))
            todo = [p for p in planned if p.sample_id not in done]
            hits = self.store.lookup_generations([p.cache_key for p in todo]) if self.options.use_cache else {}
        remove_stale_temporaries(self.video_dir)
        remove_stale_temporaries(self.preview_dir)
        generated = cached = 0
        try:
            per_sample = [m for m in metrics if m.per_sample]
            bar = _progress(len(planned), len(planned) - len(todo), self.options.progress, self.adapter_config["name"])
            step = self._chunk_size(todo, hits)
            writer = _SampleWriter(self, run_id)
            setup.stop()
            try:
                for chunk in _chunks(todo, step):
                    writer.check()  # a failed database write stops the run early
                    items, g, c = self._process(chunk, per_sample, hits)
                    writer.submit(items)
                    generated, cached = generated + g, cached + c
                    bar.update(len(chunk))
            except BaseException:
                # What finished is still recorded (e.g. on Ctrl-C); the original error goes on.
                writer.close(reraise=False)
                raise
            writer.close()
            bar.close()
            with self._timed("finish"):
                any_ok = self.store.count_ok(run_id) > 0  # set metrics need clips; none: nothing to score
                set_level = self._set_level_metrics(run_id, [m for m in metrics if not m.per_sample]) if any_ok else []
                with self.store.session():  # read the values, record the statistics, finish: one connection
                    rows = self._per_sample_metrics(run_id, metrics) + set_level
                    ok, failed = self.store.finish_run(run_id, rows)
        except BaseException:
            self.store.set_run_status(run_id, "interrupted")
            raise
        finally:
            if self._run_lock is not None:
                self._run_lock.close()
                self._run_lock = None
        return RunSummary(run_id, self.options.db_path, ok, failed, generated, cached, rows, resumed,
                          status="finished" if ok else "failed", threads=self.threads)

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
                 hits: dict[str, dict[str, Any]]) -> tuple[list["_Finished"], int, int]:
        """Generate (or load from cache) and score one chunk of samples; the writer stores them."""
        videos: dict[str, Video] = {}
        errors: dict[str, str] = {}
        info: dict[str, dict[str, Any]] = {}
        misses = []
        reading = self._timed("cache_reads").start()
        for p in chunk:
            hit = hits.get(p.cache_key)
            if hit and self._absolute(hit["path"]).is_file():
                try:
                    path = self._absolute(hit["path"])
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
        if misses:
            t0 = time.perf_counter()
            try:
                outputs = self._generate([p.request for p in misses])
                if len(outputs) != len(misses):
                    raise AdapterError(f"adapter returned {len(outputs)} videos for {len(misses)} requests")
            except Exception as e:  # the whole call failed: every request in it failed
                outputs = [e] * len(misses)
            per_clip = (time.perf_counter() - t0) / len(misses)
            self.timings["generate"] = self.timings.get("generate", 0.0) + per_clip * len(misses)
            for p, out in zip(misses, outputs):
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
                    errors[p.sample_id] = _error_text(e)
        with self._timed("score"):
            values = self._score(chunk, videos, errors, info, metrics)
        items = [_Finished(p, videos.get(p.sample_id), p.sample_id in fresh, info.get(p.sample_id, {}),
                           errors.get(p.sample_id), values.get(p.sample_id, {})) for p in chunk]
        return items, len(misses), len(chunk) - len(misses)

    def _store_files(self, items: Sequence["_Finished"], written: list[Path]) -> tuple[list[SampleRecord], dict, list]:
        """Write the lossless file, hash and preview of each newly generated sample (adding the
        files to `written`, to be synced before the rows are committed); returns the rows. A sample
        whose file cannot be written is recorded as failed. Runs in the writer (see _SampleWriter)."""
        records, values, generations = [], {}, []
        for it in items:
            p, info, error = it.planned, dict(it.info), it.error
            stored = it.video is not None  # generated or cached; a clip that failed scoring is kept too
            if stored and it.fresh:
                try:
                    path = write_video(it.video, self.video_dir / f"{p.prompt.id}-s{p.seed}-{p.cache_key[:12]}.mp4")
                    written.append(path)
                    info.update(path=path, sha256=sha256_file(path))
                    generations.append((p.cache_key, self._relative(path), info["sha256"], info["gen_seconds"],
                                        info.get("notes")))
                except Exception as e:
                    error, stored = _error_text(e), False
            if stored and self.options.preview:
                prev = self.preview_dir / f"{p.cache_key}.mp4"
                if not prev.is_file():
                    try:
                        written.append(write_preview(it.video, prev))
                    except VdmbenchError:
                        pass  # a preview is a convenience; the lossless file is the result
                info["preview"] = prev
            ok = error is None
            records.append(SampleRecord(
                sample_id=p.sample_id, prompt_id=p.prompt.id, prompt=p.prompt.text, seed=p.seed,
                task=self.suite.task, status="ok" if ok else "failed",
                path=self._relative(info["path"]) if info.get("path") else None, sha256=info.get("sha256"),
                gen_seconds=info.get("gen_seconds"), error=error, cache_key=p.cache_key,
                preview_path=self._relative(info["preview"]) if info.get("preview") and ok else None,
                tags=p.prompt.tags, notes=info.get("notes"),
            ))
            if ok:
                values[p.sample_id] = it.values
        return records, values, generations

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
            raise result["err"]
        return result["out"]

    def _score(self, chunk, videos, errors, info, metrics) -> dict[str, dict[str, float]]:
        """Per-sample metric values; clips of equal shape are scored together."""
        values: dict[str, dict[str, float]] = {p.sample_id: {} for p in chunk}
        ready = [p for p in chunk if p.sample_id in videos and p.sample_id not in errors]
        groups: dict[tuple, list[PlannedSample]] = {}
        for p in ready:
            groups.setdefault(tuple(videos[p.sample_id].frames.shape), []).append(p)
        for group in groups.values():
            for m in metrics:
                try:
                    self._score_group(m, group, videos, info, values)
                except Exception:
                    for p in group:  # find the clip that fails; the others keep their values
                        try:
                            self._score_group(m, [p], videos, info, values)
                        except Exception as e:
                            errors[p.sample_id] = f"scoring {m.name}: {_error_text(e)}"
        return values

    def _score_group(self, metric, group, videos, info, values) -> None:
        batch = ClipBatch(
            videos=torch.stack([videos[p.sample_id].frames for p in group]),
            prompts=[p.prompt.text for p in group],
            fps=[videos[p.sample_id].fps for p in group],
            sample_ids=[p.sample_id for p in group],
            ground_truth=_stack_optional([p.ground_truth for p in group]),
            source=_stack_optional([p.source for p in group]),
            cond_indices=[p.request.cond_indices for p in group],
            # Known for cached clips; a new clip's file is hashed after scoring, by the writer.
            sha256=_known_sha256([info[p.sample_id].get("sha256") for p in group]),
        )
        out = metric.sample_values(batch)
        metric.update(batch, values=out)
        for j, p in enumerate(group):
            for name, v in out.items():
                values[p.sample_id][name] = float(v[j])

    def _run_metrics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
        """The run's statistics: per-sample metrics over prompts, then the set-level metrics."""
        set_level = self._set_level_metrics(run_id, [m for m in metrics if not m.per_sample])
        return self._per_sample_metrics(run_id, metrics) + set_level

    def _per_sample_metrics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        table = self.store.sample_values(run_id)
        for m in metrics:
            if not m.per_sample:
                continue
            for out in m.outputs:
                sub = table[table.metric == out]
                if sub.empty:
                    continue
                est = clustered_bootstrap_mean(sub.value.to_numpy(), sub.prompt_id.to_numpy())
                rows.append({
                    "metric": out, "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
                    "n": est.n, "details": {**m.describe(), "higher_is_better": m.direction(out),
                                            "per_sample": True, "ci": "bootstrap over prompts, 95%"},
                })
        return rows

    def _set_level_metrics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
        """Stream every successful clip of the run (including resumed ones) through set metrics."""
        if not metrics:
            return []
        samples = self.store.query(
            "SELECT sample_id, prompt, path, sha256 FROM samples WHERE run_id = ? AND status = 'ok' ORDER BY sample_id",
            [run_id],
        )
        for m in metrics:
            m.reset()
        paths = [self._absolute(p) for p in samples.path]
        for items in iterate_videos(paths, batch_size=self.options.batch_size, workers=self.options.workers):
            for idx, videos, fps in stack_by_shape(items):
                part = samples.iloc[idx]
                batch = ClipBatch(videos=videos, prompts=list(part.prompt), fps=fps,
                                  sample_ids=list(part.sample_id), sha256=list(part.sha256))
                for m in metrics:
                    m.update(batch)
        rows = []
        for m in metrics:
            result = m.compute()
            details = {**m.describe(), "per_sample": False}
            for out in m.outputs:
                value = result[out] if isinstance(result, dict) else result
                rows.append({
                    "metric": out, "value": float(value), "ci_low": _get_float(result, f"{out}_ci_low"),
                    "ci_high": _get_float(result, f"{out}_ci_high"), "n": len(samples),
                    "details": {**details, "higher_is_better": m.direction(out)},
                })
        return rows


@dataclass
class _Finished:
    """A sample of a chunk, generated (or read from the cache) and scored, not yet stored."""

    planned: PlannedSample
    video: Video | None
    fresh: bool  # newly generated: its lossless file is still to be written
    info: dict[str, Any]  # path, sha256 (cached clips), gen_seconds
    error: str | None
    values: dict[str, float]


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


class _Timer:
    """Adds the seconds between start() and stop() (or a with-block) to timings[key]."""

    def __init__(self, timings: dict[str, float], key: str) -> None:
        self.timings, self.key, self.t0 = timings, key, None

    def start(self) -> "_Timer":
        self.t0 = time.perf_counter()
        return self

    def stop(self) -> None:
        if self.t0 is not None:
            self.timings[self.key] = self.timings.get(self.key, 0.0) + time.perf_counter() - self.t0
            self.t0 = None

    def __enter__(self) -> "_Timer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _SampleWriter:
    """Stores finished samples in order: files first (temporary name, then rename), then, at most
    every `flush_seconds` and once at the end, the files are synced to disk (all at once) and the
    rows written in one transaction.

    With background writes this runs in one thread fed by a small bounded queue, so writing
    overlaps the next generate() and memory stays flat (the main thread waits when the writer is
    two chunks behind); without, `submit` does the work at once. A row is committed only after its
    files are complete and synced, so a SIGKILL (or a power cut) at any moment leaves the database
    consistent: a sample whose row was not committed is generated again on resume, its file
    replaced atomically, a temporary file deleted by its pid. A file that cannot be written makes a
    failed sample; a failed database write stops the run.
    """

    def __init__(self, runner: Runner, run_id: str) -> None:
        self.runner, self.run_id = runner, run_id
        self.flush_seconds = runner.options.flush_seconds
        self.pending = _PendingWrites()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if runner.background_writes:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            # A daemon: an interpreter that exits abruptly is not kept alive by it; close() joins it.
            self.thread = threading.Thread(target=self._loop, name="vdmbench-writer", daemon=True)
            self.thread.start()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, items: list[_Finished]) -> None:
        if self.thread is None:
            self._handle(items)
            return
        with self.runner._timed("wait_writer"):
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
            with self.runner._timed("wait_writer"):
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

    def _handle(self, items: list[_Finished]) -> None:
        with self.runner._timed("write_files"):
            records, values, generations = self.runner._store_files(items, self.pending.written)
        self.pending.add(records, values, generations)
        if self.pending.due(self.flush_seconds):
            self._flush()

    def _flush(self) -> None:
        p = self.pending
        if p.records:
            with self.runner._timed("db_writes"):
                try:
                    _sync_to_disk(p.written)  # the files (and their renames) before the rows naming them
                    self.runner.store.record_samples(self.run_id, p.records, p.metrics, p.generations)
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


def _known_sha256(shas: list[str | None]) -> list[str]:
    return list(shas) if all(shas) else []


def _write_manifest(path: Path, record: dict[str, Any]) -> None:
    """The run's manifest next to its files: everything that produced it, as JSON (atomic)."""
    import json

    atomic.write_text(path, json.dumps(record, indent=2, default=str))


def _get_float(result: Any, key: str) -> float | None:
    if isinstance(result, dict) and key in result:
        return float(result[key])
    return None


def _stack_optional(items: list[Video | None]) -> torch.Tensor | None:
    if any(v is None for v in items):
        return None
    return torch.stack([v.frames for v in items])


def _validate_output(out: Any, req: GenerationRequest) -> Video:
    if isinstance(out, BaseException):
        raise out
    if not isinstance(out, Video):
        raise AdapterError(f"adapter returned {type(out).__name__}, expected a vdmbench Video")
    if out.num_frames < 1:
        raise AdapterError("adapter returned an empty video")
    return out


def _error_text(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if isinstance(e, VdmbenchError) else f"{type(e).__name__}: {text}"


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="clip",
                dynamic_ncols=True, mininterval=0.5)


def reference_id(suite: Suite) -> str | None:
    if not suite.reference:
        return None
    content = None
    if suite.reference.get("source") == "folder":  # the folder's files, not just its path
        from vdmbench.core.video import VIDEO_EXTENSIONS

        folder = Path(suite.reference["path"]).expanduser()
        if folder.is_dir():
            content = folder_fingerprint([p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS])
    return config_hash({"reference": suite.reference, "frames": suite.num_frames, "content": content,
                        "size": [suite.height, suite.width], "fps": suite.fps})[:16]


def reference_loader(suite: Suite, batch_size: int, workers: int = 0) -> Callable[[], Iterator[ClipBatch]] | None:
    """The suite's real clips for FVD/KVD, streamed in batches."""
    ref = suite.reference
    if not ref:
        return None
    source = ref.get("source")
    if source == "folder":
        folder = Path(ref["path"]).expanduser()

        def folder_clips() -> Iterator[ClipBatch]:
            from vdmbench.core.video import VIDEO_EXTENSIONS

            if not folder.is_dir():
                raise ConfigError(f"suite {suite.name!r}: reference folder {folder} does not exist")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            if not files:
                raise ConfigError(f"suite {suite.name!r}: reference folder {folder} has no videos")
            for items in iterate_videos(files, batch_size=batch_size, workers=workers, num_frames=suite.num_frames):
                for _, videos, fps in stack_by_shape(items):
                    yield ClipBatch(videos=videos, fps=fps)

        return folder_clips
    if source == "shapes":
        from vdmbench.data import conditioning

        def shapes_clips() -> Iterator[ClipBatch]:
            for frames in _chunks(list(conditioning.reference_clips(suite)), batch_size):
                yield ClipBatch(videos=torch.stack(list(frames)), fps=[suite.fps] * len(frames))

        return shapes_clips
    raise ConfigError(f"suite {suite.name!r}: reference source must be 'shapes' or 'folder', got {source!r}")


"""generate -> write -> score -> store, with a content-addressed cache, resume and shards.

For each (prompt, seed) of a suite the cache key is a hash of (adapter config, request): a clip
that exists under its key is never generated twice, a killed run resumes where it stopped (the
samples already in the database are skipped), and a failed sample is recorded with its error while
the rest go on. Files are written under a temporary name and renamed; a batch's sample rows and
metric values are written in one transaction, so there are no half-written rows or files.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from vdmbench.adapters import build_adapter
from vdmbench.adapters.base import Adapter, GenerationRequest, config_hash
from vdmbench.errors import AdapterError, ConfigError, VdmbenchError, VideoError
from vdmbench.hashing import folder_fingerprint, sha256_file
from vdmbench.loader import iterate_videos, stack_by_shape
from vdmbench.manifest import environment, git_sha, redact_config
from vdmbench.metrics import ClipBatch, MetricContext, VideoMetric, build_metric
from vdmbench.naming import safe_filename
from vdmbench.stats import clustered_bootstrap_mean
from vdmbench.store import SampleRecord, Store
from vdmbench.suites import Prompt, Suite
from vdmbench.video import Video, read_video, write_preview, write_video

CACHE_FORMAT = 1  # bump when the meaning of a cached file changes
_HASHED_ADAPTER_KEYS = ("adapter", "params")  # name/description do not change the pixels


@dataclass
class RunOptions:
    results_dir: Path = Path("results")
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
    # DuckDB open/commit/close costs ~10-40 ms, too much per clip for a fast model. A kill loses at
    # most this much finished work (its clips are then regenerated, never duplicated).
    flush_seconds: float = 2.0
    timeout: float | None = None  # seconds per request before a hung backend call is abandoned
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


def adapter_cache_config(adapter_config: dict[str, Any]) -> dict[str, Any]:
    # Secrets never enter a hash or the database; they cannot change the pixels anyway.
    return redact_config({k: adapter_config.get(k) for k in _HASHED_ADAPTER_KEYS})


def cache_key(adapter_config: dict[str, Any], request: GenerationRequest) -> str:
    return config_hash(
        {"format": CACHE_FORMAT, "adapter": adapter_cache_config(adapter_config), "request": request.cache_fields()}
    )


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


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by killed writers (their pid is in the name and is gone)."""
    if not folder.is_dir():
        return
    for tmp in folder.rglob(".*.tmp"):
        parts = tmp.name.split(".")
        pid = next((int(p) for p in parts if p.isdigit()), None)
        alive = False
        if pid is not None and pid != os.getpid():  # our own pid: nothing is being written yet
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if not alive:
            tmp.unlink(missing_ok=True)


class Runner:
    """Runs one suite on one model into one database."""

    def __init__(self, suite: Suite, adapter_config: dict[str, Any], options: RunOptions,
                 adapter: Adapter | None = None) -> None:
        self.suite = suite
        self.adapter_config = adapter_config
        self.options = options
        self.device = resolve_device(options.device)
        self._adapter = adapter
        self._run_lock = None
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
            "env": environment(self.device, overrides=self.options.overrides),
            "shard": shard, "suite_config": self.suite.to_dict(),
        }
        self.store.create_run(record)
        _write_manifest(Path(self.options.results_dir) / "runs" / run_id / "manifest.json", record)
        return run_id, False

    def run(self) -> RunSummary:
        metrics = self.build_metrics()  # fail fast on unknown metrics, before generating
        run_id, resumed = self.start_or_resume()
        _remove_stale_temporaries(self.video_dir)
        _remove_stale_temporaries(self.preview_dir)
        planned = plan_samples(self.suite, self.adapter_config, self.options.shard)
        done = self.store.done_sample_ids(run_id)
        todo = [p for p in planned if p.sample_id not in done]
        generated = cached = 0
        try:
            per_sample = [m for m in metrics if m.per_sample]
            bar = _progress(len(planned), len(planned) - len(todo), self.options.progress, self.adapter_config["name"])
            # One cache lookup for the whole run: a connection per statement would cost more than
            # the harness may (benchmarks/bench_runner.py overhead).
            hits = self.store.lookup_generations([p.cache_key for p in todo]) if self.options.use_cache else {}
            step = self._chunk_size(todo, hits)
            pending = _PendingWrites()
            try:
                for chunk in _chunks(todo, step):
                    g, c = self._process(run_id, chunk, per_sample, hits, pending)
                    generated, cached = generated + g, cached + c
                    bar.update(len(chunk))
                    if pending.due(self.options.flush_seconds):
                        self._flush(run_id, pending)
            finally:
                # Also on an exception (e.g. Ctrl-C): what finished is recorded, nothing half-done.
                self._flush(run_id, pending)
            bar.close()
            rows = self._run_metrics(run_id, metrics)
            self.store.record_run_metrics(run_id, rows)
            self.store.set_run_status(run_id, "finished", finished=True)
        except BaseException:
            self.store.set_run_status(run_id, "interrupted")
            raise
        finally:
            if self._run_lock is not None:
                self._run_lock.close()
                self._run_lock = None
        counts = self.store.query(
            "SELECT count(*) FILTER (WHERE status='ok'), count(*) FILTER (WHERE status='failed') FROM samples WHERE run_id = ?",
            [run_id],
        ).iloc[0]
        return RunSummary(run_id, self.options.db_path, int(counts.iloc[0]), int(counts.iloc[1]),
                          generated, cached, rows, resumed)

    def _chunk_size(self, todo: Sequence[PlannedSample], hits: dict[str, Any]) -> int:
        """Samples per generate() call: the adapter's batch size, so every finished batch is
        recorded before the next starts. A fully cached run never builds (loads) the model."""
        if todo and len(hits) < len(todo):
            return max(1, int(self.adapter.capabilities.batch_size))
        return max(1, self.options.batch_size)

    def _process(self, run_id: str, chunk: Sequence[PlannedSample], metrics: Sequence[VideoMetric],
                 hits: dict[str, dict[str, Any]], pending: "_PendingWrites") -> tuple[int, int]:
        """Generate (or load from cache), write, score and record one chunk of samples."""
        videos: dict[str, Video] = {}
        errors: dict[str, str] = {}
        info: dict[str, dict[str, Any]] = {}
        new_generations: list[tuple[str, str, str, float]] = []
        misses = []
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
        generated = len(misses)
        if misses:
            t0 = time.perf_counter()
            try:
                outputs = self._generate([p.request for p in misses])
                if len(outputs) != len(misses):
                    raise AdapterError(f"adapter returned {len(outputs)} videos for {len(misses)} requests")
            except Exception as e:  # the whole call failed: every request in it failed
                outputs = [e] * len(misses)
            per_clip = (time.perf_counter() - t0) / len(misses)
            for p, out in zip(misses, outputs):
                try:
                    video = _validate_output(out, p.request)
                    path = write_video(video, self.video_dir / f"{p.prompt.id}-s{p.seed}-{p.cache_key[:12]}.mp4")
                    digest = sha256_file(path)
                    new_generations.append((p.cache_key, self._relative(path), digest, per_clip))
                    # The file is lossless and its round trip bit-exact (tests/test_video.py), so the
                    # frames in memory are exactly what is stored: no need to decode it again.
                    videos[p.sample_id] = video
                    info[p.sample_id] = {"path": path, "sha256": digest, "gen_seconds": per_clip}
                except Exception as e:
                    errors[p.sample_id] = _error_text(e)
        if self.options.preview:
            for p in chunk:
                if p.sample_id in videos:
                    prev = self.preview_dir / f"{p.cache_key}.mp4"
                    if not prev.is_file():
                        try:
                            write_preview(videos[p.sample_id], prev)
                        except VdmbenchError:
                            pass  # a preview is a convenience; the lossless file is the result
                    info[p.sample_id]["preview"] = prev
        values = self._score(chunk, videos, errors, info, metrics)
        records = []
        for p in chunk:
            i = info.get(p.sample_id, {})
            ok = p.sample_id not in errors
            records.append(SampleRecord(
                sample_id=p.sample_id, prompt_id=p.prompt.id, prompt=p.prompt.text, seed=p.seed,
                task=self.suite.task, status="ok" if ok else "failed",
                path=self._relative(i["path"]) if i.get("path") else None, sha256=i.get("sha256"),
                gen_seconds=i.get("gen_seconds"), error=errors.get(p.sample_id), cache_key=p.cache_key,
                preview_path=self._relative(i["preview"]) if i.get("preview") and ok else None,
                tags=p.prompt.tags,
            ))
        pending.add(records, {k: v for k, v in values.items() if k not in errors}, new_generations)
        return generated, len(chunk) - generated

    def _flush(self, run_id: str, pending: "_PendingWrites") -> None:
        if pending.records:
            self.store.record_samples(run_id, pending.records, pending.metrics, pending.generations)
        pending.clear()

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
            sha256=[info[p.sample_id]["sha256"] for p in group],
        )
        out = metric.sample_values(batch)
        metric.update(batch, values=out)
        for j, p in enumerate(group):
            for name, v in out.items():
                values[p.sample_id][name] = float(v[j])

    def _run_metrics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
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
        set_level = [m for m in metrics if not m.per_sample]
        if set_level:
            rows += self._set_level_metrics(run_id, set_level)
        return rows

    def _set_level_metrics(self, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
        """Stream every successful clip of the run (including resumed ones) through set metrics."""
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


class _PendingWrites:
    """Finished samples not yet in the database (see RunOptions.flush_seconds)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.records: list[SampleRecord] = []
        self.metrics: dict[str, dict[str, float]] = {}
        self.generations: list[tuple[str, str, str, float]] = []
        self.since = time.monotonic()

    def add(self, records, metrics, generations) -> None:
        self.records += records
        self.metrics.update(metrics)
        self.generations += generations

    def due(self, seconds: float) -> bool:
        return time.monotonic() - self.since >= seconds


def _write_manifest(path: Path, record: dict[str, Any]) -> None:
    """The run's manifest next to its files: everything that produced it, as JSON (atomic)."""
    import json

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, path)


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
        from vdmbench.video import VIDEO_EXTENSIONS

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
            from vdmbench.video import VIDEO_EXTENSIONS

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


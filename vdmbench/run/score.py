"""`vdmbench score`: score video files with metrics, on one process or many (torchrun).

    vdmbench score clips/ --metrics flicker,motion [--reference real/] [--json out.json]
    torchrun --nproc-per-node 4 -m vdmbench score clips/ --metrics fvd --reference real/

Under torchrun each process decodes and scores every WORLD_SIZE-th file; the metrics are
torchmetrics whose float64 sum states are reduced across processes (gloo on CPU, nccl on GPU)
when computed, so the result equals a single-process run. Rank 0 prints and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch.distributed as dist

from vdmbench.core import atomic
from vdmbench.core.allocator import reuse_freed_memory
from vdmbench.core.errors import ConfigError, VdmbenchError
from vdmbench.core.hashing import folder_fingerprint, sha256_file
from vdmbench.core.ladder import LADDER_KEYS
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.core.resources import resolve_device, resolve_threads, torch_threads
from vdmbench.core.video import VIDEO_EXTENSIONS
from vdmbench.core.video_loader import LoadFailure, iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch, MetricContext, build_metric, metric_class, metric_spec
from vdmbench.metrics.base import DerivedMetric
from vdmbench.run.reference_sets import folder_loader

_INDEXED = re.compile(r"(.+)-(\d+)")


def _files(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"{p}: no such file or folder")
    if not files:
        raise ConfigError(f"no video files in {', '.join(map(str, inputs))}")
    return files


def _folder_id(folder: Path) -> str:
    return folder_fingerprint(_files([folder]))


def prompt_from_filename(path: Path) -> str:
    """VBench's naming: `{prompt}-{index}.mp4` gives the prompt (the text before the last `-N`)."""
    m = _INDEXED.fullmatch(path.stem)
    if m is None:
        raise ConfigError(f"{path.name}: not named '{{prompt}}-{{index}}.ext', so no prompt can be read from it")
    return m.group(1)


def parse_metric_list(text: str) -> list[Any]:
    """`flicker,motion`, or a YAML list as a suite writes it, options included:
    `[flicker, {name: fvd, covariance: stylegan-v}]`."""
    text = text.strip()
    if not text.startswith("["):
        return [m.strip() for m in text.split(",") if m.strip()]
    import yaml

    try:
        specs = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"--metrics: not a YAML list ({str(e).splitlines()[0]}); e.g. '[flicker, {{name: fvd, covariance: stylegan-v}}]'") from e
    if not isinstance(specs, list) or not all(isinstance(m, str) or (isinstance(m, dict) and isinstance(m.get("name"), str))
                                              for m in specs):
        raise ConfigError("--metrics: each entry must be a name or {name: ..., option: ...}, as in a suite")
    return specs


def check_inputs(metric_specs: list[Any], prompts_from_filenames: bool) -> None:
    """Refuse, before loading a model or reading a file, a metric that needs what `vdmbench score`
    cannot give (a CLIP score against an empty caption would be a number that means nothing)."""
    given = {"fps", "reference"} | ({"prompts"} if prompts_from_filenames else set())
    for spec in metric_specs:
        m = metric_class(metric_spec(spec)[0])
        if issubclass(m, DerivedMetric):
            raise ConfigError(f"metric {m.name!r} is computed from other metrics' stored values at the end of a run; "
                              "for VBench's scores of a folder use `vdmbench vbench score DIR`")
        missing = set(m.inputs) - given
        if missing == {"prompts"}:
            raise ConfigError(f"metric {m.name!r} needs each clip's prompt: name the files '{{prompt}}-{{index}}.mp4' "
                              "(VBench's naming) and pass --prompts-from-filenames, or use `vdmbench run`")
        if missing:
            raise ConfigError(f"metric {m.name!r} needs {', '.join(sorted(missing))}, which `vdmbench score` "
                              "cannot give; use `vdmbench run` with a suite")


def score_files(files: list[Path], metric_specs: list[Any], *, context: MetricContext, batch_size: int,
                workers: int, num_frames: int | None, rank: int = 0, world: int = 1,
                prompts_from_filenames: bool = False) -> dict[str, Any]:
    """Score `files` (this process: every `world`-th from `rank`). A file that cannot be read or
    scored is recorded under "failed" ({name: error}) and the others go on; "scored" counts the
    files that were. With no file scored anywhere, "metrics" is empty."""
    check_inputs(metric_specs, prompts_from_filenames)
    metrics = [build_metric(spec, context) for spec in metric_specs]
    prompts = {f.name: prompt_from_filename(f) for f in files} if prompts_from_filenames else {}
    mine = files[rank::world]
    per_sample: dict[str, dict[str, float]] = {}
    scored: list[str] = []
    failed: dict[str, str] = {}
    for items in iterate_videos(mine, batch_size=batch_size, workers=workers, num_frames=num_frames,
                                on_error="return"):
        videos_read = []
        for i, v in items:
            if isinstance(v, LoadFailure):
                failed[mine[i].name] = v.error
            else:
                videos_read.append((i, v))
        for idx, videos, fps in stack_by_shape(videos_read):
            names = [mine[i].name for i in idx]
            # file hashes key the feature caches: scoring the same files again extracts nothing
            batch = ClipBatch(videos=videos, fps=fps, sample_ids=names, prompts=[prompts.get(n, "") for n in names],
                              sha256=[sha256_file(mine[i]) for i in idx])
            for name, values in _score_batch(metrics, batch, failed).items():
                scored.append(name)
                if values:
                    per_sample.setdefault(name, {}).update(values)
    if world > 1:  # every rank needs the totals to decide the same way whether to compute
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (per_sample, scored, failed))
        per_sample = {k: v for part, _, _ in gathered for k, v in part.items()}
        scored = [n for _, part, _ in gathered for n in part]
        failed = {k: v for _, _, part in gathered for k, v in part.items()}
    results: dict[str, float] = {}
    ladders: dict[str, dict[str, Any]] = {}  # set-level metrics: value at growing subset sizes (core/ladder.py)
    if scored:
        for m in metrics:  # compute() syncs the states of all processes when torch.distributed is up
            out = m.compute()
            results.update({k: float(v) for k, v in out.items()})
            described = {} if m.per_sample else m.describe()
            if "ladder" in described:
                ladders[m.name] = {k: described[k] for k in LADDER_KEYS if k in described}
    return {"files": len(files), "scored": len(scored), "failed": dict(sorted(failed.items())),
            "metrics": results, "ladders": ladders, "per_sample": dict(sorted(per_sample.items())),
            "world_size": world}


def _score_batch(metrics: list[Any], batch: ClipBatch, failed: dict[str, str]) -> dict[str, dict[str, float]]:
    """Update every metric with a batch: {name: per-clip values} of the clips scored. A batch that
    a metric refuses (e.g. a one-frame clip for flicker) is retried clip by clip, so only the
    clips at fault are recorded in `failed`."""
    names = list(batch.sample_ids)
    try:
        for m in metrics:  # validate first: a refused batch leaves no metric half-updated
            m.check_batch(batch)
        values = [m.sample_values(batch) if m.per_sample else {} for m in metrics]
    except VdmbenchError as e:
        if len(names) == 1:
            failed[names[0]] = str(e)
            return {}
        out: dict[str, dict[str, float]] = {}
        for j in range(len(names)):
            one = ClipBatch(videos=batch.videos[j:j + 1], fps=batch.fps[j:j + 1], sample_ids=names[j:j + 1],
                            prompts=batch.prompts[j:j + 1], sha256=batch.sha256[j:j + 1])
            out.update(_score_batch(metrics, one, failed))
        return out
    per_clip: dict[str, dict[str, float]] = {n: {} for n in names}
    for m, mvalues in zip(metrics, values):
        if m.per_sample:
            m.update(batch, values=mvalues)
            for k, v in mvalues.items():
                for j, n in enumerate(names):
                    x = float(v[j])
                    if math.isfinite(x):  # NaN: no value for this clip (one a filter excluded)
                        per_clip[n][k] = x
        else:
            m.update(batch)
    return per_clip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="vdmbench score", description=__doc__.split("\n\n")[0],
        epilog="A file that cannot be read or scored is reported as `failed NAME: error` (and under "
               "\"failed\" in --json) and the others are scored. Exit code: 0 when at least one file "
               "was scored, 1 when none could be, 2 on bad arguments. "
               "Distributed: torchrun --nproc-per-node N -m vdmbench score ...")
    ap.add_argument("inputs", nargs="+", type=Path, help="video files or folders")
    ap.add_argument("--metrics", default="flicker",
                    help="comma-separated metric names (`vdmbench list metrics`), or a suite's YAML list with "
                         "options: '[flicker, {name: fvd, covariance: stylegan-v}]'")
    ap.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR,
                    help="where feature caches go (default: %(default)s)")
    ap.add_argument("--reference", type=Path, help="folder of real videos for FVD/KVD")
    ap.add_argument("--num-frames", type=int, help="use the first N frames of every clip")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="decoder processes per rank")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", default="auto",
                    help="torch CPU threads per rank ('auto': every usable core but one, which the decoders use)")
    ap.add_argument("--json", type=Path, help="write results here (rank 0)")
    ap.add_argument("--prompts-from-filenames", action="store_true",
                    help="read each clip's prompt from its name, VBench's '{prompt}-{index}.mp4' (for clip_similarity)")
    args = ap.parse_args(argv)
    # Torch's default pool takes every core, beside the decoder processes; `auto` leaves them one,
    # as `vdmbench run` does (core/resources.py). The count is explicit: it can move low bits.
    # Restored afterwards, for callers that run main() in their own process (tests).
    with torch_threads(resolve_threads(args.threads)):
        return _score(args)


def _score(args: argparse.Namespace) -> int:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(args.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    # On the CPU, a model's activations are page-faulted in afresh on every batch under glibc's
    # default malloc; keeping freed memory saves ~20% of I3D's CPU time (core/allocator.py).
    with reuse_freed_memory(enabled=device == "cpu"):
        return _score_on(args, device, rank, world)


def _score_on(args: argparse.Namespace, device: str, rank: int, world: int) -> int:
    try:
        reference = None
        if args.reference:
            reference = folder_loader(args.reference, args.num_frames or 16, args.batch_size, args.workers)
        context = MetricContext(device=device, batch_size=args.batch_size, reference=reference,
                                reference_id=_folder_id(args.reference) if args.reference else None,
                                cache_dir=args.results_dir / "cache" / "features")
        result = score_files(_files(args.inputs), parse_metric_list(args.metrics),
                             context=context, batch_size=args.batch_size, workers=args.workers,
                             num_frames=args.num_frames, rank=rank, world=world,
                             prompts_from_filenames=args.prompts_from_filenames)
        if rank == 0:
            _report(result, args.json)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0 if result["scored"] else 1


def _report(result: dict[str, Any], json_path: Path | None) -> None:
    for name, error in result["failed"].items():
        print(f"failed {name}: {error}")
    for k, v in result["metrics"].items():
        print(f"{k}: {v:.6f}")
    unsettled = [lad for lad in result.get("ladders", {}).values() if lad.get("settled") is False]
    for ladder in unsettled:
        print(f"warning: {ladder.get('ladder_warning', '')}")
    if unsettled:
        print(f"  ({unsettled[0].get('ladder_rule', '')})")
    if result["failed"]:
        print(f"scored {result['scored']} of {result['files']} files; {len(result['failed'])} failed")
    if json_path:
        atomic.write_text(json_path, json.dumps(result, indent=2))
    if not result["scored"]:
        print(f"vdmbench: error: none of the {result['files']} files could be scored (see the failures above)",
              file=sys.stderr)

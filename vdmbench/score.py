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
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist

from vdmbench.errors import ConfigError
from vdmbench.hashing import folder_fingerprint
from vdmbench.loader import iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.runner import resolve_device
from vdmbench.suites import Suite
from vdmbench.video import VIDEO_EXTENSIONS


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


def score_files(files: list[Path], metric_specs: list[Any], *, context: MetricContext, batch_size: int,
                workers: int, num_frames: int | None, rank: int = 0, world: int = 1) -> dict[str, Any]:
    metrics = [build_metric(spec, context) for spec in metric_specs]
    mine = files[rank::world]
    per_sample: dict[str, dict[str, float]] = {}
    for items in iterate_videos(mine, batch_size=batch_size, workers=workers, num_frames=num_frames):
        for idx, videos, fps in stack_by_shape(items):
            names = [mine[i].name for i in idx]
            batch = ClipBatch(videos=videos, fps=fps, sample_ids=names, prompts=[""] * len(idx))
            for m in metrics:
                if m.per_sample:
                    values = m.sample_values(batch)
                    m.update(batch, values=values)
                    for j, n in enumerate(names):
                        per_sample.setdefault(n, {}).update({k: float(v[j]) for k, v in values.items()})
                else:
                    m.update(batch)
    results: dict[str, float] = {}
    for m in metrics:  # compute() syncs the states of all processes when torch.distributed is up
        out = m.compute()
        results.update({k: float(v) for k, v in out.items()})
    if world > 1:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, per_sample)
        per_sample = {k: v for part in gathered for k, v in part.items()}
    return {"files": len(files), "metrics": results, "per_sample": dict(sorted(per_sample.items())),
            "world_size": world}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vdmbench score", description=__doc__.split("\n\n")[0],
                                 epilog="Distributed: torchrun --nproc-per-node N -m vdmbench score ...")
    ap.add_argument("inputs", nargs="+", type=Path, help="video files or folders")
    ap.add_argument("--metrics", default="flicker", help="comma-separated metric names (`vdmbench list metrics`)")
    ap.add_argument("--reference", type=Path, help="folder of real videos for FVD/KVD")
    ap.add_argument("--num-frames", type=int, help="use the first N frames of every clip")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="decoder processes per rank")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, help="write results here (rank 0)")
    args = ap.parse_args(argv)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(args.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    try:
        reference = None
        if args.reference:
            from vdmbench.runner import reference_loader

            pseudo = Suite(name="score", version=1, task="t2v", num_frames=args.num_frames or 16, height=0, width=0,
                           fps=8.0, prompts=(), reference={"source": "folder", "path": str(args.reference)})
            reference = reference_loader(pseudo, args.batch_size, args.workers)
        context = MetricContext(device=device, batch_size=args.batch_size, reference=reference,
                                reference_id=_folder_id(args.reference) if args.reference else None,
                                cache_dir=Path("results") / "cache" / "features")
        result = score_files(_files(args.inputs), [m.strip() for m in args.metrics.split(",") if m.strip()],
                             context=context, batch_size=args.batch_size, workers=args.workers,
                             num_frames=args.num_frames, rank=rank, world=world)
        if rank == 0:
            for k, v in result["metrics"].items():
                print(f"{k}: {v:.6f}")
            if args.json:
                args.json.write_text(json.dumps(result, indent=2))
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0

"""VBench dimensions: clips/s end to end from mp4 files, and as a fraction of the metric's own ceiling.

For each dimension (seeded random weights, so it runs offline; the networks have their published
sizes unless said otherwise) two timings on the same clips:
- ceiling: `metric.sample_values` on clips already decoded into memory (the dimension's frame
  selection, resize, normalization and network forward: what the metric cannot avoid);
- end to end: `vdmbench.run.score.score_files` from H.264 yuv420p mp4 files (decode, batching,
  hand-off, the same metric), i.e. what `vdmbench score` / `vdmbench vbench score` do.
Then the whole group in one `score_files` call (one decode of each clip shared by every dimension)
against the sum of the ceilings.

    python benchmarks/bench_vbench_dims.py --clips 2 --frames 16 --size 128 --threads 1

Threads: torch.set_num_threads(--threads) in this process, and the decoders run in this process
(--workers 0 by default) so that the timing is not shared with helper processes. aesthetic_quality
uses CLIP ViT-B/32 unless --full (ViT-L/14 costs seconds per frame on a CPU); ViCLIP dimensions
are left out unless named (108 s per clip on one CPU thread); temporal_flickering runs without its
static filter (the moving synthetic clips would all be excluded; the filter's RAFT costs what
dynamic_degree's does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fvd_throughput import load, machine, make_h264_clips

QUALITY = ["subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
           "dynamic_degree", "aesthetic_quality", "imaging_quality"]


def spec(name: str, full: bool) -> dict:
    """The dimension with seeded random weights (and the fast CLIP for aesthetic unless --full)."""
    out: dict = {"name": name, "pretrained": "random"}
    if name == "aesthetic_quality" and not full:
        out["clip_model"] = "ViT-B-32"
    if name == "temporal_flickering":
        # The synthetic clips move, so the static filter would keep none and leave no value; its
        # RAFT cost is dynamic_degree's (the same network on about the same pairs).
        out["static_filter"] = False
        del out["pretrained"]
    return out


def decoded(paths: list[Path]):
    from vdmbench.core.video import read_video
    from vdmbench.metrics import ClipBatch

    videos = [read_video(p) for p in paths]
    return ClipBatch(videos=torch.stack([v.frames for v in videos]), fps=[v.fps for v in videos],
                     prompts=["a red circle moving right"] * len(videos), sample_ids=[p.name for p in paths])


def ceiling(name: str, full: bool, batch, repeats: int) -> tuple[float, float]:
    """(median seconds of sample_values over the clips, seconds to build the metric)."""
    from vdmbench.metrics import MetricContext, build_metric

    t0 = time.perf_counter()
    metric = build_metric(spec(name, full), MetricContext(batch_size=len(batch)))
    build = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        metric.sample_values(batch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), build


def end_to_end(names: list[str], full: bool, paths: list[Path], workers: int, repeats: int) -> float:
    """Median seconds of score_files over the files (metrics built once, outside the timing)."""
    from vdmbench.metrics import MetricContext
    from vdmbench.run import score

    times = []
    ctx = MetricContext(batch_size=len(paths))
    specs = [spec(n, full) for n in names]
    score.score_files(paths, specs, context=ctx, batch_size=len(paths), workers=workers, num_frames=None)  # warm
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = score.score_files(paths, specs, context=ctx, batch_size=len(paths), workers=workers, num_frames=None)
        times.append(time.perf_counter() - t0)
        assert not result["failed"], result["failed"]
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", default=",".join(QUALITY), help="comma-separated dimensions (default: the Quality group)")
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=128, help="square frames; RAFT needs >= 121, AMT-S >= 128")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="decoder processes for the end-to-end runs")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="aesthetic_quality on CLIP ViT-L/14 (VBench's model)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    names = [n.strip() for n in args.dims.split(",") if n.strip()]
    print(f"# {machine()}; torch {torch.__version__}, {args.threads} thread(s); load before: {load()}")
    print(f"# {args.clips} H.264 yuv420p clips, {args.frames} frames, {args.size}x{args.size}, 8 fps; random weights")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_h264_clips(Path(tmp), args.clips, args.size, seed=0, frames=args.frames)
        batch = decoded(paths)
        rows, total_ceiling = [], 0.0
        for name in names:
            c, build = ceiling(name, args.full, batch, args.repeats)
            e = end_to_end([name], args.full, paths, args.workers, args.repeats)
            total_ceiling += c
            rows.append((name, args.clips / e, args.clips / c, c / e, build))
            print(f"{name:<24} end to end {args.clips / e:7.3f} clips/s   ceiling {args.clips / c:7.3f} clips/s   "
                  f"fraction {c / e:5.1%}   (build {build:.1f} s)", flush=True)
        group = end_to_end(names, args.full, paths, args.workers, args.repeats)
        print(f"{'all, one decode':<24} end to end {args.clips / group:7.3f} clips/s   ceiling "
              f"{args.clips / total_ceiling:7.3f} clips/s   fraction {total_ceiling / group:5.1%}")
    print(f"# load after: {load()}")
    print("\n| dimension | end to end clips/s | ceiling clips/s | fraction |\n| --- | --- | --- | --- |")
    for name, e2e, ceil, frac, _ in rows:
        print(f"| {name} | {e2e:.3f} | {ceil:.3f} | {frac:.0%} |")
    print(f"| all, one decode | {args.clips / group:.3f} | {args.clips / total_ceiling:.3f} | {total_ceiling / group:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

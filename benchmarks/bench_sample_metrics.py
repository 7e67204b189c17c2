"""Per-sample metric throughput: each metric a run computes on every clip, as a fraction of its ceiling.

The ceiling is the part a metric cannot avoid: CLIP's image-encoder forward on already
preprocessed pixels; the DIS optical flows for flow warping error (forward + backward) and motion
(forward); one pass over the clip's bytes for flicker (pure arithmetic). The metric is timed
through its public `sample_values`, one metric at a time (no sharing between metrics, the worst
case of a run). Repeats are interleaved (ceiling, metric, ceiling, metric ...) and medians printed
with the load; CPU seconds are printed beside wall seconds, since other users' load moves wall
time far more.

    python benchmarks/bench_sample_metrics.py [--clips 4] [--frames 16] [--sizes 128 256] [--repeats 3]
        [--threads 1] [--metrics clip flicker flow_warping_error motion]

CLIP runs at seeded random weights (`pretrained: random`): the same architecture and cost as
ViT-B-32/openai, numbers not comparable (no weights are downloaded).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import torch


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def clips(n: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """Moving waves with grain, uint8 [n, frames, size, size, 3] (texture for the flow to track)."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    out = torch.empty(n, frames, size, size, 3, dtype=torch.uint8)
    for i in range(n):
        a, b = (torch.rand(2, generator=gen) * 4 + 1).tolist()
        for t in range(frames):
            phase = (xx * a + yy * b + 2.0 * t) / size * 6.28
            rgb = torch.stack([torch.sin(phase), torch.cos(phase * 0.7 + i), torch.sin(yy / size * 3 + 0.2 * t)], -1)
            out[i, t] = ((rgb + torch.randn(rgb.shape, generator=gen) * 0.05 + 1) * 127).clamp(0, 255).to(torch.uint8)
    return out


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def sides(metric_name: str, videos: torch.Tensor) -> dict[str, Callable[[], object]]:
    """{'ceiling': ..., 'metric': ...} for one metric on one batch of clips."""
    from vdmbench.metrics import ClipBatch, MetricContext, build_metric

    batch = ClipBatch(videos=videos, fps=[8.0] * len(videos), prompts=["a red square moving left"] * len(videos))
    if metric_name == "clip":
        ctx = MetricContext(batch_size=8)
        metric = build_metric({"name": "clip_temporal", "pretrained": "random"}, ctx)
        encoder = metric.encoder  # type: ignore[attr-defined]
        from PIL import Image

        frames = videos.reshape(-1, *videos.shape[2:])
        pixels = torch.stack([encoder.transform(Image.fromarray(f.numpy())) for f in frames])  # outside the timing

        @torch.no_grad()
        def forward() -> object:
            return [encoder.model.encode_image(p) for p in pixels.split(encoder.batch_size * 4)]

        forward()  # warm-up
        return {"ceiling": forward, "metric": lambda: metric.sample_values(batch)}
    if metric_name == "flicker":
        metric = build_metric("flicker", MetricContext())
        return {"ceiling": lambda: videos.sum(dtype=torch.int64), "metric": lambda: metric.sample_values(batch)}
    if metric_name in ("flow_warping_error", "motion"):
        from vdmbench.features.flow import FlowEstimator

        flow = FlowEstimator("dis")
        both = metric_name == "flow_warping_error"

        def flows() -> object:
            return [flow.pairs(v) if both else flow.forward_flows(v) for v in videos]

        metric = build_metric(metric_name, MetricContext())
        return {"ceiling": flows, "metric": lambda: metric.sample_values(batch)}
    raise SystemExit(f"unknown metric {metric_name!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch (and OpenCV) threads")
    ap.add_argument("--metrics", nargs="+", default=["clip", "flicker", "flow_warping_error", "motion"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), OpenCV {cv2.__version__}; {load()}", flush=True)
    rows = []
    for size in args.sizes:
        videos = clips(args.clips, args.frames, size)
        for name in args.metrics:
            fns = sides(name, videos)
            fns["metric"]()  # warm-up (lazy imports, first-call allocations)
            wall: dict[str, list[float]] = {"ceiling": [], "metric": []}
            cpu: dict[str, list[float]] = {"ceiling": [], "metric": []}
            print(f"{name} at {size}px, {args.clips} clips x {args.frames} frames ({load()}):", flush=True)
            for r in range(args.repeats):
                for side in ("ceiling", "metric"):
                    w, c = timed(fns[side])
                    wall[side].append(w)
                    cpu[side].append(c)
                print(f"  repeat {r + 1}: ceiling {wall['ceiling'][-1]:.3f} s, metric {wall['metric'][-1]:.3f} s "
                      f"(CPU {cpu['ceiling'][-1]:.3f} / {cpu['metric'][-1]:.3f})", flush=True)
            mw = {k: statistics.median(v) for k, v in wall.items()}
            mc = {k: statistics.median(v) for k, v in cpu.items()}
            frac, frac_cpu = mw["ceiling"] / mw["metric"], mc["ceiling"] / mc["metric"]
            clips_s = args.clips / mw["metric"]
            print(f"  median: {clips_s:.2f} clips/s, {100 * frac:.0f}% of the ceiling (CPU {100 * frac_cpu:.0f}%)", flush=True)
            rows.append(f"| {name} | {size}px | {clips_s:.2f} clips/s | {100 * frac:.0f}% (CPU {100 * frac_cpu:.0f}%) |")
    print("\n| metric | clips | throughput | share of its ceiling |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""aesthetic_quality (VBench, CLIP ViT-L/14 + LAION head): seconds to build the metric and seconds
per frame on this machine, at a fixed thread count, with seeded random weights (the timings are the
real networks'; the values mean nothing).

    python benchmarks/bench_vbench_aesthetic.py [--threads 1] [--frames 4] [--clip-model ViT-L-14] [--size 320x512]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from vdmbench.metrics.base import ClipBatch, MetricContext
from vdmbench.metrics.vbench_aesthetic import AestheticQuality


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--clip-model", default="ViT-L-14", choices=["ViT-L-14", "ViT-B-32"])
    ap.add_argument("--size", default="320x512")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(x) for x in args.size.split("x"))
    t0 = time.perf_counter()
    metric = AestheticQuality(MetricContext(seed=0), pretrained="random", clip_model=args.clip_model)
    built = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (1, args.frames, h, w, 3), generator=g, dtype=torch.uint8)
    t0 = time.perf_counter()
    metric.sample_values(ClipBatch(videos=clip, fps=[8.0]))
    per_frame = (time.perf_counter() - t0) / args.frames
    print(json.dumps({"clip_model": args.clip_model, "threads": args.threads, "frames": args.frames,
                      "size": args.size, "build_s": round(built, 2), "s_per_frame": round(per_frame, 3),
                      "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()

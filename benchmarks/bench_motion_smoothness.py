"""motion_smoothness (VBench, AMT-S): seconds per frame pair on this machine, and how much the
value moves with the network's downscale factor (scale 1, vdmbench's default, against VBench's
GPU rule's 0.5 and 16/22) on a synthetic moving clip.

    python benchmarks/bench_motion_smoothness.py [--threads 1] [--weights amt-s.pth] [--size 320x512]

Without --weights it uses seeded random AMT-S weights: timings are the real network's, but the
scale differences of random weights say nothing about the published model's.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from vdmbench.metrics.base import ClipBatch, MetricContext
from vdmbench.metrics.vbench_motion_smoothness import MotionSmoothness


def moving_clip(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w + 4 * t]
    base = np.stack([128 + 90 * np.sin(xx / 9.0 + c) * np.cos(yy / 11.0 - c) for c in range(3)], -1)
    base = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    return np.stack([base[:, 3 * i:3 * i + w] for i in range(t)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--size", default="320x512")
    ap.add_argument("--frames", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(x) for x in args.size.split("x"))
    clip = ClipBatch(videos=torch.from_numpy(moving_clip(args.frames, h, w)[None]), fps=[24.0])
    opts = {"weights": args.weights} if args.weights else {"pretrained": "random"}
    pairs = (args.frames + 1) // 2 - 1
    out: dict[str, object] = {"threads": args.threads, "size": f"{h}x{w}", "frames": args.frames, "pairs": pairs,
                              "weights": args.weights or "random (seed 0)"}
    values = {}
    for scale in (1.0, 0.5, 16 / 22):
        m = MotionSmoothness(MetricContext(seed=0), scale=scale, **opts)
        t0 = time.perf_counter()
        values[scale] = float(m.sample_values(clip)["motion_smoothness"][0])
        out[f"seconds_per_pair_scale_{scale:.4g}"] = round((time.perf_counter() - t0) / pairs, 3)
    out.update({f"value_scale_{s:.4g}": round(v, 6) for s, v in values.items()})
    out.update({f"diff_vs_scale_1_at_{s:.4g}": round(v - values[1.0], 6) for s, v in values.items() if s != 1.0})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

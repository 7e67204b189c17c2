"""Seconds per clip of the VideoMAE-v2 (cd-fvd) and V-JEPA (JEDi) extractors.

Random weights by default (the offline variants: published layout and input size, small width);
`--videomae-weights` / `--vjepa-weights` + `--probe-weights` time the published models instead.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_distribution_backbones.py [--threads 1] [--clips 4]
       [--device cpu] [--precision fp32]
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), help="input frame height width")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--videomae-weights")
    parser.add_argument("--vjepa-weights")
    parser.add_argument("--probe-weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vdmbench.features.videomae import build_videomae_features
    from vdmbench.features.vjepa import build_vjepa_features

    common = dict(device=args.device, batch_size=args.clips, precision=args.precision)
    builders = {
        "videomae-v2": lambda: build_videomae_features(
            "videomae-v2" if args.videomae_weights else "random-videomae-v2", weights=args.videomae_weights, **common),
        "vjepa": lambda: build_vjepa_features(
            "vjepa" if args.vjepa_weights else "random-vjepa", weights=args.vjepa_weights,
            probe_weights=args.probe_weights, resize=224, **common),
    }
    videos = torch.randint(0, 256, (args.clips, args.frames, *args.size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    print(f"threads {args.threads}, {args.clips} clips of {args.frames}x{args.size[0]}x{args.size[1]}, "
          f"{args.device} {args.precision}, load {os.getloadavg()[0]:.2f}")
    for name, build in builders.items():
        t0 = time.perf_counter()
        extractor, info = build()
        t1 = time.perf_counter()
        extractor(videos[:1])  # warm-up
        t2 = time.perf_counter()
        extractor(videos)
        t3 = time.perf_counter()
        print(f"{name}: {info['architecture']} ({info['weights']}): build {t1 - t0:.2f} s, "
              f"{(t3 - t2) / args.clips:.3f} s/clip (warm-up {t2 - t1:.2f} s)")


if __name__ == "__main__":
    main()

"""Seconds the sample-size ladder adds to a set metric's compute() (FVD, KVD, JEDi), per feature
dimension and number of clips: the headline (value + bootstrap CI) alone vs the ladder's rungs.

Feature extraction is not part of it (the ladder reuses the kept features), so the extractor is
replaced by seeded Gaussian features of the backend's dimension: I3D 400, VideoMAE-v2 ViT-g 1408,
V-JEPA ViT-H 1280. Reference: 2048 clips, fixed.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_ladder.py [--threads 1] [--clips 2048] [--n-boot 200]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def features(n: int, d: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(d, d)) / np.sqrt(d)  # correlated, as real features are
    return torch.from_numpy((rng.normal(size=(n, d)) @ basis).astype(np.float32)).to(torch.float64)


def timed(metric, fake: torch.Tensor, real: torch.Tensor) -> float:
    metric._add("real", real)
    metric._add("fake", fake)
    if getattr(metric, "keep_feats", True):
        metric.fake_feats.append(fake.to(torch.float32) if metric.name != "kvd" else fake)
    if metric.name == "kvd":
        metric.real_feats.append(real)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric.compute()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, nargs="+", default=[2048])
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vdmbench.metrics import MetricContext
    from vdmbench.metrics.fvd import FVD, KVD
    from vdmbench.metrics.jedi import JEDi

    def kvd_add(self, side, f):  # KVD keeps features only; give it the same entry point
        pass

    KVD._add = kvd_add  # type: ignore[attr-defined]
    cases = [("fvd", "i3d", 400), ("fvd", "videomae-v2", 1408), ("kvd", "i3d", 400), ("jedi", "vjepa", 1280)]
    print(f"threads {args.threads}, n_boot {args.n_boot}, reference 2048 clips")
    print("metric | backend dim | clips | headline s | with ladder s | ladder adds | rungs")
    for n in args.clips:
        for name, backend, d in cases:
            real, fake = features(2048, d, 1), features(n, d, 2) + 0.1
            times = {}
            for ladder in (False, True):
                ctx = MetricContext(seed=0)
                if name == "jedi":
                    m = JEDi(ctx, features="random-vjepa", n_boot=args.n_boot, ladder=ladder)
                    m.extractor.dim = d
                    for side in ("fake", "real"):
                        setattr(m, f"{side}_moment", torch.zeros(d, d, dtype=torch.float64))
                else:
                    cls = FVD if name == "fvd" else KVD
                    m = cls(ctx, features="random-i3d", resize=32, n_boot=args.n_boot, ladder=ladder)
                    if name == "fvd":
                        m.fake_sum, m.real_sum = (torch.zeros(d, dtype=torch.float64) for _ in range(2))
                        m.fake_outer, m.real_outer = (torch.zeros(d, d, dtype=torch.float64) for _ in range(2))
                times[ladder] = timed(m, fake, real)
            rungs = len(m.describe().get("ladder", []))
            print(f"{name} | {backend} {d} | {n} | {times[False]:.2f} | {times[True]:.2f} | "
                  f"+{times[True] - times[False]:.2f} s ({times[True] / times[False]:.2f}x) | {rungs}", flush=True)


if __name__ == "__main__":
    main()

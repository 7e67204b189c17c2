"""FVD feature throughput: end to end from mp4 files vs the pure I3D forward (the compute ceiling).

16-frame 224x224 clips, I3D at seeded random weights (same architecture and cost as the real one).
Also measures the options that could speed up the forward (channels_last_3d, bf16 autocast,
torch.compile) and how far each moves FVD; the harness turns one on by default only if it is faster
and moves FVD by less than 1e-3 relative.

    python benchmarks/bench_fvd_throughput.py [--clips 16] [--batch-size 4] [--workers 1] [--options] [--device cuda] [--clips-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_clips(folder: Path, n: int, frames: int = 16, size: int = 224) -> list[Path]:
    """Smooth moving gradients (compress like real video, unlike noise)."""
    from vdmbench.core.video import Video, write_video

    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    paths = []
    for i in range(n):
        clip = torch.empty(frames, size, size, 3, dtype=torch.uint8)
        for t in range(frames):
            phase = (xx + 3 * t * (1 + i % 3) + yy * (i % 5)) / size * 6.28
            clip[t, ..., 0] = ((torch.sin(phase) + 1) * 127).to(torch.uint8)
            clip[t, ..., 1] = ((torch.cos(phase * 0.7 + i) + 1) * 127).to(torch.uint8)
            clip[t, ..., 2] = (yy * 255 // size).to(torch.uint8)
        paths.append(write_video(Video(clip, 8.0), folder / f"clip{i:04d}.mp4"))
    return paths


def i3d(seed: int = 0, device: str = "cpu"):
    from vdmbench.features.i3d import InceptionI3d, init_random_

    return init_random_(InceptionI3d(), seed).eval().to(device)


@torch.no_grad()
def features(model, videos: torch.Tensor, *, channels_last: bool = False, bf16: bool = False) -> torch.Tensor:
    from vdmbench.features.i3d import fvd_preprocess

    device = next(model.parameters()).device
    x = fvd_preprocess(videos.to(device, non_blocking=True))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        return model(x)[0].to(torch.float64).cpu()  # .cpu() waits for the GPU: timings are honest


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--options", action="store_true", help="also measure channels_last_3d, bf16, torch.compile")
    ap.add_argument("--device", default="cpu", help="where I3D runs: cpu, cuda, ...")
    ap.add_argument("--clips-dir", default=None,
                    help="use the .mp4 clips in this folder (else --clips are written to a temp folder)")
    args = ap.parse_args()
    from vdmbench.core.video_loader import iterate_videos
    from vdmbench.metrics.fvd import frechet_distance

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.clips_dir:
            paths = sorted(Path(args.clips_dir).glob("*.mp4"))[: args.clips]
        else:
            paths = make_clips(Path(tmp), args.clips)
        from vdmbench.core.video import read_video

        preloaded = torch.stack([read_video(p).frames for p in paths])
        model = i3d(device=args.device)
        features(model, preloaded[: args.batch_size])  # warm-up (and cuDNN autotuning on a GPU)

        def ceiling():
            return torch.cat([features(model, b) for b in preloaded.split(args.batch_size)])

        t_ceiling, f_ref = timed(ceiling)

        def end_to_end():
            out = []
            for items in iterate_videos(paths, batch_size=args.batch_size, workers=args.workers):
                out.append(features(model, torch.stack([v.frames for _, v in items])))
            return torch.cat(out)

        t_e2e, f_e2e = timed(end_to_end)
        # Bit-equal on the CPU; a GPU may pick other conv algorithms between calls, so allow float noise.
        diff = float((f_ref - f_e2e).abs().max() / f_ref.abs().max())
        assert diff < 1e-5, f"decoding changed the features (max relative difference {diff:.2e})"
        n = len(paths)
        print(f"ceiling (I3D forward on preloaded tensors): {n / t_ceiling:.3f} clips/s")
        print(f"end to end from mp4 (decode in {args.workers} worker(s), batch {args.batch_size}): {n / t_e2e:.3f} clips/s "
              f"-> {100 * t_ceiling / t_e2e:.1f}% of the ceiling")

        if args.options:
            half = n // 2
            real, fake = f_ref[:half].numpy(), f_ref[half:].numpy()

            def fvd_of(f: torch.Tensor) -> float:
                a, b = f[:half].numpy(), f[half:].numpy()
                return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))

            base_fvd = fvd_of(f_ref)
            variants = {
                "channels_last_3d": lambda: torch.cat([features(model.to(memory_format=torch.channels_last_3d), b,
                                                                channels_last=True) for b in preloaded.split(args.batch_size)]),
                "bf16 autocast": lambda: torch.cat([features(model, b, bf16=True) for b in preloaded.split(args.batch_size)]),
            }
            try:
                compiled = torch.compile(i3d(device=args.device))
                features(compiled, preloaded[: args.batch_size])  # compile outside the timing
                variants["torch.compile"] = lambda: torch.cat([features(compiled, b) for b in preloaded.split(args.batch_size)])
            except Exception as e:  # no compiler toolchain: say so rather than fail
                print(f"torch.compile unavailable: {type(e).__name__}: {str(e)[:120]}")
            for name, fn in variants.items():
                try:
                    t, f = timed(fn)
                except Exception as e:
                    print(f"{name}: failed ({type(e).__name__}: {str(e)[:120]})")
                    continue
                rel = abs(fvd_of(f) - base_fvd) / abs(base_fvd)
                verdict = "faster" if t < t_ceiling else "slower"
                print(f"{name}: {n / t:.3f} clips/s ({t_ceiling / t:.2f}x, {verdict}), FVD moves by {rel:.2e} relative")
            model.to(memory_format=torch.contiguous_format)
            del real, fake
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Runner figures: generation speed, harness overhead, cached re-run, peak memory vs clip count.

    python benchmarks/bench_runner.py generation --models reference-unet3d reference-temporal-attention
    python benchmarks/bench_runner.py overhead   --model reference-unet3d
    python benchmarks/bench_runner.py cache      --model reference-unet3d
    python benchmarks/bench_runner.py memory     --counts 64 512
    python benchmarks/bench_runner.py all

Every figure is printed with the machine it was measured on. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def _suite(n_prompts: int = 8, seeds=(0,), metrics=("flicker",)) -> "Suite":
    from vdmbench.suites import load_suite, parse_suite

    base = load_suite("smoke").to_dict()
    colors, shapes = ["red", "green", "blue", "yellow"], ["circle", "square", "triangle"]
    dirs = ["left", "right", "up", "down"]
    prompts = [{"id": f"p{i}", "text": f"a {colors[i % 4]} {shapes[i % 3]} moving {dirs[(i // 4) % 4]}"} for i in range(n_prompts)]
    return parse_suite({**base, "prompts": prompts, "seeds": list(seeds), "metrics": list(metrics)})


def _requests(suite):
    from vdmbench.runner import plan_samples

    return [p.request for p in plan_samples(suite, {"name": "x", "adapter": "x", "params": {}})]


def bench_generation(models: list[str], n: int) -> None:
    from vdmbench.adapters import build_adapter, load_adapter_config

    suite = _suite(n)
    for name in models:
        adapter = build_adapter(load_adapter_config(name))
        reqs = _requests(suite)
        adapter.generate(reqs[:1])  # warm-up
        t0 = time.perf_counter()
        out = adapter.generate(reqs)
        dt = time.perf_counter() - t0
        assert all(not isinstance(o, Exception) for o in out)
        print(f"generation {name}: {len(reqs) / dt:.2f} clips/s, {dt / len(reqs):.3f} s/clip "
              f"({suite.num_frames} frames {suite.width}x{suite.height}, {suite.steps} steps)")


def bench_overhead(model: str, n: int) -> None:
    """Harness time beyond the model's own generate() calls: writing, hashing, scoring, storing."""
    from vdmbench.adapters import build_adapter, load_adapter_config
    from vdmbench.runner import RunOptions, Runner

    suite = _suite(n)
    cfg = load_adapter_config(model)
    adapter = build_adapter(cfg)
    reqs = _requests(suite)
    adapter.generate(reqs[:1])
    t0 = time.perf_counter()
    for r in reqs:  # the runner calls generate once per adapter batch; do the same
        adapter.generate([r])
    direct = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, workers=0), adapter=adapter)
        t0 = time.perf_counter()
        runner.run()
        harness = time.perf_counter() - t0
    print(f"overhead {model}: direct generate {direct:.2f} s, vdmbench run {harness:.2f} s for {len(reqs)} clips "
          f"-> harness overhead {100 * (harness - direct) / direct:.1f}% of generation time")


def bench_cache(model: str, n: int) -> None:
    from vdmbench.adapters import load_adapter_config
    from vdmbench.runner import RunOptions, Runner

    suite = _suite(n)
    cfg = load_adapter_config(model)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(2):
            runner = Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, workers=0))
            t0 = time.perf_counter()
            s = runner.run()
            times.append(time.perf_counter() - t0)
        assert s.generated == 0, "the second run should be fully cached"
    print(f"cache {model}: first run {times[0]:.2f} s, cached re-run {times[1]:.3f} s -> {times[0] / times[1]:.1f}x faster")


def _memory_child(count: int, folder: str, metrics: str) -> None:
    from vdmbench.runner import RunOptions, Runner
    from vdmbench.suites import parse_suite

    suite = parse_suite({"name": "mem", "num_frames": 16, "height": 64, "width": 64, "fps": 8,
                         "metrics": json.loads(metrics), "prompts": [{"id": f"c{i}", "text": f"clip {i}"} for i in range(count)]})
    cfg = {"name": "mem-folder", "adapter": "folder", "params": {"path": folder}}
    with tempfile.TemporaryDirectory() as tmp:
        Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, preview=False)).run()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bench_memory(counts: list[int], metrics: list) -> None:
    from vdmbench.video import Video, write_video

    with tempfile.TemporaryDirectory() as folder:
        g = torch.Generator().manual_seed(0)
        for i in range(max(counts)):
            frames = torch.randint(0, 256, (16, 64, 64, 3), generator=g, dtype=torch.uint8)
            write_video(Video(frames, 8.0), Path(folder) / f"c{i}-0.mp4")
        peaks = {}
        for c in counts:
            out = subprocess.run([sys.executable, __file__, "_memory_child", str(c), folder, json.dumps(metrics)],
                                 capture_output=True, text=True, check=True)
            peaks[c] = int(out.stdout.strip().splitlines()[-1]) / 1024
            print(f"memory: scoring {c} clips (16x64x64, metrics {metrics}) peak RSS {peaks[c]:.0f} MiB")
        lo, hi = min(counts), max(counts)
        print(f"memory: peak RSS {hi} vs {lo} clips: {100 * (peaks[hi] - peaks[lo]) / peaks[lo]:+.1f}%")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["generation", "overhead", "cache", "memory", "all", "_memory_child"])
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--models", nargs="+", default=["reference-unet3d", "reference-temporal-attention"])
    ap.add_argument("--model", default="reference-unet3d")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--counts", nargs="+", type=int, default=[64, 512])
    ap.add_argument("--metrics", default='["flicker"]', help="JSON list of metric specs for the memory figure")
    args = ap.parse_args()
    if args.what == "_memory_child":
        _memory_child(int(args.rest[0]), args.rest[1], args.rest[2])
        return 0
    print(f"machine: {machine()}")
    if args.what in ("generation", "all"):
        bench_generation(args.models, args.clips)
    if args.what in ("overhead", "all"):
        bench_overhead(args.model, args.clips)
    if args.what in ("cache", "all"):
        bench_cache(args.model, args.clips)
    if args.what in ("memory", "all"):
        bench_memory(args.counts, json.loads(args.metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

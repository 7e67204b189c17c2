"""Runner figures: generation speed, harness overhead, cached re-run, peak memory vs clip count.

    python benchmarks/bench_runner.py generation --models reference-unet3d reference-temporal-attention
    python benchmarks/bench_runner.py overhead   --model reference-unet3d --clips 24 --repeats 3 [--variants background serial]
    python benchmarks/bench_runner.py overhead   --model sleep:0.49   (a model that waits on a GPU/server: no CPU use)
    python benchmarks/bench_runner.py startup    --model reference-unet3d --clips 24 --repeats 3
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vdmbench.config.suite import Suite


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"{gpu}, {_load()}")


def _suite(n_prompts: int = 8, seeds=(0,), metrics=("flicker",)) -> Suite:
    from vdmbench.config.suite import load_suite, parse_suite

    base = load_suite("smoke").to_dict()
    colors, shapes = ["red", "green", "blue", "yellow"], ["circle", "square", "triangle"]
    dirs = ["left", "right", "up", "down"]
    prompts = [{"id": f"p{i}", "text": f"a {colors[i % 4]} {shapes[i % 3]} moving {dirs[(i // 4) % 4]}"} for i in range(n_prompts)]
    return parse_suite({**base, "prompts": prompts, "seeds": list(seeds), "metrics": list(metrics)})


def _requests(suite):
    from vdmbench.run.plan import plan_samples

    return [p.request for p in plan_samples(suite, {"name": "x", "adapter": "x", "params": {}})]


def bench_generation(models: list[str], n: int) -> None:
    from vdmbench.adapters import build_adapter, load_model_config

    suite = _suite(n)
    for name in models:
        adapter = build_adapter(load_model_config(name))
        reqs = _requests(suite)
        adapter.generate(reqs[:1])  # warm-up
        t0 = time.perf_counter()
        out = adapter.generate(reqs)
        dt = time.perf_counter() - t0
        assert all(not isinstance(o, Exception) for o in out)
        print(f"generation {name}: {len(reqs) / dt:.2f} clips/s, {dt / len(reqs):.3f} s/clip "
              f"({suite.num_frames} frames {suite.width}x{suite.height}, {suite.steps} steps)")


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


# Stages of Runner.timings: on the main thread (in the way of the next generate()) and on the
# writer thread (overlapped with generation where the machine has a core to spare).
_MAIN = ("setup", "cache_reads", "score", "wait_writer", "finish")
_WRITER = ("write_files", "db_writes")


def bench_overhead(model: str, n: int, repeats: int, variants: list[str]) -> None:
    """Harness time beyond the model's own generate() calls: writing, hashing, scoring, storing.

    Both sides use the same adapter object, loaded once before timing (so model loading counts
    on neither side); the harness side includes building the Runner (opening the database).
    Direct and harness runs alternate, `repeats` times, and medians are reported: on a shared
    machine a single pair is dominated by noise. `startup` measures the fixed per-process cost.
    """
    from vdmbench.adapters import build_adapter
    from vdmbench.run.runner import Runner, RunOptions

    suite = _suite(n)
    cfg = _model_config(model)
    adapter = build_adapter(cfg)
    reqs = _requests(suite)
    adapter.generate(reqs[:1])

    def direct() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for r in reqs:  # the runner calls generate once per adapter batch (1 here); do the same
            adapter.generate([r])
        return time.perf_counter() - t0, time.process_time() - c0

    def harness(variant: str) -> tuple[float, float, dict[str, float]]:
        import vdmbench.run.writer as writer_module

        extra = {"background": {"background_writes": True}, "equal-priority": {"background_writes": True},
                 "serial": {"background_writes": False}}.get(variant, {})
        # equal-priority: the writer thread at the main thread's priority (before it yielded the CPU)
        nice = getattr(writer_module, "_WRITER_NICE", None)
        if variant == "equal-priority" and nice is not None:
            writer_module._WRITER_NICE = 0
        try:
            return _timed_run(extra)
        finally:
            if nice is not None:
                writer_module._WRITER_NICE = nice

    def _timed_run(extra: dict) -> tuple[float, float, dict[str, float]]:
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            runner = Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, workers=0,
                                                   threads=torch.get_num_threads(), **extra),
                            adapter=adapter)
            summary = runner.run()
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert summary.ok == len(reqs) and summary.generated == len(reqs), summary
        # (an older vdmbench, e.g. on PYTHONPATH for a before/after figure, has no timings)
        return dt, cpu, {**getattr(runner, "timings", {}), "wall": dt,
                    "background": float(getattr(runner, "background_writes", False))}

    kinds = ["direct"] + variants
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}  # CPU seconds of the whole process (all threads)
    timings: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for i in range(repeats):
        order = kinds if i % 2 == 0 else kinds[::-1]  # interleaved: drifting load hits both sides
        line = []
        for kind in order:
            if kind == "direct":
                dt, c = direct()
            else:
                dt, c, t = harness(kind)
                timings[kind].append(t)
            times[kind].append(dt)
            cpu[kind].append(c)
            line.append(f"{kind} {times[kind][-1] / n:.3f} s/clip")
        print(f"  repeat {i + 1}/{repeats}: {', '.join(line)}; {_load()}")
    d = _median(times["direct"])
    print(f"overhead {model}, {n} clips, median of {repeats} (per repeat: harness / direct - 1):")
    print(f"  direct generate     {d / n:.3f} s/clip")
    for kind in variants:
        per = [h / dd - 1 for h, dd in zip(times[kind], times["direct"])]
        pooled, lo, hi = _pooled_overhead(times[kind], times["direct"])
        print(f"  vdmbench run ({kind}) {_median(times[kind]) / n:.3f} s/clip -> harness overhead "
              f"{100 * _median(per):.1f}% of generation time (repeats: {', '.join(f'{100 * x:.1f}%' for x in per)}); "
              f"all repeats pooled {100 * pooled:.1f}% (95% bootstrap CI over repeats {100 * lo:.1f}% to {100 * hi:.1f}%)")
        # CPU time does not count the moments another tenant of a shared machine held the core
        c_pooled, c_lo, c_hi = _pooled_overhead(cpu[kind], cpu["direct"])
        print(f"    CPU seconds of the process, all threads: {_median(cpu[kind]) / n:.3f} vs direct "
              f"{_median(cpu['direct']) / n:.3f} s/clip -> {100 * c_pooled:.1f}% more (95% CI {100 * c_lo:.1f}% to {100 * c_hi:.1f}%)")
    for kind in variants:
        ts = timings[kind]
        if "total" not in ts[0]:
            continue  # no Runner.timings to break down
        background = bool(ts[0]["background"])
        on_main = _MAIN + (() if background else _WRITER)
        med = {k: _median([t.get(k, 0.0) for t in ts]) for k in ("wall", "generate", *_MAIN, *_WRITER)}
        # other: Runner() (opening the database), the progress bar, loop bookkeeping
        other = _median([t["wall"] - t.get("generate", 0.0) - sum(t.get(k, 0.0) for k in on_main) for t in ts])
        parts = ", ".join(f"{k} {1000 * med[k] / n:.1f}" for k in _MAIN)
        print(f"  breakdown ({kind}), ms/clip: main thread: {parts}, other {1000 * other / n:.1f}; "
              f"generate() inside the run vs direct {1000 * (med['generate'] - d) / n:+.1f}")
        print(f"    writer {'thread (overlapped)' if background else '(on the main thread)'}: "
              + ", ".join(f"{k} {1000 * med[k] / n:.1f}" for k in _WRITER))
        # Within one run, so a machine whose speed drifts between runs does not move it. With serial
        # writes nothing runs beside generate(), so this is the whole overhead; with background
        # writes it leaves out how much the writer slows generate() down (the paired figure above).
        within = [(t["wall"] - t["generate"]) / t["generate"] for t in ts if t.get("generate")]
        print(f"    time outside generate() within the run: {100 * _median(within):.2f}% of generate() "
              f"(repeats {min(within) * 100:.2f}% to {max(within) * 100:.2f}%)")


def _pooled_overhead(harness: list[float], direct: list[float], draws: int = 10_000) -> tuple[float, float, float]:
    """sum(harness) / sum(direct) - 1 and a percentile bootstrap 95% CI over the interleaved pairs:
    steadier than a median of per-pair ratios when single repeats swing by several percent."""
    import numpy as np

    h, d = np.asarray(harness), np.asarray(direct)
    idx = np.random.default_rng(0).integers(0, len(h), size=(draws, len(h)))
    boot = h[idx].sum(1) / d[idx].sum(1) - 1
    return float(h.sum() / d.sum() - 1), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def sleepy(req):
    """A model whose work happens elsewhere (a GPU, a server): the process waits `delay` seconds per
    clip with the GIL released, then gets frames (a moving square, 8x32x32)."""
    time.sleep(float(os.environ["BENCH_SLEEP_DELAY"]))
    x = torch.full((req.num_frames, req.height, req.width, 3), 128, dtype=torch.uint8)
    for t in range(req.num_frames):
        c = (t * 2 + req.seed) % (req.width - 8)
        x[t, 4:12, c:c + 8] = 255
    return x


def _model_config(model: str) -> dict:
    """A name of adapters/, or `sleep:SECONDS` for a model that waits instead of computing."""
    from vdmbench.adapters import load_model_config

    if model.startswith("sleep:"):
        os.environ["BENCH_SLEEP_DELAY"] = model.partition(":")[2]
        return {"name": model.replace(":", "-"), "adapter": "callable", "params": {"target": "__main__:sleepy"}}
    return load_model_config(model)


def _direct_child(model: str, n: int) -> None:
    """What a script calling the model itself does: import, load the model once, generate."""
    from vdmbench.adapters import build_adapter, load_model_config

    adapter = build_adapter(load_model_config(model))
    for r in _requests(_suite(n)):
        adapter.generate([r])


def bench_startup(model: str, n: int, repeats: int) -> None:
    """End to end, one process each: `vdmbench run` (imports, Hydra, model load, run, leaderboard)
    against a script that imports the adapter, loads the model and calls generate()."""
    import yaml

    suite = _suite(n).to_dict()
    suite["name"] = f"bench-{n}"
    times: dict[str, list[float]] = {"direct": [], "vdmbench run": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "suites").mkdir()
        (Path(tmp) / "suites" / f"{suite['name']}.yaml").write_text(yaml.safe_dump(suite))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        cmds = {
            "direct": [sys.executable, __file__, "_direct_child", model, str(n), f"--threads={torch.get_num_threads()}"],
            "vdmbench run": [sys.executable, "-m", "vdmbench.cli.commands", "run", f"suite={suite['name']}", f"model={model}",
                             "progress=false", f"threads={torch.get_num_threads()}", f"hydra.searchpath=[file://{tmp}]"],
        }
        for i in range(repeats):
            for kind in (list(cmds) if i % 2 == 0 else list(cmds)[::-1]):
                with tempfile.TemporaryDirectory() as work:
                    t0 = time.perf_counter()
                    subprocess.run(cmds[kind] + ([f"results_dir={work}/results"] if kind != "direct" else []),
                                   cwd=work, env=env, check=True, capture_output=True)
                    times[kind].append(time.perf_counter() - t0)
            print(f"  repeat {i + 1}/{repeats}: direct {times['direct'][-1]:.2f} s, vdmbench run "
                  f"{times['vdmbench run'][-1]:.2f} s; {_load()}")
    d, h = _median(times["direct"]), _median(times["vdmbench run"])
    print(f"startup {model}, {n} clips, whole processes, median of {repeats}: direct script {d:.2f} s, "
          f"vdmbench run {h:.2f} s -> {h - d:+.2f} s per run ({100 * (h - d) / d:.1f}% at this clip count)")


def bench_cache(model: str, n: int) -> None:
    from vdmbench.adapters import load_model_config
    from vdmbench.run.runner import Runner, RunOptions

    suite = _suite(n)
    cfg = load_model_config(model)
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(2):
            runner = Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, workers=0,
                                                   threads=torch.get_num_threads()))
            t0 = time.perf_counter()
            s = runner.run()
            times.append(time.perf_counter() - t0)
        assert s.generated == 0, "the second run should be fully cached"
    print(f"cache {model}: first run {times[0]:.2f} s, cached re-run {times[1]:.3f} s -> {times[0] / times[1]:.1f}x faster")


def _memory_child(count: int, folder: str, metrics: str) -> None:
    from vdmbench.config.suite import parse_suite
    from vdmbench.run.runner import Runner, RunOptions

    suite = parse_suite({"name": "mem", "num_frames": 16, "height": 64, "width": 64, "fps": 8,
                         "metrics": json.loads(metrics), "prompts": [{"id": f"c{i}", "text": f"clip {i}"} for i in range(count)]})
    cfg = {"name": "mem-folder", "adapter": "folder", "params": {"path": folder}}
    with tempfile.TemporaryDirectory() as tmp:
        Runner(suite, cfg, RunOptions(results_dir=Path(tmp), progress=False, preview=False,
                                      threads=torch.get_num_threads())).run()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bench_memory(counts: list[int], metrics: list) -> None:
    from vdmbench.core.video import Video, write_video

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
    ap.add_argument("what", choices=["generation", "overhead", "startup", "cache", "memory", "all", "_memory_child",
                                     "_direct_child"])
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--models", nargs="+", default=["reference-unet3d", "reference-temporal-attention"])
    ap.add_argument("--model", default="reference-unet3d")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3, help="overhead/startup: interleaved pairs; medians are reported")
    ap.add_argument("--variants", nargs="+", default=["default"], choices=["default", "background", "equal-priority", "serial"],
                    help="overhead: the runner's writes as `vdmbench run` does them (default), in a "
                         "background thread (background), the same at the main thread's CPU priority "
                         "(equal-priority), and/or on the main thread between batches (serial)")
    ap.add_argument("--counts", nargs="+", type=int, default=[64, 512])
    ap.add_argument("--metrics", default='["flicker"]', help="JSON list of metric specs for the memory figure")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, the same for the direct calls and for Runner (default 1: on 2 busy cores "
                         "torch's default was 4-5x slower); passed on to the child processes")
    args = ap.parse_args()
    # Both sides of every comparison run with this many torch threads: the runner sets its own
    # count (threads=auto), so the direct side must be told the same.
    torch.set_num_threads(args.threads)
    if args.what == "_memory_child":
        _memory_child(int(args.rest[0]), args.rest[1], args.rest[2])
        return 0
    if args.what == "_direct_child":
        _direct_child(args.rest[0], int(args.rest[1]))
        return 0
    print(f"machine: {machine()}")
    if args.what in ("generation", "all"):
        bench_generation(args.models, args.clips)
    if args.what in ("overhead", "all"):
        bench_overhead(args.model, args.clips, args.repeats, args.variants)
    if args.what in ("startup", "all"):
        bench_startup(args.model, args.clips, args.repeats)
    if args.what in ("cache", "all"):
        bench_cache(args.model, args.clips)
    if args.what in ("memory", "all"):
        bench_memory(args.counts, json.loads(args.metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

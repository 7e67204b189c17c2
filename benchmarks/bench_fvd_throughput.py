"""FVD throughput: end to end from video files vs the pure I3D forward (the compute ceiling).

Two input kinds:

- `--input lossless` (the original figure): 16-frame 224x224 lossless clips, decoded by the loader
  into I3D in-process, against the forward on preloaded tensors; `--options` also measures
  channels_last_3d, bf16 autocast and torch.compile and how far each moves FVD.
- `--input h264` (issue #21, what users score): two folders, real/ and fake/, of `--clips` H.264
  yuv420p mp4 clips each (16 frames, `--sizes` px), I3D at seeded random weights saved in the
  piergiaj format. Each repeat runs, interleaved: the ceiling (vdmbench's I3D forward on preloaded
  tensors), `vdmbench score fake/ --metrics fvd --reference real/` as a fresh process (start,
  imports, decoding, the reference set: everything a user waits for) and, when `cd-fvd` is
  installed, the same FVD with cd-fvd on the same files and weights. Medians and the ratios of
  the same run are what count on a shared machine.

    python benchmarks/bench_fvd_throughput.py --input h264 [--clips 64] [--sizes 128 256] [--repeats 3]
        [--threads 1] [--batch-size 8] [--workers 2] [--no-cd-fvd] [--baseline-src DIR]
    python benchmarks/bench_fvd_throughput.py --input h264 --features videomae-v2 vjepa [--model-size small|real]
        [--device cuda] [--clips 16] [--sizes 128]
    python benchmarks/bench_fvd_throughput.py --input lossless [--clips 16] [--batch-size 4] [--options]

Every backend (`--features i3d videomae-v2 vjepa`, issue #18): i3d as above; VideoMAE-v2 (cd-fvd's
content-debiased FVD) and V-JEPA (JEDi) at seeded random weights, `--model-size small` (the
`random-*` backends' CPU widths, default) or `real` (ViT-g/14 and ViT-H/16 at full size: a GPU's
job). For those, each repeat times the model forward on preloaded tensors (the ceiling), the same
extractor fed end to end from the mp4 files by the decoder workers in this process, and, at the
small size, `vdmbench score` as a fresh process (`fvd` with `features: random-videomae-v2`, `jedi`
with `features: random-vjepa`). `--device cuda` runs every model side on the GPU (clips/s on it).

All sides use the same torch thread count (`--threads`, default 1), printed with the load.
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

import numpy as np
import torch


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {gpu}"


# --- clips ---------------------------------------------------------------------------------------

def make_clips(folder: Path, n: int, frames: int = 16, size: int = 224) -> list[Path]:
    """Lossless smooth moving gradients (compress like real video, unlike noise)."""
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


def make_h264_clips(folder: Path, n: int, size: int, seed: int, frames: int = 16) -> list[Path]:
    """H.264 yuv420p mp4 (what generators publish): moving waves plus grain, a seeded set per folder."""
    from vdmbench.core.video import Video, write_preview

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    paths = []
    for i in range(n):
        a, b, c = (torch.rand(3, generator=gen) * 4 + 1).tolist()
        clip = torch.empty(frames, size, size, 3)
        for t in range(frames):
            phase = (xx * a + yy * b + 3 * t * c) / size * 6.28
            clip[t, ..., 0] = torch.sin(phase)
            clip[t, ..., 1] = torch.cos(phase * 0.7 + i)
            clip[t, ..., 2] = torch.sin(yy / size * 3 + t * 0.2 * c)
        grain = torch.randn(frames, size, size, 3, generator=gen) * 0.1
        frames_u8 = ((clip + grain + 1) * 127).clamp(0, 255).to(torch.uint8)
        paths.append(write_preview(Video(frames_u8, 8.0), folder / f"clip{i:04d}.mp4"))
    return paths


def save_random_i3d(path: Path, seed: int = 0) -> Path:
    """Seeded random I3D weights as a piergiaj-format state dict (loads in vdmbench and cd-fvd)."""
    from vdmbench.features.i3d import InceptionI3d, init_random_

    state = init_random_(InceptionI3d(), seed).state_dict()
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    return path


# --- the h264 mode ---------------------------------------------------------------------------------

# cd-fvd's own folder reader needs torchvision's removed video decoding (TorchCodec, which needs
# FFmpeg's shared libraries); its documented array API is fed by PyAV, which decodes these files
# bit-identically to decord. Decoding is timed: it is part of scoring files.
CD_FVD_SCRIPT = r"""
import sys, time, json
import av, numpy as np, torch
from pathlib import Path
torch.set_num_threads(int(sys.argv[4]))
from cdfvd import fvd as cdfvd_mod

def read(folder):
    clips = []
    for p in sorted(Path(folder).glob("*.mp4")):
        with av.open(str(p)) as c:
            clips.append(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]))
    return np.stack(clips)

ev = cdfvd_mod.cdfvd("i3d", ckpt_path=sys.argv[3], device="cpu", n_real="full", n_fake="full")
for side, folder in (("real", sys.argv[1]), ("fake", sys.argv[2])):
    v = read(folder)
    for i in range(0, len(v), int(sys.argv[5])):
        (ev.add_real_stats if side == "real" else ev.add_fake_stats)(v[i:i + int(sys.argv[5])])
print(json.dumps({"fvd": float(ev.compute_fvd_from_stats())}))
"""


def has_cd_fvd() -> bool:
    import importlib.util

    return importlib.util.find_spec("cdfvd") is not None


def run_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its decoder children, stdout). CPU seconds barely move
    with other users' load where wall seconds do: both are printed. `cwd` must hold no vdmbench/:
    `python -m` puts the working directory first on sys.path, before PYTHONPATH."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), done.stdout


def ceiling_rate(weights: Path, folder: Path, n: int, threads: int, batch_size: int) -> tuple[float, float]:
    """vdmbench's I3D forward (its preprocessing included) on preloaded clips: clips per wall
    second and per CPU second."""
    from vdmbench.core.allocator import reuse_freed_memory
    from vdmbench.core.video import read_video
    from vdmbench.features.i3d import build_i3d_features

    torch.set_num_threads(threads)
    extractor, _ = build_i3d_features("i3d", weights=str(weights), batch_size=batch_size)
    clips = torch.stack([read_video(p).frames for p in sorted(folder.glob("*.mp4"))[:n]])
    # the allocator setting `vdmbench score` runs under (core/allocator.py): the forward's best
    with reuse_freed_memory():
        extractor(clips[:batch_size])  # warm-up: oneDNN primitives, the heap's steady size
        t0, c0 = time.perf_counter(), time.process_time()
        extractor(clips)
        return len(clips) / (time.perf_counter() - t0), len(clips) / (time.process_time() - c0)


def bench_h264_size(args: argparse.Namespace, root: Path, weights: Path, size: int, use_cd: bool,
                    env: dict[str, str]) -> str:
    """One workload (one frame size): interleaved repeats, medians; returns its README row."""
    real, fake = root / f"s{size}" / "real", root / f"s{size}" / "fake"
    make_h264_clips(real, args.clips, size, seed=1)
    make_h264_clips(fake, args.clips, size, seed=2)
    total = 2 * args.clips  # every clip of both folders goes through I3D
    print(f"\n== {args.clips} real + {args.clips} fake H.264 yuv420p clips, 16 frames, {size}x{size}; "
          f"threads {args.threads}, batch {args.batch_size}, {args.workers} decoder workers")
    ceil_n = min(total, args.ceiling_clips)
    # seconds for all `total` clips, per side: wall and CPU (the ceiling's scaled from its rate)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    fvds: dict[str, float] = {}

    def record(side: str, w: float, c: float, fvd: float | None = None) -> None:
        wall.setdefault(side, []).append(w)
        cpu.setdefault(side, []).append(c)
        if fvd is not None:
            fvds[side] = fvd
        share = f" = {100 * wall['ceiling'][-1] / w:.0f}% of the ceiling (CPU: {100 * cpu['ceiling'][-1] / c:.0f}%)" \
            if side != "ceiling" else ""
        print(f"  {side:9s} {w:7.1f} s wall ({total / w:.3f} clips/s), {c:7.1f} s CPU{share}"
              + (f", FVD {fvd:.6f}" if fvd is not None else ""))

    for r in range(args.repeats):
        print(f"repeat {r + 1}: {load()}")
        rate, cpu_rate = ceiling_rate(weights, real, ceil_n, args.threads, args.batch_size)
        record("ceiling", total / rate, total / cpu_rate)
        out = root / "score.json"
        cmd = [sys.executable, "-m", "vdmbench", "score", str(fake), "--reference", str(real),
               "--metrics", f"[{{name: fvd, weights: {weights}}}]", "--results-dir", str(root / f"res{r}{size}"),
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--workers", str(args.workers), "--json", str(out)]
        w, c, _ = run_timed(cmd, env, root)
        record("vdmbench", w, c, json.loads(out.read_text())["metrics"]["fvd"])
        if args.baseline_src:  # the same command from another checkout (e.g. before a change)
            base_cmd = [x for x in cmd if x not in ("--threads", str(args.threads))]  # older code lacks it
            base_cmd[base_cmd.index("--results-dir") + 1] = str(root / f"base{r}{size}")
            w, c, _ = run_timed(base_cmd, {**env, "PYTHONPATH": str(Path(args.baseline_src).resolve())}, root)
            record("baseline", w, c, json.loads(out.read_text())["metrics"]["fvd"])
        if use_cd:
            w, c, stdout = run_timed([sys.executable, "-c", CD_FVD_SCRIPT, str(real), str(fake), str(weights),
                                      str(args.threads), str(args.batch_size)], env, root)
            record("cd-fvd", w, c, json.loads(stdout.strip().splitlines()[-1])["fvd"])
    med = {k: statistics.median(v) for k, v in wall.items()}
    medc = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"medians over {args.repeats} repeats ({load()}), seconds for {total} clips, wall / CPU:")
    for side in med:
        extra = "" if side == "ceiling" else (
            f"  -> {100 * med['ceiling'] / med[side]:.0f}% of the ceiling (CPU {100 * medc['ceiling'] / medc[side]:.0f}%)")
        print(f"  {side:9s} {med[side]:7.1f} / {medc[side]:7.1f}{extra}")
    for side in ("baseline", "cd-fvd"):
        if side in med:
            print(f"  vdmbench vs {side}: {med[side] / med['vdmbench']:.2f}x faster wall, "
                  f"{medc[side] / medc['vdmbench']:.2f}x CPU")
    if "cd-fvd" in fvds:
        print("  (cd-fvd's FVD differs by design: BatchNorm eps 1e-5 and symmetric padding, not TF's)")
    others = " | ".join(f"{total / med[s]:.2f} clips/s ({med[s] / med['vdmbench']:.2f}x)" if s in med else "-"
                        for s in ("baseline", "cd-fvd"))
    return (f"| FVD from files, {args.clips}+{args.clips} H.264 yuv420p {size}px, {args.threads} thread(s) | "
            f"{total / med['vdmbench']:.2f} clips/s, {100 * med['ceiling'] / med['vdmbench']:.0f}% of I3D's "
            f"{total / med['ceiling']:.2f} | {others} |")


def bench_h264(args: argparse.Namespace) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    use_cd = has_cd_fvd() and not args.no_cd_fvd
    if not use_cd and not args.no_cd_fvd:
        print("cd-fvd not installed (pip install cd-fvd): its side is skipped")
    rows: list[str] = []
    backend_rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = save_random_i3d(root / "i3d_random.pt") if "i3d" in args.features else None
        for size in args.sizes:
            for name in args.features:
                if name == "i3d" and args.device == "cpu":  # the comparison, cd-fvd included
                    rows.append(bench_h264_size(args, root, weights, size, use_cd, env))
                else:
                    backend_rows.append(bench_backend_size(args, root, name, size, env, weights))
    if rows:
        print("\n| workload | vdmbench score | baseline | cd-fvd |\n| --- | --- | --- | --- |\n" + "\n".join(rows))
    if backend_rows:
        print("\n| workload | model forward (ceiling) | end to end in-process | vdmbench score |\n| --- | --- | --- | --- |\n"
              + "\n".join(backend_rows))


# --- every backend (issue #18): ceiling, in-process end to end, `vdmbench score` --------------------

# backend -> (random backend name the extractor builders take, metric spec for `vdmbench score`)
BACKENDS = {
    "i3d": ("i3d", None),
    "videomae-v2": ("random-videomae-v2", "{name: fvd, features: random-videomae-v2}"),
    "vjepa": ("random-vjepa", "{name: jedi, features: random-vjepa}"),
}


def build_backend(name: str, *, model_size: str, device: str, batch_size: int, weights: Path | None = None):
    """The extractor `vdmbench score` would use for `name` (random weights; `model_size` real: the
    published architecture, small: the CPU-sized `random-*` one), on `device`."""
    if name == "i3d":
        from vdmbench.features.i3d import build_i3d_features

        return build_i3d_features("i3d", weights=str(weights), device=device, batch_size=batch_size)[0]
    if name == "videomae-v2":
        from vdmbench.features import videomae

        return videomae.build_videomae_features(BACKENDS[name][0], device=device, batch_size=batch_size,
                                                config=videomae.VIT_G if model_size == "real" else None)[0]
    if name == "vjepa":
        from vdmbench.features import vjepa

        return vjepa.build_vjepa_features(BACKENDS[name][0], device=device, batch_size=batch_size,
                                          config=vjepa.VIT_H if model_size == "real" else None)[0]
    raise SystemExit(f"--features: one of {', '.join(BACKENDS)}, got {name!r}")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def backend_rates(extractor, paths: list[Path], *, ceiling_n: int, batch_size: int, workers: int,
                  device: str) -> dict[str, float]:
    """clips/s of `extractor` on preloaded clips (`ceiling_n` of them) and end to end over `paths`
    (decoded by `workers` processes while it computes, as `vdmbench score` does), and how far the
    end-to-end features are from the preloaded ones (0 on the CPU: decoding changes nothing)."""
    from vdmbench.core.allocator import reuse_freed_memory
    from vdmbench.core.video import read_video
    from vdmbench.core.video_loader import iterate_videos

    preloaded = torch.stack([read_video(p).frames for p in paths[:ceiling_n]])
    with reuse_freed_memory(enabled=device == "cpu"):
        extractor(preloaded[:batch_size])  # warm-up: kernels, cuDNN autotuning, the heap's steady size
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        ref = extractor(preloaded)  # float64 on the host: the GPU has finished
        ceiling_s, ceiling_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        feats = [extractor(torch.stack([v.frames for _, v in items]))
                 for items in iterate_videos(paths, batch_size=batch_size, workers=workers)]
        e2e_s = time.perf_counter() - t0
    e2e = torch.cat(feats)
    diff = float((e2e[:ceiling_n] - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
    return {"ceiling": ceiling_n / ceiling_s, "ceiling_cpu": ceiling_n / ceiling_cpu,
            "e2e": len(paths) / e2e_s, "diff": diff}


def bench_backend_size(args: argparse.Namespace, root: Path, name: str, size: int, env: dict[str, str],
                       weights: Path | None = None) -> str:
    """One backend at one frame size: interleaved repeats of the ceiling, the in-process end to end
    and (small models) `vdmbench score`; returns its README row."""
    real, fake = root / f"s{size}" / "real", root / f"s{size}" / "fake"
    if not real.exists():
        make_h264_clips(real, args.clips, size, seed=1)
        make_h264_clips(fake, args.clips, size, seed=2)
    paths = sorted(real.glob("*.mp4")) + sorted(fake.glob("*.mp4"))
    torch.set_num_threads(args.threads)
    extractor = build_backend(name, model_size=args.model_size, device=args.device, batch_size=args.batch_size,
                              weights=weights)
    spec = BACKENDS[name][1] if name != "i3d" else f"{{name: fvd, weights: {weights}}}"
    use_cli = args.model_size == "small" or name == "i3d"
    print(f"\n== {name} ({args.model_size if name != 'i3d' else 'real'} size, random weights) on {args.device}: "
          f"{len(paths)} H.264 yuv420p clips, 16 frames, {size}x{size}; threads {args.threads}, "
          f"batch {args.batch_size}, {args.workers} decoder workers")
    rates: dict[str, list[float]] = {}
    for r in range(args.repeats):
        print(f"repeat {r + 1}: {load()}")
        got = backend_rates(extractor, paths, ceiling_n=min(len(paths), args.ceiling_clips),
                            batch_size=args.batch_size, workers=args.workers, device=args.device)
        assert got["diff"] < (1e-5 if args.device == "cpu" else 1e-3), f"decoding changed the features ({got['diff']:.2e})"
        if use_cli:
            cmd = [sys.executable, "-m", "vdmbench", "score", str(fake), "--reference", str(real),
                   "--metrics", f"[{spec}]", "--results-dir", str(root / f"res-{name}-{r}-{size}"),
                   "--threads", str(args.threads), "--batch-size", str(args.batch_size),
                   "--workers", str(args.workers), "--device", args.device]
            wall, _, _ = run_timed(cmd, env, root)
            got["score"] = len(paths) / wall
        for k, v in got.items():
            rates.setdefault(k, []).append(v)
        print(f"  ceiling {got['ceiling']:.3f} clips/s, end to end in-process {got['e2e']:.3f} clips/s "
              f"({100 * got['e2e'] / got['ceiling']:.0f}%)"
              + (f", vdmbench score {got['score']:.3f} clips/s ({100 * got['score'] / got['ceiling']:.0f}%)"
                 if "score" in got else "") + f"; features end to end vs preloaded: {got['diff']:.1e}")
    med = {k: statistics.median(v) for k, v in rates.items()}
    score = f"{med['score']:.2f} clips/s ({100 * med['score'] / med['ceiling']:.0f}%)" if "score" in med else "-"
    print(f"medians over {args.repeats} repeats ({load()}): ceiling {med['ceiling']:.3f}, in-process "
          f"{med['e2e']:.3f} ({100 * med['e2e'] / med['ceiling']:.0f}%), vdmbench score {score}")
    return (f"| {name} features ({args.model_size if name != 'i3d' else 'real'} size), {args.clips}+{args.clips} "
            f"H.264 {size}px, {args.device}, {args.threads} thread(s) | ceiling {med['ceiling']:.2f} clips/s | "
            f"in-process {med['e2e']:.2f} clips/s ({100 * med['e2e'] / med['ceiling']:.0f}%) | vdmbench score {score} |")


# --- the lossless mode (in-process) -----------------------------------------------------------------

def i3d(seed: int = 0, device: str = "cpu"):
    from vdmbench.features.i3d import InceptionI3d, init_random_

    return init_random_(InceptionI3d(), seed).eval().to(device)


@torch.no_grad()
def features(model, videos: torch.Tensor, *, channels_last: bool = False, bf16: bool = False) -> torch.Tensor:
    from vdmbench.features.i3d import fvd_preprocess

    device = next(model.parameters()).device
    x = fvd_preprocess(videos.to(device, non_blocking=True), channels_last=channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        return model(x)[0].to(torch.float64).cpu()  # .cpu() waits for the GPU: timings are honest


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_lossless(args: argparse.Namespace) -> None:
    from vdmbench.core.video import read_video
    from vdmbench.core.video_loader import iterate_videos
    from vdmbench.metrics.fvd import frechet_distance

    torch.set_num_threads(args.threads)
    print(f"{load()}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        if args.clips_dir:
            paths = sorted(Path(args.clips_dir).glob("*.mp4"))[: args.clips]
        else:
            paths = make_clips(Path(tmp), args.clips)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", choices=["h264", "lossless"], default="lossless")
    ap.add_argument("--clips", type=int, default=16, help="clips per folder (h264: real and fake each)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="h264: frame sizes, one workload each")
    ap.add_argument("--repeats", type=int, default=3, help="h264: interleaved repeats")
    ap.add_argument("--ceiling-clips", type=int, default=16, help="h264: clips the ceiling is timed on")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, every side")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="decoder processes")
    ap.add_argument("--baseline-src", default=None,
                    help="h264: also time `vdmbench score` from this source tree (a folder holding vdmbench/, "
                         "e.g. `git archive <commit> vdmbench | tar -x -C DIR`), with OMP_NUM_THREADS=--threads")
    ap.add_argument("--no-cd-fvd", action="store_true", help="h264: skip the cd-fvd side even if installed")
    ap.add_argument("--options", action="store_true", help="lossless: also measure channels_last_3d, bf16, torch.compile")
    ap.add_argument("--device", default="cpu", help="where the models run: cpu, cuda, ... (h264 on a GPU: every "
                    "backend's ceiling, in-process end to end and `vdmbench score --device`)")
    ap.add_argument("--features", nargs="+", choices=list(BACKENDS), default=["i3d"],
                    help="h264: the backends measured, one workload each")
    ap.add_argument("--model-size", choices=["small", "real"], default="small",
                    help="h264, videomae-v2 / vjepa: the random-* backends' CPU widths, or the published sizes "
                         "(ViT-g/14, ViT-H/16: the ceiling and in-process sides only; no random backend of that size)")
    ap.add_argument("--clips-dir", default=None,
                    help="lossless: use the .mp4 clips in this folder (else --clips are written to a temp folder)")
    args = ap.parse_args()
    print(f"machine: {machine()}; {load()}")
    if args.input == "h264":
        bench_h264(args)
    else:
        bench_lossless(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Quality and speed of the bundled reference models on the shapes suites (prints Markdown tables).

    python benchmarks/bench_reference_quality.py                       # all shipped models
    python benchmarks/bench_reference_quality.py --models real reference-unet3d --tasks t2v
    python benchmarks/bench_reference_quality.py --models /tmp/run/ema-step300.safetensors

A model is `real` (the procedural ground truth: the ceiling), `random` (the 3D U-Net with random
weights: the floor), a shipped adapter name (adapters/*.yaml) or a path to a .safetensors
checkpoint. Baselines for prediction/interpolation: `repeat-last` (the last given frame repeated)
and `linear-blend` (interpolation: a per-pixel linear blend of the first and last frames).
Generation runs on the CPU with --threads threads; times are per clip, wall clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vdmbench.adapters import build_adapter, load_model_config
from vdmbench.adapters.base import GenerationRequest
from vdmbench.config.suite import load_suite
from vdmbench.core.video import Video
from vdmbench.data.conditioning import prepare
from vdmbench.metrics import ClipBatch, available_metrics

SHIPPED = ["reference-unet3d", "reference-unet3d-undertrained", "reference-temporal-attention",
           "reference-temporal-attention-undertrained", "reference-cascade"]
SUITES = {"t2v": "shapes-t2v", "prediction": "shapes-prediction", "interpolation": "shapes-interpolation",
          "editing": "shapes-editing"}
METRICS = {"t2v": ["shapes_adherence", "flicker", "motion"],
           "prediction": ["reconstruction", "shapes_adherence"],
           "interpolation": ["reconstruction", "shapes_adherence"],
           "editing": ["shapes_editing"]}


def make_generator(spec: str, device: str = "cpu"):
    """(name, fn(request, conditioning) -> Video)."""
    if spec == "real":
        return "real (ceiling)", lambda req, cond, gt: gt
    if spec in ("repeat-last", "linear-blend"):
        return spec, lambda req, cond, gt: baseline(spec, req)
    if spec == "random":
        adapter = build_adapter({"name": "random", "adapter": "reference",
                                 "params": {"weights": None, "device": device}})
    elif spec.endswith(".safetensors"):
        adapter = build_adapter({"name": Path(spec).stem, "adapter": "reference",
                                 "params": {"weights": spec, "device": device}})
    else:
        config = load_model_config(spec)
        config["params"] = {**config.get("params", {}), "device": device}
        adapter = build_adapter(config)
    label = "random init (floor)" if spec == "random" else spec

    def gen(req, cond, gt):
        out = adapter.generate([req])[0]
        if isinstance(out, Exception):
            raise out
        return out
    return label, gen


def baseline(kind: str, req: GenerationRequest) -> Video:
    t = req.num_frames
    idx = list(req.cond_indices)
    frames = torch.zeros(t, req.height, req.width, 3, dtype=torch.uint8)
    known = dict(zip(idx, req.cond_frames))
    if kind == "linear-blend" and len(idx) >= 2:
        a, b = idx[0], idx[-1]
        for i in range(t):
            w = min(max((i - a) / (b - a), 0.0), 1.0)
            frames[i] = ((1 - w) * known[a].double() + w * known[b].double()).round().to(torch.uint8)
    else:  # repeat the last given frame before it (and the first given frame before any)
        last = known[idx[0]]
        for i in range(t):
            last = known.get(i, last)
            frames[i] = last
    for i, f in known.items():
        frames[i] = f
    return Video(frames, req.fps)


def evaluate(task: str, spec: str, limit: int | None, device: str = "cpu") -> dict[str, float]:
    suite = load_suite(SUITES[task])
    label, gen = make_generator(spec, device)
    registry = available_metrics()
    metrics = [registry[m]() for m in METRICS[task] if m in registry]
    samples = suite.samples()[: limit or None]
    seconds, n = 0.0, 0
    for prompt, seed in samples:
        c = prepare(suite, prompt, seed) if task != "t2v" else None
        req = GenerationRequest(prompt=prompt.text, seed=seed, num_frames=suite.num_frames, height=suite.height,
                                width=suite.width, fps=suite.fps, task=suite.task, steps=suite.steps,
                                guidance=suite.guidance, cond_frames=c.cond_frames if c else None,
                                cond_indices=c.cond_indices if c else (), strength=c.strength if c else None)
        gt = c.ground_truth if c else None
        if spec == "real" and gt is None:
            from vdmbench.data.shapes import render_prompt
            gt = Video(render_prompt(prompt.text, seed, suite.num_frames, suite.height, suite.width,
                                     prompt.params).frames, suite.fps)
        t0 = time.perf_counter()
        video = gen(req, c, gt)
        seconds += time.perf_counter() - t0
        n += 1
        batch = ClipBatch(videos=video.frames[None], prompts=[prompt.text], fps=[video.fps],
                          ground_truth=None if gt is None else gt.frames[None],
                          source=None if (c is None or c.source is None) else c.source.frames[None],
                          cond_indices=[req.cond_indices])
        for m in metrics:
            m.update(batch)
    row = {"model": label, "clips": n, "sec_per_clip": seconds / max(n, 1)}
    for m in metrics:
        row.update({k: float(v) for k, v in m.compute().items()})
    return row


def table(rows: list[dict], cols: list[str]) -> str:
    cols = [c for c in cols if any(c in r for r in rows)]
    out = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
        out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["real", *SHIPPED, "random"])
    p.add_argument("--tasks", nargs="+", default=["t2v", "prediction", "interpolation", "editing"])
    p.add_argument("--limit", type=int, default=None, help="first N samples of each suite only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="where the models generate: cpu, cuda, ...")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for task in args.tasks:
        models = list(args.models)
        if task in ("prediction", "interpolation"):
            models += ["repeat-last"] + (["linear-blend"] if task == "interpolation" else [])
        rows = []
        for spec in models:
            try:
                rows.append(evaluate(task, spec, args.limit, args.device))
            except Exception as e:
                print(f"{task} {spec}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
        results[task] = rows
        cols = {"t2v": ["shapes_color", "shapes_shape", "shapes_direction", "shapes_adherence", "flicker",
                        "motion", "sec_per_clip", "clips"],
                "editing": ["edit_score", "edit_adherence", "edit_preservation_psnr", "sec_per_clip", "clips"]
                }.get(task, ["psnr", "ssim", "shapes_adherence", "sec_per_clip", "clips"])
        print(f"\n### {task} ({SUITES[task]})\n\n{table(rows, cols)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a reference model on the procedural shapes stream (`vdmbench train`).

    python -m vdmbench.reference.train --arch unet3d --out runs/unet3d --steps 4000 \
        --snapshot 300 --threads 1

Reproducible: the batch of step i is (seed, i) of the shapes training stream and the diffusion
noise of step i comes from a generator seeded with (seed, i), so a resumed run sees exactly what an
uninterrupted run would have seen. A run folder holds:
    config.json              the arguments (a resumed run must match them)
    state.json               step, wall time, last loss
    model.safetensors        float32 weights           (rewritten every --checkpoint-every seconds)
    ema.safetensors          float32 EMA weights
    optimizer.pt             AdamW state (loaded with torch.load(weights_only=True))
    loss.jsonl               one line per --log-every steps: step, loss, lr, seconds
    ema-step<N>.safetensors  float16 EMA snapshots at the --snapshot steps (e.g. undertrained)
    final.safetensors        float16 EMA weights at the end (what the adapters load)
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vdmbench.core import atomic
from vdmbench.data.shapes import training_stream, vocabulary
from vdmbench.reference.diffusion import (
    VideoDiffusion,
    make_scheduler,
    save_weights,
    training_loss,
)

# Arguments that change the result: a resumed run must use the same ones.
_RESULT_ARGS = ("arch", "seed", "batch_size", "lr", "warmup", "ema", "frames", "height", "width",
                "net_config", "text_dim", "sr_factor", "p_uncond", "second_object_p", "textured_p", "init")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vdmbench train", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=["unet3d", "temporal_attention"], default="unet3d")
    p.add_argument("--out", required=True, help="run folder (resumed if it holds a checkpoint)")
    p.add_argument("--steps", type=int, default=4000, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--net-config", default="{}", help="JSON overrides of the architecture's config")
    p.add_argument("--text-dim", type=int, default=64)
    p.add_argument("--sr-factor", type=int, default=0,
                   help="train a super-resolution stage conditioned on the clip downsampled by this factor")
    p.add_argument("--p-uncond", type=float, default=0.1, help="caption dropout for classifier-free guidance")
    p.add_argument("--second-object-p", type=float, default=0.15)
    p.add_argument("--textured-p", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds between checkpoints")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--snapshot", type=int, action="append", default=[],
                   help="also save float16 EMA weights at this step (repeatable)")
    p.add_argument("--time-limit", type=float, default=0.0, help="stop (after checkpointing) after this many seconds")
    p.add_argument("--export", default=None, help="copy the final float16 EMA weights to this path too")
    p.add_argument("--init", default=None,
                   help="start a new run from these weights (.safetensors of the same architecture, e.g. "
                        "a shipped checkpoint) with a fresh optimizer; ignored when resuming")
    return p.parse_args(argv)


def build_model(args: argparse.Namespace) -> VideoDiffusion:
    torch.manual_seed(args.seed)  # parameter init is the only use of the global generator
    return VideoDiffusion(args.arch, json.loads(args.net_config), vocabulary(), text_dim=args.text_dim,
                          lowres=args.sr_factor > 0, resolution=(args.frames, args.height, args.width))


def _load_into(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path)), strict=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {k: getattr(args, k) for k in _RESULT_ARGS}
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old != config:
            diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
            print(f"error: {out} was trained with other settings {diff}; use a new --out", file=sys.stderr)
            return 2
    atomic.write_text(cfg_path, json.dumps(config, indent=1))

    model = build_model(args).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    step, elapsed = 0, 0.0
    state_path = out / "state.json"
    if state_path.exists():  # resume
        state = json.loads(state_path.read_text())
        step, elapsed = int(state["step"]), float(state["seconds"])
        _load_into(model, out / "model.safetensors")
        _load_into(ema, out / "ema.safetensors")
        opt.load_state_dict(torch.load(out / "optimizer.pt", map_location=device, weights_only=True))
        print(f"resumed {out} at step {step}", flush=True)
    elif args.init:
        try:
            _load_into(model, Path(args.init))
            _load_into(ema, Path(args.init))
        except (RuntimeError, OSError) as e:
            print(f"error: --init {args.init} does not fit this architecture/vocabulary: {e}", file=sys.stderr)
            return 2
        print(f"initialized from {args.init}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.arch}: {n_params / 1e6:.2f}M parameters on {device}; steps {step}->{args.steps}", flush=True)

    scheduler = make_scheduler()
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(device)
    stream = training_stream(args.seed, args.frames, args.height, args.width, args.batch_size,
                             start=step * args.batch_size, second_object_p=args.second_object_p,
                             textured_p=args.textured_p)
    def train_info(steps: int) -> dict[str, Any]:
        return {"arch": args.arch, "steps": steps, "batch_size": args.batch_size, "seed": args.seed}

    def checkpoint(last_loss: float) -> None:
        save_weights(model, out / "model.safetensors", dtype=torch.float32)
        save_weights(ema, out / "ema.safetensors", dtype=torch.float32)
        tmp = out / "optimizer.pt.tmp"
        torch.save(opt.state_dict(), tmp)
        tmp.replace(out / "optimizer.pt")
        atomic.write_text(state_path, json.dumps({"step": step, "seconds": round(elapsed, 1), "loss": last_loss}))

    model.train()
    t_start, t_ckpt = time.time() - elapsed, time.time()
    log = open(out / "loss.jsonl", "a")  # noqa: SIM115 (appended to for the whole training loop, closed below)
    running, last = 0.0, float("nan")
    while step < args.steps:
        frames, captions = next(stream)
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = training_loss(model, scheduler, frames, captions, g, p_uncond=args.p_uncond,
                             lowres_factor=args.sr_factor or None)
        if not math.isfinite(loss.item()):
            print(f"error: loss is {loss.item()} at step {step}; lower --lr", file=sys.stderr)
            return 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))  # short runs: EMA warms up with the step
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        step += 1
        running += loss.item()
        elapsed = time.time() - t_start
        if step % args.log_every == 0:
            last = running / args.log_every
            running = 0.0
            log.write(json.dumps({"step": step, "loss": round(last, 5), "lr": lr, "seconds": round(elapsed, 1)}) + "\n")
            log.flush()
            print(f"step {step} loss {last:.4f} ({elapsed:.0f}s)", flush=True)
        if step in args.snapshot:
            save_weights(ema, out / f"ema-step{step}.safetensors", extra={"train": train_info(step)})
        if time.time() - t_ckpt > args.checkpoint_every:
            checkpoint(last)
            t_ckpt = time.time()
        if args.time_limit and elapsed > args.time_limit:
            print(f"time limit reached at step {step}", flush=True)
            break
    checkpoint(last)
    final = save_weights(ema, out / "final.safetensors", extra={"train": train_info(step)})
    if args.export:
        save_weights(ema, args.export, extra={"train": train_info(step)})
    print(f"done: step {step}, {elapsed:.0f}s, weights {final}", flush=True)
    log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

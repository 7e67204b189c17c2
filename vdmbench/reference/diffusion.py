"""Diffusion around the reference denoisers: schedule, v-prediction loss, DDIM sampling with
classifier-free guidance, frame conditioning, SDEdit editing, and safetensors checkpoints.

The noise schedule and the DDIM update come from diffusers (`DDIMScheduler`): a cosine schedule
rescaled to zero terminal SNR with "trailing" timesteps, so the first sampling step starts from
pure noise (otherwise small models learn a biased mean color). The network predicts v.

One `VideoDiffusion` module holds the caption vocabulary, the text encoder and the denoiser, so a
checkpoint is a single safetensors file whose metadata says how to rebuild it.

Frame conditioning: the denoiser's input is [x_t (3), known frames or 0 (3), mask (1)] (+ an
upsampled low-resolution clip (3) for a super-resolution stage). Training masks random frames
(none, first k, first+last, random), so one model does t2v, i2v, prediction and interpolation.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vdmbench.core import atomic
from vdmbench.core.errors import WeightsError
from vdmbench.reference.text import TextEncoder, Vocabulary

FORMAT = "vdmbench-reference/1"
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "clip_sample": False,
    "set_alpha_to_one": False,
}


def make_scheduler(config: dict[str, Any] | None = None):
    """A fresh DDIMScheduler (schedulers keep per-call state, so never share one)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**(config or SCHEDULER_CONFIG))


def build_denoiser(arch: str, config: dict[str, Any]) -> nn.Module:
    from vdmbench.reference.temporal_attention import TAUNetConfig, TemporalAttentionUNet
    from vdmbench.reference.unet3d import UNet3D, UNet3DConfig

    architectures: dict[str, tuple[Any, Any]] = {
        "unet3d": (UNet3D, UNet3DConfig), "temporal_attention": (TemporalAttentionUNet, TAUNetConfig),
    }
    if arch not in architectures:
        raise WeightsError(f"unknown reference architecture {arch!r}; known: {', '.join(architectures)}")
    cls, cfg_cls = architectures[arch]
    known = {f.name for f in fields(cfg_cls)}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in known}
    return cls(cfg_cls(**kw))


class VideoDiffusion(nn.Module):
    """Caption vocabulary + text encoder + denoiser; pixels in [-1, 1], layout [B, 3, T, H, W]."""

    def __init__(self, arch: str, net_config: dict[str, Any], vocab: list[str], *,
                 text_dim: int = 64, lowres: bool = False, resolution: tuple[int, int, int] = (8, 32, 32)) -> None:
        super().__init__()
        self.arch = arch
        self.lowres = lowres
        self.resolution = tuple(resolution)  # (frames, height, width) it was trained at
        self.vocab = Vocabulary(vocab)
        in_channels = 7 + (3 if lowres else 0)
        self.net_config = {**net_config, "in_channels": in_channels, "text_dim": text_dim}
        self.text_dim = text_dim
        self.text = TextEncoder(len(self.vocab), text_dim, self.vocab.max_len)
        self.net = build_denoiser(arch, self.net_config)

    def meta(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "arch": self.arch,
            "net_config": json.dumps(_jsonable(self.net_config)),
            "vocab": json.dumps(self.vocab.words[3:]),
            "text_dim": str(self.text_dim),
            "lowres": json.dumps(self.lowres),
            "resolution": json.dumps(list(self.resolution)),
            "scheduler": json.dumps(SCHEDULER_CONFIG),
        }

    def encode_text(self, prompts: list[str], device: torch.device):
        tok = self.vocab.encode(prompts)
        feats, pooled = self.text(tok.ids.to(device), tok.mask.to(device))
        return feats, tok.mask.to(device), pooled, tok.unknown

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text, known: torch.Tensor,
                known_mask: torch.Tensor, lowres: torch.Tensor | None = None) -> torch.Tensor:
        """Predict v. known [B,3,T,H,W] (zeros where unknown), known_mask bool [B, T]."""
        feats, tmask, pooled = text
        m = known_mask.to(x_t.dtype)[:, None, :, None, None].expand(-1, 1, -1, *x_t.shape[-2:])
        parts = [x_t, known * m, m]
        if self.lowres:
            if lowres is None:
                raise ValueError("this is a super-resolution stage: pass the low-resolution clip")
            parts.append(F.interpolate(lowres, size=x_t.shape[-3:], mode="trilinear", align_corners=False))
        return self.net(torch.cat(parts, dim=1), t, feats, tmask, pooled)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ---------------------------------------------------------------------------------------------
# Pixels <-> model space


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """float [B, 3, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, 3]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# Training


def random_frame_mask(batch: int, frames: int, generator: torch.Generator) -> torch.Tensor:
    """bool [B, T] of frames given to the model: 40% none (t2v), 25% first k (prediction, i2v),
    20% first + last (interpolation), 15% a random subset."""
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    kind = torch.rand(batch, generator=generator)
    k = torch.randint(1, max(2, frames // 2 + 1), (batch,), generator=generator)
    rand = torch.rand(batch, frames, generator=generator) < 0.3
    for b in range(batch):
        if kind[b] < 0.40:
            continue
        if kind[b] < 0.65:
            mask[b, : int(k[b])] = True
        elif kind[b] < 0.85:
            mask[b, 0] = mask[b, -1] = True
        else:
            mask[b] = rand[b]
    return mask


def training_loss(model: VideoDiffusion, scheduler, frames: torch.Tensor, captions: list[str],
                  generator: torch.Generator, *, p_uncond: float = 0.1,
                  lowres_factor: int | None = None) -> torch.Tensor:
    """v-prediction MSE on a batch of uint8 clips; the randomness all comes from `generator`.

    Captions are dropped with probability p_uncond (classifier-free guidance); a random frame
    mask chooses the known frames. The loss covers the unknown frames only (known ones are given).
    """
    device = next(model.parameters()).device
    x0 = to_model(frames).to(device)
    b, _, t_len = x0.shape[:3]
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator).to(device)
    x_t = scheduler.add_noise(x0, noise, t)
    target = scheduler.get_velocity(x0, noise, t)
    drop = torch.rand(b, generator=generator) < p_uncond
    captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
    known_mask = random_frame_mask(b, t_len, generator).to(device)
    lowres = None
    if model.lowres:
        if lowres_factor is None:
            raise ValueError("a super-resolution stage trains with lowres_factor (the base stage's downscale)")
        lowres = F.avg_pool3d(x0, (1, lowres_factor, lowres_factor))
    feats, tmask, pooled, _ = model.encode_text(captions, device)
    pred = model(x_t, t, (feats, tmask, pooled), x0, known_mask, lowres)
    weight = (~known_mask).to(x0.dtype)[:, None, :, None, None]
    err = ((pred - target) ** 2 * weight).sum() / (weight.sum() * x0.shape[1] * x0.shape[3] * x0.shape[4]).clamp(min=1)
    return err


# ---------------------------------------------------------------------------------------------
# Sampling


@torch.no_grad()
def sample(model: VideoDiffusion, prompts: list[str], noise: torch.Tensor, *, steps: int = 25,
           guidance: float = 3.0, known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
           init: torch.Tensor | None = None, strength: float | None = None,
           lowres: torch.Tensor | None = None) -> tuple[torch.Tensor, list[tuple[str, ...]]]:
    """DDIM (eta = 0, so deterministic given `noise`) with classifier-free guidance.

    noise [B, 3, T, H, W] is the only randomness. `known`/`known_mask` give frames to keep
    (they are pasted into the result exactly). `init` + `strength` is SDEdit: the source clip is
    noised to `strength` of the trajectory with `noise` and denoised under the new prompts.
    Returns (x0 in [-1, 1], the unknown words of each prompt).
    """
    device = noise.device
    b = noise.shape[0]
    sched = make_scheduler()
    sched.set_timesteps(steps)
    timesteps = sched.timesteps
    if known is None or known_mask is None:
        known = torch.zeros_like(noise)
        known_mask = torch.zeros(b, noise.shape[2], dtype=torch.bool, device=device)
    if init is not None:
        s = 1.0 if strength is None else float(strength)
        if not 0 < s <= 1:
            raise ValueError(f"strength must be in (0, 1], got {s}")
        skip = steps - max(1, int(round(steps * s)))
        timesteps = timesteps[skip:]
        x = sched.add_noise(init, noise, timesteps[:1].repeat(b))
    else:
        x = noise
    feats, tmask, pooled, unknown = model.encode_text(list(prompts), device)
    nfeats, nmask, npooled, _ = model.encode_text([""] * b, device)
    use_cfg = guidance is not None and guidance != 1.0
    for t in timesteps:
        tt = torch.full((b,), int(t), device=device, dtype=torch.long)
        if use_cfg:  # one batched call for the conditional and the unconditional branch
            text = (torch.cat([feats, nfeats]), torch.cat([tmask, nmask]), torch.cat([pooled, npooled]))
            out = model(torch.cat([x, x]), tt.repeat(2), text, known.repeat(2, 1, 1, 1, 1),
                        known_mask.repeat(2, 1), None if lowres is None else lowres.repeat(2, 1, 1, 1, 1))
            cond, uncond = out.chunk(2)
            v = uncond + guidance * (cond - uncond)
        else:
            v = model(x, tt, (feats, tmask, pooled), known, known_mask, lowres)
        x = sched.step(v, t, x, eta=0.0).prev_sample
    m = known_mask[:, None, :, None, None]
    x = torch.where(m, known, x.clamp(-1, 1))
    return x, list(unknown)


# ---------------------------------------------------------------------------------------------
# Checkpoints (safetensors only)


def save_weights(model: VideoDiffusion, path: str | Path, *, dtype: torch.dtype = torch.float16,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write weights + rebuild metadata to one safetensors file (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
          for k, v in model.state_dict().items()}
    meta = {**model.meta(), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    with atomic.atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def model_from_metadata(meta: dict[str, str]) -> VideoDiffusion:
    if meta.get("format") != FORMAT:
        raise WeightsError(f"not a vdmbench reference checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return VideoDiffusion(
        meta["arch"],
        json.loads(meta["net_config"]),
        json.loads(meta["vocab"]),
        text_dim=int(meta["text_dim"]),
        lowres=json.loads(meta["lowres"]),
        resolution=tuple(json.loads(meta["resolution"])),
    )


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[VideoDiffusion, dict[str, str]]:
    """Rebuild the model a safetensors checkpoint describes and load it strictly, in float32."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: reference weights are loaded from .safetensors files only")
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        meta = read_metadata(path)
        sd = load_file(str(path), device="cpu")
    except Exception as e:
        raise WeightsError(f"{path}: cannot read safetensors ({type(e).__name__}: {e})") from e
    model = model_from_metadata(meta)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not match the architecture in its metadata: {e}") from e
    return model.to(device).eval(), meta

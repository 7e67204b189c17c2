"""V-JEPA ViT-H/16 features with the SSv2 attentive probe's pooling, for JEDi (Luo et al., ICLR 2025).

As the reference implementation (PyPI `videojedi` on `vjepa`, from facebookresearch/jepa) builds it:
- encoder `vith16.pth.tar`, its 'target_encoder' (else 'encoder') state dict, keys prefixed
  `module.` (DDP) and `backbone.` (V-JEPA's multi-mask wrapper), both stripped: ViT-H/16 video
  model, patch 16, tubelet 2, width 1280, depth 32, 16 heads, MLP 5120, LayerNorm eps 1e-6, qkv
  with bias, a final `norm`, and the 3-d sine-cosine position table stored in the checkpoint as
  `pos_embed` [1, 8*14*14, 1280] (16 frames at 224 x 224), resampled trilinearly (scale factors
  (t/8, h/14, w/14)) for other clip sizes;
- probe `ssv2-probe.pth.tar`, its 'classifier' state dict (DDP `module.` prefix): an attentive
  classifier whose pooler is one learned query token, a cross-attention block (LayerNorm eps 1e-5,
  q / kv projections with bias, MLP 5120), then a 174-way SSv2 linear head (loaded, unused). The
  feature is the pooler's output, 1280-d (`pooling: mean` gives the mean token instead, videojedi's
  `finetuned=False`).
Pixels: uint8 / 255, normalized with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224,
0.225) per channel, all frames of the clip in one pass, fp32. videojedi does not resize (its
examples resize clips in the user's loader, nearest-neighbour, to 224 x 224 or 240 x 320):
`resize` here is off by default and, when set, nearest-neighbour like those examples.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features import weights as W
from vdmbench.features.batched import PRECISIONS, BatchedFeatures
from vdmbench.features.transformer_parts import Mlp

NOT_COMPARABLE = "not comparable with published numbers"
BACKENDS = ("vjepa", "random-vjepa")
POOLINGS = ("attentive", "mean")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Meta publishes no sha256 for these files: they are not pinned, never downloaded automatically, and
# a local copy's sha256 is recorded with every result.
ENCODER_WEIGHTS = W.WeightSpec(
    "vjepa", "vith16.pth.tar", "https://dl.fbaipublicfiles.com/jepa/vith16/vith16.pth.tar", None,
    "V-JEPA ViT-H/16 (16 frames, 224 px), facebookresearch/jepa pre-training checkpoint")
PROBE_WEIGHTS = W.WeightSpec(
    "vjepa-ssv2-probe", "ssv2-probe.pth.tar", "https://dl.fbaipublicfiles.com/jepa/vith16/ssv2-probe.pth.tar", None,
    "V-JEPA ViT-H/16 attentive probe trained on SSv2 (JEDi's pooling)")


@dataclass(frozen=True)
class VJEPAConfig:
    """V-JEPA video ViT + attentive probe; the defaults are JEDi's ViT-H/16 with the SSv2 probe."""

    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_hidden: int = 5120
    img_size: int = 224
    patch_size: int = 16
    tubelet_size: int = 2
    num_frames: int = 16
    ln_eps: float = 1e-6  # encoder; the probe uses nn.LayerNorm's default 1e-5
    probe_ln_eps: float = 1e-5
    probe_mlp_hidden: int = 5120
    num_classes: int = 174

    @property
    def grid(self) -> tuple[int, int, int]:
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side


VIT_H = VJEPAConfig()
# `features: random-vjepa`: the same layout and preprocessing at a width a CPU runs in seconds.
RANDOM_OFFLINE = replace(VIT_H, embed_dim=192, depth=4, num_heads=3, mlp_hidden=768, probe_mlp_hidden=768)


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """[M, dim]: sin(pos * w) for the first half, cos for the second, w_k = 10000^(-k / (dim/2))."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64, device="cpu") / (dim / 2))
    out = pos.reshape(-1, 1) * omega
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_3d_table(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """[1, t*h*w, dim] V-JEPA's 3-d table with uniform_power (JEDi's config): equal parts for
    time, height and width, each 2*ceil(dim/6) wide, concatenated (t, h, w) and cut to dim.
    Only random-weight models use it: a checkpoint brings its own table."""
    t, h, w = grid
    part = int(math.ceil(dim / 6) * 2)
    gt, gh, gw = torch.meshgrid(*(torch.arange(n, dtype=torch.float64, device="cpu") for n in (t, h, w)), indexing="ij")
    table = torch.cat([sincos_1d(part, g) for g in (gt, gh, gw)], dim=1)[:, :dim]
    return table.to(torch.float32)[None]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: VJEPAConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed3D(nn.Module):
    def __init__(self, cfg: VJEPAConfig) -> None:
        super().__init__()
        k = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(3, cfg.embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VJEPAEncoder(nn.Module):
    """V-JEPA's video ViT: tokens [B, t*h*w, dim] after the final LayerNorm."""

    def __init__(self, cfg: VJEPAConfig = VIT_H) -> None:
        super().__init__()
        self.cfg = cfg
        t, h, w = cfg.grid
        self.patch_embed = PatchEmbed3D(cfg)
        self.pos_embed = nn.Parameter(torch.zeros(1, t * h * w, cfg.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)

    def position_embedding(self, frames: int, height: int, width: int) -> torch.Tensor:
        """The stored table, resampled trilinearly when the clip is not the trained 16 x 224 x 224
        (scale factors tokens / trained tokens per axis, as V-JEPA does)."""
        cfg = self.cfg
        if (frames, height, width) == (cfg.num_frames, cfg.img_size, cfg.img_size):
            return self.pos_embed
        nt, nh, nw = cfg.grid
        t, h, w = frames // cfg.tubelet_size, height // cfg.patch_size, width // cfg.patch_size
        d = cfg.embed_dim
        grid = self.pos_embed.reshape(1, nt, nh, nw, d).permute(0, 4, 1, 2, 3)
        grid = F.interpolate(grid, scale_factor=(t / nt, h / nh, w / nw), mode="trilinear")
        if tuple(grid.shape[2:]) != (t, h, w):  # round-off in the scale factor: V-JEPA itself would fail here
            raise MetricInputError(f"vjepa: clips of {frames}x{height}x{width} give a {tuple(grid.shape[2:])} position "
                                   f"grid for {(t, h, w)} tokens; resize the clips (option resize) to e.g. 224")
        return grid.permute(0, 2, 3, 4, 1).reshape(1, -1, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: normalized float [B, 3, T, H, W] -> tokens [B, N, dim]."""
        cfg = self.cfg
        if x.shape[1] != 3 or x.shape[2] < cfg.tubelet_size or min(x.shape[3:]) < cfg.patch_size:
            raise MetricInputError(f"vjepa: expected [B, 3, T>={cfg.tubelet_size}, H>={cfg.patch_size}, "
                                   f"W>={cfg.patch_size}], got {list(x.shape)}")
        pos = self.position_embedding(*x.shape[2:])
        tokens = self.patch_embed(x) + pos.to(x.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b, n, d = q.shape
        hd = d // self.heads
        q = self.q(q).reshape(b, n, self.heads, hd).transpose(1, 2)
        k, v = self.kv(x).reshape(b, x.shape[1], 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class CrossAttentionBlock(nn.Module):
    """The query attends to the normalized tokens; the query itself is not normalized first."""

    def __init__(self, cfg: VJEPAConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.probe_ln_eps)
        self.xattn = CrossAttention(cfg.embed_dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.probe_ln_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.probe_mlp_hidden)

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        q = q + self.xattn(q, self.norm1(x))
        return q + self.mlp(self.norm2(q))


class AttentivePooler(nn.Module):
    def __init__(self, cfg: VJEPAConfig) -> None:
        super().__init__()
        self.query_tokens = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.cross_attention_block = CrossAttentionBlock(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, dim] -> pooled [B, dim]."""
        return self.cross_attention_block(self.query_tokens.expand(len(x), -1, -1), x).squeeze(1)


class AttentiveClassifier(nn.Module):
    """The probe checkpoint's module: pooler + SSv2 head (the head only so the file loads strictly)."""

    def __init__(self, cfg: VJEPAConfig = VIT_H) -> None:
        super().__init__()
        self.pooler = AttentivePooler(cfg)
        self.linear = nn.Linear(cfg.embed_dim, cfg.num_classes)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def init_random_(module: ModuleT, seed: int) -> ModuleT:
    """Seeded weights (deterministic, no global RNG): normal(0, 0.02), LayerNorm scales 1 + normal(0,
    0.1), small random biases, so that a test sees every parameter; a V-JEPA encoder's pos_embed gets
    the sine-cosine table, as at V-JEPA's initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name == "pos_embed" and isinstance(module, VJEPAEncoder):
                p.copy_(sincos_3d_table(module.cfg.embed_dim, module.cfg.grid))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return module


def vjepa_preprocess(videos: torch.Tensor, resize: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float32 [B, 3, T, H', W']: / 255, optional nearest-neighbour resize,
    then (x - ImageNet mean) / ImageNet std per channel."""
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise MetricInputError(f"vjepa: expected uint8 videos [B, T, H, W, 3] in [0, 255], got "
                               f"{videos.dtype} {list(videos.shape)}; floats in [0, 1] must be multiplied by 255 first")
    b, t, h, w, c = videos.shape
    x = videos.permute(0, 1, 4, 2, 3).to(torch.float32) / 255  # [B, T, 3, H, W]
    if resize is not None and tuple(resize) != (h, w):
        x = F.interpolate(x.reshape(b * t, c, h, w), size=tuple(resize), mode="nearest").reshape(b, t, c, *resize)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return ((x - mean) / std).permute(0, 2, 1, 3, 4)


def _strip(state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def read_checkpoint(path: str | os.PathLike, keys: tuple[str, ...], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The first of `keys` found in a torch pickle (weights_only=True), prefixes stripped; or a
    safetensors file holding the state dict itself."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _strip(W.load_state_dict(path), prefixes)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{path}: refused — the checkpoint pickles objects beyond tensors (code would run on "
                           f"load). Save its '{keys[0]}' state dict alone (safetensors preferred) and pass that "
                           f"file. ({str(e).splitlines()[0]})") from e
    except Exception as e:
        raise WeightsError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    state = next((obj[k] for k in keys if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
    if state is None or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(f"{path}: no state dict under {' or '.join(map(repr, keys))} (found {found}); "
                           "expected a facebookresearch/jepa checkpoint")
    return _strip(state, prefixes)


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike, what: str,
                spec: W.WeightSpec) -> None:
    W.check_state_dict(model.state_dict(), state, source, what, f"Use {spec.filename} ({spec.url})")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True, assign=True)


def _size(resize: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    size = (int(resize), int(resize)) if isinstance(resize, (int, float)) else tuple(int(s) for s in resize)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"vjepa: resize must be a size or [height, width], got {resize!r}")
    return size[0], size[1]


def build_vjepa_features(
    backend: str,
    *,
    pooling: str = "attentive",
    resize: int | tuple[int, int] | list[int] | None = None,
    weights: str | None = None,
    probe_weights: str | None = None,
    weights_sha256: str | None = None,
    probe_sha256: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    precision: str = "fp32",
    cache_dir: Path | None = None,
    config: VJEPAConfig | None = None,
) -> tuple[BatchedFeatures, dict]:
    """The V-JEPA extractor for `backend` (vjepa | random-vjepa) and a description of it.

    `config` overrides the architecture (tests: small widths with the real key names)."""
    if backend not in BACKENDS:
        raise ConfigError(f"jedi: features must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if pooling not in POOLINGS:
        raise ConfigError(f"jedi: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"jedi: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    size = _size(resize)
    random = backend == "random-vjepa"
    cfg = config or (RANDOM_OFFLINE if random else VIT_H)
    dtype = PRECISIONS[precision]
    info: dict = {"features": backend, "pooling": pooling, "dim": cfg.embed_dim, "precision": precision,
                  "resize": "as given" if size is None else f"{size[0]}x{size[1]} nearest",
                  "normalization": "ImageNet mean/std on x / 255",
                  "architecture": f"V-JEPA ViT patch {cfg.patch_size} tubelet {cfg.tubelet_size} width "
                                  f"{cfg.embed_dim} depth {cfg.depth} heads {cfg.num_heads}"}
    if random:
        encoder = init_random_(VJEPAEncoder(cfg), seed)
        probe: AttentiveClassifier | None = init_random_(AttentiveClassifier(cfg), seed + 1)
        tag = f"random-seed{seed}"
        info.update(weights=f"random (seed {seed})", seed=seed, comparable=False, label=NOT_COMPARABLE)
    else:
        r = W.resolve(ENCODER_WEIGHTS, weights, sha256=weights_sha256, cache_dir=cache_dir)
        with torch.device("meta"):  # the checkpoint's tensors are assigned: no throw-away initialisation
            encoder = VJEPAEncoder(cfg)
        load_strict(encoder, read_checkpoint(r.path, ("target_encoder", "encoder"), ("module.", "backbone.")),
                    r.path, f"a V-JEPA video ViT checkpoint (width {cfg.embed_dim}, depth {cfg.depth})", ENCODER_WEIGHTS)
        info.update(weights=str(r.path), weights_sha256=r.sha256, weights_pinned=r.pinned)
        tag = r.sha256
        probe = None
        if pooling == "attentive":
            with torch.device("meta"):
                probe = AttentiveClassifier(cfg)
            p = W.resolve(PROBE_WEIGHTS, probe_weights, sha256=probe_sha256, cache_dir=cache_dir)
            load_strict(probe, read_checkpoint(p.path, ("classifier",), ("module.",)), p.path,
                        f"a V-JEPA attentive-probe checkpoint (width {cfg.embed_dim})", PROBE_WEIGHTS)
            info.update(probe_weights=str(p.path), probe_sha256=p.sha256, probe_pinned=p.pinned)
            tag += f"|{p.sha256}"
        info["comparable"] = precision == "fp32" and cfg == VIT_H and pooling == "attentive"
    encoder = encoder.eval().to(device=device, dtype=dtype)
    pooler = probe.pooler.eval().to(device=device, dtype=dtype) if probe is not None and pooling == "attentive" else None

    def forward(v: torch.Tensor) -> torch.Tensor:
        tokens = encoder(vjepa_preprocess(v, size).to(dtype))
        return pooler(tokens) if pooler is not None else tokens.mean(dim=1)

    ident = hashlib.sha256(f"{backend}|{tag}|{cfg}|{pooling}|{size}|{precision}".encode()).hexdigest()[:16]
    info["extractor_id"] = ident
    return BatchedFeatures(forward, cfg.embed_dim, ident, device, batch_size, precision), info

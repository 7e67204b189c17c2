"""VideoMAE-v2 ViT-g/14 features for content-debiased FVD (Ge et al., CVPR 2024; PyPI `cd-fvd`).

The model is the VideoMAE-v2 fine-tuned ViT (OpenGVLab/VideoMAEv2) exactly as cd-fvd builds it
for `vit_g_hybrid_pt_1200e_ssv2_ft.pth` (hybrid pre-training 1200 epochs, fine-tuned on SSv2):
patch 14 x 14, tubelet 2, width 1408, depth 40, 16 heads (head dim 88), MLP hidden 6144 (ratio
48/11), LayerNorm eps 1e-6, no layer scale, fixed sine-cosine position table for 16 frames at
224 x 224 (8 x 16 x 16 tokens, not in the checkpoint), attention with a learned bias on q and v
only (k's bias is 0: the checkpoint has `attn.q_bias` and `attn.v_bias` beside a bias-free
`attn.qkv`), mean pooling over all tokens then `fc_norm`. The feature is that fc_norm output,
1408-d, taken before the 174-way SSv2 head (whose weights are in the checkpoint and loaded, unused).

cd-fvd's preprocessing, which this follows: uint8 frames / 255 as float32 (values in [0, 1]: NO
mean/std normalization, unlike VideoMAE's own training pipeline), resized to 224 x 224 with
bilinear interpolation (align_corners False, no antialias; aspect ratio not kept, no crop); the
clip's frames all go in (cd-fvd's loaders give 16). Other frame counts work as in cd-fvd: the
time axis of the position table is resampled trilinearly with its scale factor (t/2 + 0.1) / 8.
fp32 by default; `precision: fp16` casts model and input, like cd-fvd's `half_precision`.

Checkpoint: a torch pickle whose state dict sits under 'model' or 'module' (cd-fvd looks in that
order) or at the top; read with weights_only=True (argparse.Namespace, which training scripts save
beside the weights, is the one non-tensor type allowed). Keys are loaded strictly.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features import weights as W
from vdmbench.features.batched import PRECISIONS, BatchedFeatures
from vdmbench.features.transformer_parts import Mlp

NOT_COMPARABLE = "not comparable with published numbers"
BACKENDS = ("videomae-v2", "random-videomae-v2")
PROTOCOL_FRAMES = 16  # cd-fvd's clips (its loaders' sequence_length) and the table the model was trained with

# No sha256 is published for this file (OpenGVLab's model zoo lists URLs only), so it is not pinned and
# never downloaded automatically: a local copy is accepted and its sha256 recorded with every result.
WEIGHTS = W.WeightSpec(
    "videomae-v2", "vit_g_hybrid_pt_1200e_ssv2_ft.pth",
    "https://pjlab-gvm-data.oss-cn-shanghai.aliyuncs.com/internvideo/videomaev2/vit_g_hybrid_pt_1200e_ssv2_ft.pth",
    None, "VideoMAE-v2 ViT-g/14, hybrid pre-training 1200 epochs, fine-tuned on SSv2 (cd-fvd's model)",
)


@dataclass(frozen=True)
class VideoMAEConfig:
    """Architecture of the fine-tuned VideoMAE-v2 ViT; the defaults are ViT-g/14 as cd-fvd builds it."""

    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_hidden: int = 6144  # int(1408 * 48 / 11)
    num_classes: int = 174  # SSv2 head (in the checkpoint, not part of the feature)
    img_size: int = 224
    patch_size: int = 14
    tubelet_size: int = 2
    num_frames: int = 16  # frames the position table is laid out for
    ln_eps: float = 1e-6

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (time, height, width) of the position table."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side


VIT_G = VideoMAEConfig()
# `features: random-videomae-v2`: the same layout, input size and preprocessing at a width a CPU runs
# in seconds; random weights, so its numbers are not comparable with published ones.
RANDOM_OFFLINE = replace(VIT_G, embed_dim=192, depth=4, num_heads=3, mlp_hidden=768)


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """[1, n, dim] fixed position table: angle pos / 10000^(2 floor(j/2) / dim), sin on even j, cos on odd."""
    # Made on the CPU even inside a `torch.device("meta")` block (a real table beside meta weights; the
    # module's .to(device) moves it): arange on meta would also pull in seconds of imports.
    pos = torch.arange(n_position, dtype=torch.float64, device="cpu")[:, None]
    j = torch.arange(dim, dtype=torch.float64, device="cpu")
    base = torch.tensor(10000.0, dtype=torch.float64, device="cpu")
    angle = pos / torch.pow(base, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32)[None]  # computed in float64, stored in float32 like the original


class PatchEmbed(nn.Module):
    def __init__(self, cfg: VideoMAEConfig) -> None:
        super().__init__()
        k = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(3, cfg.embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, D, t, h, w] -> [B, t*h*w, D]


class Attention(nn.Module):
    """Multi-head self-attention; qkv projection without bias plus learned q and v biases (k: zero)."""

    def __init__(self, cfg: VideoMAEConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        d = cfg.embed_dim
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(d))
        self.v_bias = nn.Parameter(torch.zeros(d))
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, N, head_dim]
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block (no layer scale: the checkpoint has no gamma_1/gamma_2)."""

    def __init__(self, cfg: VideoMAEConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAEv2(nn.Module):
    """Fine-tuned VideoMAE-v2 ViT; `forward_features` gives the mean-pooled, fc_norm'ed tokens."""

    pos_table: torch.Tensor

    def __init__(self, cfg: VideoMAEConfig = VIT_G) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.ln_eps)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)
        # Not a weight: derived from the shape, so kept out of the state dict (the checkpoint lacks it).
        self.register_buffer("pos_table", self._table(), persistent=False)

    def _table(self) -> torch.Tensor:
        t, h, w = self.cfg.grid
        return sinusoid_table(t * h * w, self.cfg.embed_dim)

    def position_embedding(self, frames: int) -> torch.Tensor:
        """The table for a clip of `frames` frames: as is at the trained length, else its time axis
        resampled trilinearly with the scale factor (t + 0.1) / t_trained, as cd-fvd does."""
        t_trained, h, w = self.cfg.grid
        t = frames // self.cfg.tubelet_size
        if t == t_trained:
            return self.pos_table
        d = self.cfg.embed_dim
        grid = self.pos_table.transpose(1, 2).reshape(1, d, t_trained, h, w)
        # The + 0.1 guards the output length floor(t_trained * scale) against round-off, as in DINO.
        grid = F.interpolate(grid, scale_factor=((t + 0.1) / t_trained, 1.0, 1.0), mode="trilinear")
        return grid.reshape(1, d, -1).transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [B, 3, T, S, S] (cd-fvd: values in [0, 1]) -> [B, embed_dim]."""
        s = self.cfg.img_size
        if x.shape[1] != 3 or tuple(x.shape[3:]) != (s, s) or x.shape[2] < self.cfg.tubelet_size:
            raise MetricInputError(f"videomae-v2: expected input [B, 3, T>={self.cfg.tubelet_size}, {s}, {s}], "
                                   f"got {list(x.shape)}")
        tokens = self.patch_embed(x)
        tokens = tokens + self.position_embedding(x.shape[2]).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.fc_norm(tokens.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """SSv2 logits (not used for FVD; here so the checkpoint's head is a real part of the model)."""
        return self.head(self.forward_features(x))


def init_random_(model: VideoMAEv2, seed: int) -> VideoMAEv2:
    """Seeded weights, deterministic, no global RNG touched: every weight normal(0, 0.02) as in the
    original's init for Linear layers; biases, q/v biases and LayerNorm shifts small random values
    (not the original's zeros) so that a test sees every one of them in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "fc_norm.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return model


def videomae_preprocess(videos: torch.Tensor, size: int = 224) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float32 [B, 3, T, size, size] in [0, 1], cd-fvd's steps: / 255, then
    bilinear resize (align_corners False, no antialias) of every frame to size x size."""
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise MetricInputError(f"videomae-v2: expected uint8 videos [B, T, H, W, 3] in [0, 255], got "
                               f"{videos.dtype} {list(videos.shape)}; floats in [0, 1] must be multiplied by 255 first")
    b, t, h, w, c = videos.shape
    x = videos.permute(0, 4, 1, 2, 3).to(torch.float32) / 255  # [B, 3, T, H, W]
    if (h, w) != (size, size):
        # Interpolated as [B*3, T, H, W] planes, like cd-fvd's 4-d call on [3, T, H, W] (time as channels).
        x = F.interpolate(x.reshape(b * c, t, h, w), size=(size, size), mode="bilinear", align_corners=False)
        x = x.reshape(b, c, t, size, size)
    return x


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a VideoMAE-v2 checkpoint: safetensors, or a torch pickle read with
    weights_only=True, unwrapped from 'model' or 'module' (cd-fvd's order)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return W.load_state_dict(path)
    try:
        # Fine-tuning scripts save their argparse.Namespace with the weights; it only holds attributes.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{path}: refused — the checkpoint pickles objects beyond tensors and argparse "
                           "arguments (code would run on load). Save its 'model' state dict alone (safetensors "
                           f"preferred) and pass that file. ({str(e).splitlines()[0]})") from e
    except Exception as e:
        raise WeightsError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    for key in ("model", "module", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors (under 'model' or 'module'), got "
                           f"{type(obj).__name__}")
    return dict(obj)


def load_videomae_state_dict(model: VideoMAEv2, state: Mapping[str, torch.Tensor], source: str | os.PathLike) -> VideoMAEv2:
    """Strict load: the keys and shapes must be the model's exactly (one-line error naming the first
    wrong key). Tensors are assigned in float32 (a half-precision file is upcast)."""
    W.check_state_dict(model.state_dict(), state, source, "a VideoMAE-v2 fine-tuned ViT checkpoint "
                       f"(width {model.cfg.embed_dim}, depth {model.cfg.depth})",
                       f"Use {WEIGHTS.filename} from OpenGVLab/VideoMAEv2 ({WEIGHTS.url})")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True, assign=True)
    return model


def build_videomae_features(
    backend: str,
    *,
    layer: str = "fc_norm",
    resize: int | None = None,
    weights: str | None = None,
    weights_sha256: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    precision: str = "fp32",
    cache_dir: Path | None = None,
    config: VideoMAEConfig | None = None,
) -> tuple[BatchedFeatures, dict]:
    """The VideoMAE-v2 extractor for `backend` (videomae-v2 | random-videomae-v2) and a description.

    `config` overrides the architecture (tests: a small width with the real key format); by default
    ViT-g/14 for videomae-v2 and a small-width variant for random-videomae-v2."""
    if backend not in BACKENDS:
        raise ConfigError(f"features must be one of {', '.join(BACKENDS)} here, got {backend!r}")
    if layer != "fc_norm":
        raise ConfigError(f"{backend}: layer must be 'fc_norm' (cd-fvd's mean-pooled, normalized tokens), got {layer!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"{backend}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    random = backend == "random-videomae-v2"
    cfg = config or (RANDOM_OFFLINE if random else VIT_G)
    if resize is not None and int(resize) != cfg.img_size:
        raise ConfigError(f"{backend}: the model takes {cfg.img_size}x{cfg.img_size} frames (fixed position "
                          f"table); resize must be {cfg.img_size} or unset, got {resize!r}")
    dtype = PRECISIONS[precision]
    info: dict = {"features": backend, "layer": layer, "resize": cfg.img_size, "dim": cfg.embed_dim,
                  "normalization": "[0, 1] (x / 255, no mean/std)", "interpolation": "bilinear",
                  "protocol_frames": PROTOCOL_FRAMES, "precision": precision,
                  "architecture": f"VideoMAE-v2 ViT patch {cfg.patch_size} tubelet {cfg.tubelet_size} "
                                  f"width {cfg.embed_dim} depth {cfg.depth} heads {cfg.num_heads}"}
    if random:
        model = init_random_(VideoMAEv2(cfg), seed)
        tag = f"random-seed{seed}"
        info.update(weights=f"random (seed {seed})", seed=seed, comparable=False, label=NOT_COMPARABLE)
    else:
        r = W.resolve(WEIGHTS, weights, sha256=weights_sha256, cache_dir=cache_dir)
        state = read_checkpoint(r.path)
        with torch.device("meta"):  # no 4 GB of throw-away initialisation: the checkpoint's tensors are assigned
            model = VideoMAEv2(cfg)
        load_videomae_state_dict(model, state, r.path)
        tag = r.sha256
        info.update(weights=str(r.path), weights_sha256=r.sha256, weights_pinned=r.pinned,
                    comparable=precision == "fp32" and cfg == VIT_G)
        if precision != "fp32":
            info["label"] = f"{precision}: moves the features slightly from cd-fvd's fp32 default"
    model = model.eval().to(device=device, dtype=dtype)
    size = cfg.img_size

    def forward(v: torch.Tensor) -> torch.Tensor:
        return model.forward_features(videomae_preprocess(v, size).to(dtype))

    ident = hashlib.sha256(f"{backend}|{tag}|{cfg}|{layer}|{precision}".encode()).hexdigest()[:16]
    info["extractor_id"] = ident
    return BatchedFeatures(forward, cfg.embed_dim, ident, device, batch_size, precision), info


def giant_parameter_count() -> int:
    """Parameters of ViT-g/14 with its SSv2 head (about 1.01e9), counted without allocating them."""
    with torch.device("meta"):
        return sum(p.numel() for p in VideoMAEv2(VIT_G).parameters())


"""DINO ViT (facebookresearch/dino), as VBench's subject_consistency loads it through torch.hub.

VBench calls `torch.hub.load("facebookresearch/dino:main", "dino_vitb16")`: DINO's own
VisionTransformer (vision_transformer.py), ViT-B/16, no head, returning the final-norm [CLS]
token, with `dino_vitbase16_pretrain.pth` (a plain state dict: cls_token, pos_embed,
patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*) loaded
strictly. It is written out here rather than taken from timm because VBench feeds it non-square
frames (its dino_transform resizes the short side to 224 and does not crop), and DINO's
`interpolate_pos_encoding` resamples the position grid with `scale_factor=(h0 + 0.1) / 14` (not a
target size, which timm uses): bicubic source coordinates follow that factor, so the grid values
differ from a size-based resize. Reproduced exactly, including DINO's swapped w/h names.

Preprocessing (`vbench_dino_transform`): VBench's `dino_transform(224)` on the float32 frames its
`load_video` returns: bilinear resize of the short side to 224 without antialiasing (torchvision
< 0.16, which VBench pins), /255, ImageNet mean/std.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import ConfigError
from vdmbench.features.openai_clip import frames_nchw_float, normalize, short_side_size
from vdmbench.features.transformer_parts import Mlp
from vdmbench.features.weights import ResolvedWeights, WeightSpec, check_state_dict, load_state_dict, resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# DINO publishes no checksum for its weights (README and hubconf give only the URL): not pinned, so
# never downloaded automatically; a local copy (or VBench's cache) is used and its sha256 recorded.
DINO_VITB16 = WeightSpec(
    "dino_vitb16", "dino_vitbase16_pretrain.pth",
    "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth", None,
    "DINO ViT-B/16 backbone (facebookresearch/dino), plain state dict",
    vbench_path="dino_model/dino_vitbase16_pretrain.pth",
)


@dataclass(frozen=True)
class DinoArch:
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    img_size: int = 224


# torch.hub names of DINO's backbones (hubconf.py) -> architecture; VBench uses dino_vitb16.
ARCHS: dict[str, DinoArch] = {
    "dino_vitb16": DinoArch(16, 768, 12, 12),
    "dino_vits16": DinoArch(16, 384, 12, 6),
    "dino_vitb8": DinoArch(8, 768, 12, 12),
    "dino_vits8": DinoArch(8, 384, 12, 6),
}


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)  # DINO's explicit softmax
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoVisionTransformer(nn.Module):
    """DINO's ViT backbone: [B, 3, H, W] (any H, W) -> final-norm [CLS] token [B, embed_dim]."""

    def __init__(self, arch: DinoArch = ARCHS["dino_vitb16"]) -> None:
        super().__init__()
        self.arch = arch
        num_patches = (arch.img_size // arch.patch_size) ** 2
        self.patch_embed = PatchEmbed(arch.patch_size, arch.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, arch.embed_dim))
        self.blocks = nn.ModuleList(Block(arch.embed_dim, arch.num_heads, arch.mlp_ratio) for _ in range(arch.depth))
        self.norm = nn.LayerNorm(arch.embed_dim, eps=1e-6)

    def interpolate_pos_encoding(self, x: torch.Tensor, w: int, h: int) -> torch.Tensor:
        # As DINO: `w` is the input's height and `h` its width (its prepare_tokens unpacks B, C, w, h).
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        class_pos = self.pos_embed[:, 0]
        patch_pos = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        side = int(math.sqrt(n))
        # DINO adds 0.1 so that floor(side * factor) gives the patch count (dino issue #8); the factor
        # itself, not the target size, sets the bicubic sampling positions.
        w0 = w // self.arch.patch_size + 0.1
        h0 = h // self.arch.patch_size + 0.1
        patch_pos = F.interpolate(
            patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(n), h0 / math.sqrt(n)),
            mode="bicubic",
        )
        if int(w0) != patch_pos.shape[-2] or int(h0) != patch_pos.shape[-1]:
            raise ValueError(f"dino: position grid {list(patch_pos.shape[-2:])} != patches {int(w0)}x{int(h0)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((class_pos.unsqueeze(0), patch_pos), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, w, h = x.shape
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens, w, h)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)[:, 0]


def find_weights(weights: str | os.PathLike | None = None, weights_sha256: str | None = None) -> ResolvedWeights:
    return resolve(DINO_VITB16, weights, sha256=weights_sha256)


def load_dino(
    model: str = "dino_vitb16",
    *,
    weights: str | os.PathLike | None = None,
    weights_sha256: str | None = None,
    pretrained: str | None = "dino",
    device: str = "cpu",
    seed: int = 0,
) -> tuple[DinoVisionTransformer, dict[str, Any]]:
    """A DINO backbone in eval mode (fp32) and its info. `pretrained="random"` (or None): seeded random
    weights (DINO's init: truncated normal std 0.02), not comparable with published numbers."""
    if model not in ARCHS:
        raise ConfigError(f"dino: unknown model {model!r}; known: {', '.join(ARCHS)}")
    arch = ARCHS[model]
    info: dict[str, Any] = {"model": model}
    if pretrained is None or str(pretrained).lower() in ("random", "none"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = DinoVisionTransformer(arch)
            _init_like_dino(net)
        info.update(pretrained="random", weights=f"random (seed {seed})", comparable=False,
                    label="not comparable with published numbers (random DINO weights)")
        return net.to(device).eval(), info
    if str(pretrained).lower() != "dino":
        raise ConfigError(f"dino: pretrained must be 'dino' or 'random', got {pretrained!r}")
    if model != "dino_vitb16" and weights is None:
        raise ConfigError(f"dino: {model} needs an explicit weights file (only dino_vitb16 has a known file name)")
    found = find_weights(weights, weights_sha256)
    with torch.device("meta"):  # no init: every tensor comes from the file
        net = DinoVisionTransformer(arch)
    state = load_state_dict(found.path)
    check_dino_keys(net, state, str(found.path), model)
    net = net.to_empty(device="cpu")
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    info.update(pretrained="dino", weights=str(found.path), weights_sha256=found.sha256,
                weights_source=found.source, weights_pinned=found.pinned, comparable=model == "dino_vitb16")
    return net.to(device).eval(), info


def check_dino_keys(net: nn.Module, state: dict[str, torch.Tensor], source: str, model: str) -> None:
    """Refuse a checkpoint that is not `model`'s DINO backbone, naming the first wrong key."""
    training = any(k.startswith(("teacher", "student", "backbone.", "module.")) for k in state)
    check_state_dict(net.state_dict(), state, source, f"DINO {model} weights",
                     "A full DINO training checkpoint? Use the backbone file, e.g. dino_vitbase16_pretrain.pth"
                     if training else "")


def _init_like_dino(net: DinoVisionTransformer) -> None:
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".norm" in name or name.startswith("norm"):
                p.fill_(1.0)
            else:
                nn.init.trunc_normal_(p, std=0.02)


def vbench_dino_transform(frames: torch.Tensor, n_px: int = 224, *, antialias: bool = False) -> torch.Tensor:
    """VBench's `dino_transform(n_px)` on frames in [0, 255] (uint8 or float; [N, H, W, 3] or [N, 3, H, W]):
    float32 [N, 3, H', W'] with the short side n_px (no crop)."""
    x = frames_nchw_float(frames)
    h, w = x.shape[-2:]
    new_h, new_w = short_side_size(h, w, n_px)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=antialias)
    return normalize(x.div(255.0), IMAGENET_MEAN, IMAGENET_STD)

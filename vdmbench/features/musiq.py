"""MUSIQ (multi-scale image quality transformer), laid out as pyiqa's `MUSIQ` so pyiqa's checkpoints
(e.g. `musiq_spaq_ckpt-358bb6af.pth`, the one VBench's imaging_quality uses) load with strict=True.

Written here rather than depending on pyiqa: pyiqa 0.1.16 requires transformers>=5, accelerate,
datasets, bitsandbytes, facexlib, tensorboard and its own dev tools; VBench uses only this network.
What follows pyiqa (0.1.10, the version VBench pins; 0.1.16 computes the same) exactly:

- input [N, 3, H, W] in [0, 1], scaled to [-1, 1];
- multi-scale patches: the image resized (bicubic, align_corners=False, no antialias, aspect kept,
  longer side 224 and 384, sizes by Python's round) plus the original resolution; 32x32 patches
  with TF "SAME" zero padding, row-major; each scale's sequence padded with zero patches (mask 0)
  to ceil(L / 32)^2 tokens, the original resolution never padded or cut;
- hash-based 2D position: row and column indices mapped onto a 10x10 grid by torch's nearest
  interpolation, index = 10 * row_cell + col_cell; scale index 0, 1, 2 (224, 384, original);
- per patch: a weight-standardized conv (unbiased std, eps 1e-5, TF "SAME" padding) 7x7/2 ->
  GroupNorm(32, eps 1e-6) -> ReLU -> SAME max pool 3/2 (zero padding, after the ReLU) -> one
  ResNet bottleneck (GroupNorm eps 1e-4) -> flattened in HWC order -> linear token embedding;
- transformer: pre-norm blocks (LayerNorm eps 1e-6, attention logits of masked pairs set to -1e3,
  exact GELU), a class token, final LayerNorm; the head reads the class token (one output: MOS).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import WeightsError
from vdmbench.features.transformer_parts import Mlp
from vdmbench.features.weights import WeightSpec, check_state_dict

# pyiqa's release asset; VBench keeps the same file under its cache (vbench/utils.py init_submodules).
# No sha256 is published for it (pyiqa downloads without a hash check; the "358bb6af" in the name is
# not documented as a hash prefix), so it is not pinned: never downloaded automatically, its sha256
# is recorded with every result.
MUSIQ_SPAQ = WeightSpec(
    "musiq_spaq", "musiq_spaq_ckpt-358bb6af.pth",
    "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth",
    None, "MUSIQ trained on SPAQ (pyiqa's port of the official checkpoint), plain state dict",
    vbench_path="pyiqa_model/musiq_spaq_ckpt-358bb6af.pth",
)

RESNET_TOKEN_DIM = 64  # fixed in pyiqa's architecture (GroupNorm(32, ...) needs multiples of 32)


@dataclass(frozen=True)
class MusiqConfig:
    """The architecture; the defaults are pyiqa's MUSIQ defaults, which VBench uses unchanged."""

    patch_size: int = 32
    hidden_size: int = 384
    mlp_dim: int = 1152
    num_heads: int = 6
    num_layers: int = 14
    grid_size: int = 10  # hash-based spatial embedding grid (G x G)
    longer_side_lengths: tuple[int, ...] = (224, 384)
    # Patches of the original resolution: < 0 all of them, None none, else padded/cut to this many.
    max_seq_len_from_original_res: int | None = -1

    @property
    def num_scales(self) -> int:
        return len(self.longer_side_lengths) + (self.max_seq_len_from_original_res is not None)


# -- multi-scale patches ---------------------------------------------------------------------------

@dataclass
class Patches:
    """The tokens of a batch of images: pixels, hashed position, scale index and mask."""

    pixels: torch.Tensor  # [N, L, 3 * p * p], channel-major within a patch
    position: torch.Tensor  # int64 [N, L], in [0, G * G)
    scale: torch.Tensor  # int64 [N, L]
    mask: torch.Tensor  # bool [N, L]; False for padding tokens


def hashed_positions(grid_size: int, count_h: int, count_w: int) -> torch.Tensor:
    """int64 [count_h * count_w]: row-major patch index -> cell of the G x G grid.

    Torch's nearest interpolation of 0..G-1 to `count` values (float32 scale G / count, floored),
    as pyiqa computes it; for counts below 205 that equals floor(i * G / count)."""
    grid = torch.arange(grid_size, dtype=torch.float32).reshape(1, 1, grid_size)
    rows = F.interpolate(grid, size=count_h, mode="nearest").reshape(count_h, 1)
    cols = F.interpolate(grid, size=count_w, mode="nearest").reshape(1, count_w)
    return (rows * grid_size + cols).reshape(-1).long()


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one axis: the odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _patches_of(image: torch.Tensor, patch: int, grid: int, scale_id: int, max_len: int | None) -> Patches:
    n, h, w = image.shape[0], image.shape[-2], image.shape[-1]
    pad_h, pad_w = _same_pad(h, patch, patch), _same_pad(w, patch, patch)
    padded = F.pad(image, (*pad_w, *pad_h))
    pixels = F.unfold(padded, patch, stride=patch).transpose(1, 2)  # [N, L, c*p*p]
    count_h, count_w = math.ceil(h / patch), math.ceil(w / patch)
    position = hashed_positions(grid, count_h, count_w).to(image.device).expand(n, -1)
    length = pixels.shape[1]
    scale = torch.full((n, length), scale_id, dtype=torch.long, device=image.device)
    mask = torch.ones((n, length), dtype=torch.bool, device=image.device)
    if max_len is not None and max_len >= 0:  # pad with zero tokens (position 0, scale 0), then cut
        extra = max(max_len - length, 0)
        pixels = F.pad(pixels, (0, 0, 0, extra))[:, :max_len]
        position = F.pad(position, (0, extra))[:, :max_len]
        scale = F.pad(scale, (0, extra))[:, :max_len]
        mask = F.pad(mask, (0, extra))[:, :max_len]
    return Patches(pixels, position, scale, mask)


def resize_longer_side(image: torch.Tensor, longer: int) -> torch.Tensor:
    """Aspect-preserving bicubic resize so the longer side is `longer` (pyiqa: sizes by round())."""
    h, w = image.shape[-2:]
    ratio = longer / max(h, w)
    return F.interpolate(image, size=(round(h * ratio), round(w * ratio)), mode="bicubic", align_corners=False)


def multiscale_patches(image: torch.Tensor, config: MusiqConfig) -> Patches:
    """[N, 3, H, W] in [-1, 1] -> the tokens of every scale, concatenated (smaller scales first)."""
    p = config.patch_size
    parts = []
    for scale_id, longer in enumerate(sorted(config.longer_side_lengths)):
        max_len = int(math.ceil(longer / p) ** 2)
        parts.append(_patches_of(resize_longer_side(image, longer), p, config.grid_size, scale_id, max_len))
    if config.max_seq_len_from_original_res is not None:
        parts.append(_patches_of(image, p, config.grid_size, len(config.longer_side_lengths),
                                 config.max_seq_len_from_original_res))
    return Patches(*(torch.cat([getattr(q, f) for q in parts], dim=1)
                     for f in ("pixels", "position", "scale", "mask")))


# -- the network -----------------------------------------------------------------------------------

class StdConv(nn.Conv2d):
    """Weight-standardized conv (per output channel: minus mean, over unbiased std + 1e-5), SAME padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        x = F.pad(x, (*_same_pad(x.shape[-1], kw, sw), *_same_pad(x.shape[-2], kh, sh)))
        weight = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        weight = weight / (weight.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, weight, self.bias, self.stride)


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, outplanes: int) -> None:
        super().__init__()
        self.conv1 = StdConv(inplanes, inplanes, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, inplanes, eps=1e-4)
        self.conv2 = StdConv(inplanes, inplanes, 3, bias=False)
        self.gn2 = nn.GroupNorm(32, inplanes, eps=1e-4)
        self.conv3 = StdConv(inplanes, outplanes, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, outplanes, eps=1e-4)
        self.conv_proj = StdConv(inplanes, outplanes, 1, bias=False)
        self.gn_proj = nn.GroupNorm(32, outplanes, eps=1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.gn_proj(self.conv_proj(x))
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        return F.relu(self.gn3(self.conv3(x)) + identity)


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        logits = (q @ k.transpose(-2, -1)) * (c // self.num_heads) ** -0.5
        pair = mask[:, None, :, None] & mask[:, None, None, :]
        logits = logits.masked_fill(~pair, -1e3)  # pyiqa's value, not -inf: padded rows stay finite
        return self.out((logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, mlp_dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class HashPositionEmbedding(nn.Module):
    def __init__(self, grid_size: int, dim: int) -> None:
        super().__init__()
        self.position_emb = nn.Parameter(torch.zeros(1, grid_size * grid_size, dim))


class ScaleEmbedding(nn.Module):
    def __init__(self, num_scales: int, dim: int) -> None:
        super().__init__()
        self.scale_emb = nn.Parameter(torch.zeros(num_scales, dim))


class TransformerEncoder(nn.Module):
    def __init__(self, config: MusiqConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.posembed_input = HashPositionEmbedding(config.grid_size, d)
        self.scaleembed_input = ScaleEmbedding(config.num_scales, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.encoder_norm = nn.LayerNorm(d, eps=1e-6)
        self.transformer = nn.ModuleDict({
            f"encoderblock_{i}": TransformerBlock(d, config.mlp_dim, config.num_heads)
            for i in range(config.num_layers)
        })

    def forward(self, x: torch.Tensor, tokens: Patches) -> torch.Tensor:
        x = x + self.posembed_input.position_emb[0][tokens.position]
        x = x + self.scaleembed_input.scale_emb[tokens.scale]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        mask = torch.cat([torch.ones_like(tokens.mask[:, :1]), tokens.mask], dim=1)
        for block in self.transformer.values():
            x = block(x, mask)
        return self.encoder_norm(x)


class MUSIQ(nn.Module):
    """pyiqa's MUSIQ with one output (the SPAQ / KonIQ / PaQ-2-PiQ checkpoints): images -> MOS."""

    def __init__(self, config: MusiqConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MusiqConfig()
        if config.patch_size % 4:
            raise ValueError(f"MUSIQ: patch_size must be a multiple of 4, got {config.patch_size}")
        self.conv_root = StdConv(3, RESNET_TOKEN_DIM, 7, 2, bias=False)
        self.gn_root = nn.GroupNorm(32, RESNET_TOKEN_DIM, eps=1e-6)
        self.block1 = Bottleneck(RESNET_TOKEN_DIM, RESNET_TOKEN_DIM * 4)
        token = config.patch_size // 4
        self.embedding = nn.Linear(RESNET_TOKEN_DIM * 4 * token * token, config.hidden_size)
        self.transformer_encoder = TransformerEncoder(config)
        self.head = nn.Linear(config.hidden_size, 1)

    def _root_pool(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # before the zero padding, so zeros cannot win the max
        x = F.pad(x, (*_same_pad(x.shape[-1], 3, 2), *_same_pad(x.shape[-2], 3, 2)))
        return F.max_pool2d(x, 3, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float [N, 3, H, W] in [0, 1] -> MOS [N] (SPAQ: roughly 0..100, higher is better)."""
        tokens = multiscale_patches((images - 0.5) * 2, self.config)
        n, length, _ = tokens.pixels.shape
        p = self.config.patch_size
        x = tokens.pixels.reshape(n * length, 3, p, p)
        x = self.block1(self._root_pool(self.gn_root(self.conv_root(x))))
        x = x.permute(0, 2, 3, 1).reshape(n, length, -1)  # HWC order, as the TF original flattens
        x = self.transformer_encoder(self.embedding(x), tokens)
        return self.head(x[:, 0])[:, 0]


# -- weights ---------------------------------------------------------------------------------------

HEAD_DIM = 64  # MUSIQ's attention head width (384 / 6); how many heads a checkpoint has


def config_from_state(state: Mapping[str, torch.Tensor]) -> MusiqConfig:
    """The architecture a checkpoint holds: widths from its tensors' shapes, heads of width 64.

    pyiqa's published MUSIQ checkpoints all give MusiqConfig()'s defaults; narrower ones (tests)
    load the same way. Keys and shapes are then checked strictly against that architecture."""
    try:
        hidden = int(state["transformer_encoder.cls"].shape[-1])
        mlp = int(state["transformer_encoder.transformer.encoderblock_0.mlp.fc1.weight"].shape[0])
        grid = math.isqrt(int(state["transformer_encoder.posembed_input.position_emb"].shape[1]))
    except (KeyError, IndexError) as e:
        raise WeightsError(f"not a pyiqa MUSIQ checkpoint (no usable key {e}); expected e.g. "
                           f"{MUSIQ_SPAQ.filename} from {MUSIQ_SPAQ.url}") from None
    layers = 0
    while f"transformer_encoder.transformer.encoderblock_{layers}.norm1.weight" in state:
        layers += 1
    return MusiqConfig(hidden_size=hidden, mlp_dim=mlp, num_heads=max(1, hidden // HEAD_DIM),
                       num_layers=layers, grid_size=grid)


def load_musiq(state: Mapping[str, torch.Tensor], config: MusiqConfig | None = None,
               source: str = "checkpoint") -> MUSIQ:
    """A MUSIQ with `state` loaded strictly; pyiqa's DataParallel `module.` prefix is accepted.

    Without `config`, the architecture is read from the checkpoint (config_from_state)."""
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    try:
        model = MUSIQ(config or config_from_state(state))
    except WeightsError as e:
        raise WeightsError(f"{source}: {e}") from None
    check_state_dict(model.state_dict(), state, source, "a pyiqa MUSIQ checkpoint of this variant",
                     f"Expected e.g. {MUSIQ_SPAQ.filename} from {MUSIQ_SPAQ.url} (AVA's 10-class head is another variant)")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    return model.eval()


def random_musiq(seed: int, config: MusiqConfig | None = None) -> MUSIQ:
    """The same architecture with seeded random weights (offline tests; not comparable).

    Initialized like pyiqa: embeddings N(0, 0.02), the class token zero, torch's defaults elsewhere."""
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model = MUSIQ(config)
        enc = model.transformer_encoder
        nn.init.normal_(enc.posembed_input.position_emb, std=0.02)
        nn.init.normal_(enc.scaleembed_input.scale_emb, std=0.02)
    return model.eval()

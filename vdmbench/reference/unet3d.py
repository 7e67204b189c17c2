"""A 3D U-Net video denoiser in the style of Video Diffusion Models (Ho et al., 2022).

Read top to bottom: config, the space-time convolution, the residual block, the three attention
kinds, then the U-Net. Tensors are [B, C, T, H, W].

- Convolutions are factorized: a (1,3,3) spatial conv followed by a (3,1,1) temporal conv, which
  is cheaper than a full 3x3x3 kernel and lets the temporal part start as an identity.
- Spatial self-attention (within each frame) runs only at the lowest resolution, where it is
  affordable; cross-attention to the caption's tokens sits next to it.
- Temporal attention (each pixel attends over the frames) runs at the low-resolution level and
  the middle; it carries motion over distances the temporal convs cannot reach.
- Conditioning: timestep embedding + pooled caption -> per-block scale/shift (FiLM), and
  cross-attention to the caption's token features.
- The stem folds each 2x2 pixel patch into channels (space-to-depth) and the head unfolds it:
  the flat-colored shapes domain loses nothing, and every convolution runs on 4x fewer positions.
- Known frames (prediction/interpolation/i2v) enter as extra input channels: the model sees
  [noisy video (3), known frames or zeros (3), known-frame mask (1)] = 7 channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def zero_bias(layer: nn.Conv3d) -> None:
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@dataclass
class UNet3DConfig:
    in_channels: int = 7
    out_channels: int = 3
    patch: int = 2  # pixels per side folded into channels at the stem (space-to-depth)
    channels: tuple[int, ...] = (48, 96)  # per resolution level; each level halves H and W
    temporal_attention: tuple[bool, ...] = (False, True)  # full-res motion: the temporal convs
    spatial_attention: tuple[bool, ...] = (False, True)  # self + cross attention
    text_dim: int = 64
    emb_dim: int = 128
    heads: int = 4
    max_frames: int = 32
    groups: int = 8


def space_to_depth(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, C*p*p, T, H/p, W/p]."""
    b, c, t, h, w = x.shape
    x = x.view(b, c, t, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 3, 5)
    return x.reshape(b, c * p * p, t, h // p, w // p)


def depth_to_space(x: torch.Tensor, p: int) -> torch.Tensor:
    """Inverse of space_to_depth."""
    b, cpp, t, h, w = x.shape
    c = cpp // (p * p)
    x = x.view(b, c, p, p, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)
    return x.reshape(b, c, t, h * p, w * p)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the (continuous) diffusion timestep, [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SpaceTimeConv(nn.Module):
    """(1,3,3) spatial conv then (3,1,1) temporal conv; the temporal one starts as identity."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(cin, cout, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0))
        nn.init.dirac_(self.temporal.weight)  # identity at init: training starts from a per-frame model
        zero_bias(self.temporal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.spatial(x))


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = SpaceTimeConv(cin, cout)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = SpaceTimeConv(cout, cout)
        nn.init.zeros_(self.conv2.spatial.weight)  # each block starts as its skip path
        zero_bias(self.conv2.spatial)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head attention over token sequences [N, L, C], optionally to a context [N, S, Cc]."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)  # residual branch starts closed
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        ctx = h if context is None else context
        n, length, c = h.shape
        q = self.q(h).view(n, length, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).view(n, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = None if context_mask is None else context_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return x + self.out(y.transpose(1, 2).reshape(n, length, c))


class SpatialAttention(nn.Module):
    """Self-attention within each frame, then cross-attention from each pixel to the caption."""

    def __init__(self, dim: int, heads: int, text_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads, context_dim=text_dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        b, c, t, hh, ww = x.shape
        seq = x.permute(0, 2, 3, 4, 1).reshape(b * t, hh * ww, c)
        seq = self.self_attn(seq)
        ctx = text.repeat_interleave(t, dim=0)
        seq = self.cross_attn(seq, ctx, text_mask.repeat_interleave(t, dim=0))
        return seq.view(b, t, hh, ww, c).permute(0, 4, 1, 2, 3)


class TemporalAttention(nn.Module):
    """Each spatial position attends over the frames; learned frame-position embedding."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(max_frames, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.attn = Attention(dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, hh, ww = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(b * hh * ww, t, c)
        seq = self.attn(seq + self.pos[:t])
        return seq.view(b, hh, ww, t, c).permute(0, 4, 3, 1, 2)


class Level(nn.Module):
    """One resolution level: a residual block and the attention this level is configured with."""

    def __init__(self, cin: int, cout: int, cfg: UNet3DConfig, spatial: bool, temporal: bool) -> None:
        super().__init__()
        self.res = ResBlock(cin, cout, cfg.emb_dim, cfg.groups)
        self.spatial = SpatialAttention(cout, cfg.heads, cfg.text_dim) if spatial else None
        self.temporal = TemporalAttention(cout, cfg.heads, cfg.max_frames) if temporal else None

    def forward(self, x, emb, text, text_mask):
        x = self.res(x, emb)
        if self.spatial is not None:
            x = self.spatial(x, text, text_mask)
        if self.temporal is not None:
            x = self.temporal(x)
        return x


class UNet3D(nn.Module):
    def __init__(self, cfg: UNet3DConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], cfg.emb_dim), nn.SiLU(), nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.text_proj = nn.Linear(cfg.text_dim, cfg.emb_dim)
        self.stem = nn.Conv3d(cfg.in_channels * cfg.patch**2, ch[0], (1, 3, 3), padding=(0, 1, 1))
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.down.append(Level(prev, c, cfg, cfg.spatial_attention[i], cfg.temporal_attention[i]))
            prev = c
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv3d(c, c, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.mid = Level(prev, prev, cfg, True, True)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.up.append(Level(prev + ch[i], ch[i], cfg, cfg.spatial_attention[i], cfg.temporal_attention[i]))
            prev = ch[i]
            if i > 0:
                self.upsample.append(nn.Conv3d(ch[i], ch[i - 1], (1, 3, 3), padding=(0, 1, 1)))
                prev = ch[i - 1]
        self.norm_out = nn.GroupNorm(cfg.groups, prev)
        self.head = nn.Conv3d(prev, cfg.out_channels * cfg.patch**2, (1, 3, 3), padding=(0, 1, 1))
        nn.init.zeros_(self.head.weight)
        zero_bias(self.head)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                text_pooled: torch.Tensor) -> torch.Tensor:
        """x [B, in_channels, T, H, W], t [B] -> prediction [B, out_channels, T, H, W]."""
        mult = self.cfg.patch * 2 ** (len(self.cfg.channels) - 1)
        if x.shape[-1] % mult or x.shape[-2] % mult:
            raise ValueError(f"height and width must be multiples of {mult}, got {tuple(x.shape[-2:])}")
        emb = self.time_mlp(timestep_embedding(t, self.cfg.channels[0])) + self.text_proj(text_pooled)
        h = self.stem(space_to_depth(x, self.cfg.patch))
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, emb, text, text_mask)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb, text, text_mask)
        for j, level in enumerate(self.up):
            h = level(torch.cat([h, skips.pop()], dim=1), emb, text, text_mask)
            if j < len(self.upsample):
                h = F.interpolate(h, scale_factor=(1, 2, 2), mode="nearest")
                h = self.upsample[j](h)
        return depth_to_space(self.head(F.silu(self.norm_out(h))), self.cfg.patch)

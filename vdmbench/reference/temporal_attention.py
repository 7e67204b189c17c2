"""An image U-Net made into a video model by temporal attention modules (AnimateDiff-style).

Read top to bottom: config, the 2D residual block, spatial attention, the temporal module, the
U-Net. The spatial part is a plain 2D U-Net run on every frame independently (frames folded into
the batch). After each of its blocks a temporal module lets every pixel attend over the frames;
the module's output projection is zero-initialized, so at initialization the network is exactly
the image model, and motion is learned as a residual on top of it. That is what makes the design
attractive in practice: a pretrained image model can be extended without disturbing it.

Interface and conditioning are the same as unet3d.py: x [B, C, T, H, W], timestep + pooled
caption -> FiLM, cross-attention to the caption's tokens at low resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# The attention block and timestep features are the 3D U-Net's, shared rather than copied.
from vdmbench.reference.unet3d import Attention, timestep_embedding


def zero_init(layer: nn.Conv2d) -> None:
    """Zero weights and bias: a residual branch that starts as the identity."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@dataclass
class TAUNetConfig:
    in_channels: int = 7
    out_channels: int = 3
    patch: int = 2  # pixels per side folded into channels at the stem (space-to-depth)
    channels: tuple[int, ...] = (48, 96)
    spatial_attention: tuple[bool, ...] = (False, True)
    temporal_modules: tuple[bool, ...] = (True, True)  # a temporal module after each block
    text_dim: int = 64
    emb_dim: int = 128
    heads: int = 4
    max_frames: int = 32
    groups: int = 8


class ResBlock2D(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        zero_init(self.conv2)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] (N = B*T), emb [N, E]."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Within-frame self-attention + cross-attention to the caption, on [N, C, H, W]."""

    def __init__(self, dim: int, heads: int, text_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads, context_dim=text_dim)

    def forward(self, x, text, text_mask):
        n, c, hh, ww = x.shape
        seq = x.flatten(2).transpose(1, 2)
        seq = self.cross_attn(self.self_attn(seq), text, text_mask)
        return seq.transpose(1, 2).reshape(n, c, hh, ww)


class TemporalModule(nn.Module):
    """The motion module: per pixel, attention over frames with sinusoidal frame positions.
    Its output projection is zero-initialized (inside Attention): an identity at init."""

    def __init__(self, dim: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.pos: torch.Tensor
        self.register_buffer("pos", timestep_embedding(torch.arange(max_frames), dim), persistent=False)
        self.attn = Attention(dim, heads)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        n, c, hh, ww = x.shape
        b = n // frames
        seq = x.view(b, frames, c, hh, ww).permute(0, 3, 4, 1, 2).reshape(b * hh * ww, frames, c)
        seq = self.attn(seq + self.pos[:frames])
        return seq.view(b, hh, ww, frames, c).permute(0, 3, 4, 1, 2).reshape(n, c, hh, ww)


class Block(nn.Module):
    """Spatial block (ResBlock2D [+ attention]) followed by its temporal module."""

    def __init__(self, cin, cout, cfg: TAUNetConfig, spatial: bool, temporal: bool) -> None:
        super().__init__()
        self.res = ResBlock2D(cin, cout, cfg.emb_dim, cfg.groups)
        self.spatial = SpatialAttention(cout, cfg.heads, cfg.text_dim) if spatial else None
        self.temporal = TemporalModule(cout, cfg.heads, cfg.max_frames) if temporal else None

    def forward(self, x, emb, text, text_mask, frames):
        x = self.res(x, emb)
        if self.spatial is not None:
            x = self.spatial(x, text, text_mask)
        if self.temporal is not None:
            x = self.temporal(x, frames)
        return x


class TemporalAttentionUNet(nn.Module):
    def __init__(self, cfg: TAUNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], cfg.emb_dim), nn.SiLU(), nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.text_proj = nn.Linear(cfg.text_dim, cfg.emb_dim)
        self.stem = nn.Conv2d(cfg.in_channels * cfg.patch**2, ch[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.down.append(Block(prev, c, cfg, cfg.spatial_attention[i], cfg.temporal_modules[i]))
            prev = c
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = Block(prev, prev, cfg, True, True)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.up.append(Block(prev + ch[i], ch[i], cfg, cfg.spatial_attention[i], cfg.temporal_modules[i]))
            prev = ch[i]
            if i > 0:
                self.upsample.append(nn.Conv2d(ch[i], ch[i - 1], 3, padding=1))
                prev = ch[i - 1]
        self.norm_out = nn.GroupNorm(cfg.groups, prev)
        self.head = nn.Conv2d(prev, cfg.out_channels * cfg.patch**2, 3, padding=1)
        zero_init(self.head)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                text_pooled: torch.Tensor) -> torch.Tensor:
        """x [B, in_channels, T, H, W], t [B] -> [B, out_channels, T, H, W]."""
        b, _, frames, hh, ww = x.shape
        p = self.cfg.patch
        mult = p * 2 ** (len(self.cfg.channels) - 1)
        if hh % mult or ww % mult:
            raise ValueError(f"height and width must be multiples of {mult}, got {(hh, ww)}")
        emb = self.time_mlp(timestep_embedding(t, self.cfg.channels[0])) + self.text_proj(text_pooled)
        # Fold frames into the batch: every per-frame input is repeated T times.
        emb = emb.repeat_interleave(frames, dim=0)
        text = text.repeat_interleave(frames, dim=0)
        text_mask = text_mask.repeat_interleave(frames, dim=0)
        h = self.stem(F.pixel_unshuffle(x.permute(0, 2, 1, 3, 4).reshape(b * frames, -1, hh, ww), p))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb, text, text_mask, frames)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb, text, text_mask, frames)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb, text, text_mask, frames)
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2, mode="nearest"))
        out = F.pixel_shuffle(self.head(F.silu(self.norm_out(h))), p)
        return out.view(b, frames, -1, hh, ww).permute(0, 2, 1, 3, 4)

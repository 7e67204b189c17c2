"""RAFT (Teed & Deng, 2020) exactly as princeton-vl/RAFT defines it, as VBench runs it.

VBench's dynamic_degree and its static-video filter use the original RAFT code
(vbench/third_party/RAFT) with `raft-things.pth`, small=False, mixed_precision=False,
alternate_corr=False, 20 refinement iterations in test mode, frames as float [0, 255] padded by
`InputPadder` (sintel mode: replicate padding split between both sides up to a multiple of 8).
This module is that network written out again, with the same module and parameter names so
the published checkpoint loads strictly (after removing DataParallel's `module.` prefix):

- feature encoder `fnet` (instance norm, 256 channels) and context encoder `cnet` (batch norm,
  128 hidden + 128 context channels), each a 7x7 stride-2 conv and three stages of two residual
  blocks (64, 96, 128 channels; stages 2 and 3 stride 2), then a 1x1 conv: features at 1/8;
- an all-pairs correlation volume, averaged into a 4-level pyramid, sampled in a 9x9 window
  (radius 4) around the current estimate with bilinear `grid_sample` (align_corners=True);
- the update block: motion encoder, separable ConvGRU (1x5 then 5x1), flow head and the mask head
  for convex 8x upsampling.

Why not torchvision's raft_large: its modules and key names differ, so the checkpoint would need
a key mapping plus a proof that both forwards agree; the original architecture is short enough
to keep as the reference itself.

Precision: float32 on every device (VBench's setting: mixed_precision=False). On CUDA, PyTorch's
default lets cuDNN run float32 convolutions in TF32 (10-bit mantissa) on Ampere and newer GPUs,
which VBench-on-GPU inherits. vdmbench turns TF32 off around its RAFT calls by default (so a GPU
gives the CPU's numbers up to float32 rounding); `vbench_gpu_compat=True` leaves PyTorch's
default on, as VBench runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vdmbench.core.errors import MetricInputError
from vdmbench.features.weights import WeightSpec, check_state_dict, load_state_dict, resolve

# VBench downloads models.zip (princeton-vl's release) and extracts models/raft-things.pth into
# its cache (vbench/utils.py init_submodules; vbench/core/dynamic_degree.py). No sha256 of the
# file is published by RAFT's authors or VBench, so it is not pinned: never downloaded
# automatically; a local copy is accepted and its sha256 recorded with every result.
RAFT_THINGS = WeightSpec(
    name="raft-things",
    filename="raft-things.pth",
    url="https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip",
    sha256=None,
    description="RAFT (princeton-vl) trained on FlyingChairs+FlyingThings3D; extract models/raft-things.pth "
                "from the zip",
    vbench_path="raft_model/models/raft-things.pth",
)

ITERS = 20  # VBench: self.model(image1, image2, iters=20, test_mode=True)
CORR_LEVELS = 4
CORR_RADIUS = 4
HIDDEN_DIM = 128
CONTEXT_DIM = 128
# The correlation pyramid halves the 1/8-resolution map three times, and the lookup divides by
# (side - 1) of each level: a 1-pixel coarsest level gives NaN flows (in RAFT's code too), so
# padded frames need at least 8 * 2 * 2**3 = 128 pixels on each side.
MIN_PADDED_SIDE = 8 * 2 * 2 ** (CORR_LEVELS - 1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)  # affine=False: no parameters, as in RAFT
    if kind == "none":
        return nn.Sequential()
    raise ValueError(f"unknown norm {kind!r}")


class ResidualBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, norm_fn: str, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm_fn, planes)
        self.norm2 = _norm(norm_fn, planes)
        self.downsample: nn.Module | None = None
        if stride != 1:
            # RAFT registers the shortcut's norm twice (as norm3 and inside downsample), so the
            # checkpoint holds both key names for the same tensors.
            self.norm3 = _norm(norm_fn, planes)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class BasicEncoder(nn.Module):
    def __init__(self, output_dim: int, norm_fn: str) -> None:
        super().__init__()
        self.norm1 = _norm(norm_fn, 64)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.relu1 = nn.ReLU(inplace=True)
        stages = []
        in_planes = 64
        for dim, stride in ((64, 1), (96, 2), (128, 2)):
            stages.append(nn.Sequential(ResidualBlock(in_planes, dim, norm_fn, stride),
                                        ResidualBlock(dim, dim, norm_fn, 1)))
            in_planes = dim
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(128, output_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.conv2(x)


class FlowHead(nn.Module):
    def __init__(self, input_dim: int = 128, hidden_dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x)))


class SepConvGRU(nn.Module):
    """A ConvGRU step along rows (1x5 kernels), then one along columns (5x1)."""

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        c = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))

    @staticmethod
    def _step(h: torch.Tensor, x: torch.Tensor, convz: nn.Module, convr: nn.Module, convq: nn.Module) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self._step(h, x, self.convz1, self.convr1, self.convq1)
        return self._step(h, x, self.convz2, self.convr2, self.convq2)


class BasicMotionEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cor_planes = CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2
        self.convc1 = nn.Conv2d(cor_planes, 256, 1, padding=0)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        cor = F.relu(self.convc2(F.relu(self.convc1(corr))))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class BasicUpdateBlock(nn.Module):
    def __init__(self, hidden_dim: int = HIDDEN_DIM) -> None:
        super().__init__()
        self.encoder = BasicMotionEncoder()
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=128 + hidden_dim)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(256, 64 * 9, 1, padding=0))

    def forward(self, net: torch.Tensor, inp: torch.Tensor, corr: torch.Tensor, flow: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        delta_flow = self.flow_head(net)
        mask = 0.25 * self.mask(net)  # RAFT scales the mask logits by 1/4
        return net, mask, delta_flow


def coords_grid(batch: int, ht: int, wd: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates [B, 2, ht, wd], channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(torch.arange(ht, device=like.device), torch.arange(wd, device=like.device),
                            indexing="ij")
    return torch.stack([xs, ys], dim=0).to(like.dtype)[None].repeat(batch, 1, 1, 1)


def bilinear_sampler(img: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """grid_sample at pixel coordinates (x, y) in the last dimension (align_corners=True, zeros outside)."""
    h, w = img.shape[-2:]
    x, y = coords.split([1, 1], dim=-1)
    grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
    return F.grid_sample(img, grid, align_corners=True)


class CorrBlock:
    """All-pairs correlation pyramid and its windowed lookup (RAFT's CorrBlock)."""

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, num_levels: int = CORR_LEVELS,
                 radius: int = CORR_RADIUS) -> None:
        self.num_levels, self.radius = num_levels, radius
        b, dim, h, w = fmap1.shape
        corr = torch.matmul(fmap1.view(b, dim, h * w).transpose(1, 2), fmap2.view(b, dim, h * w))
        corr = corr.view(b * h * w, 1, h, w) / torch.sqrt(torch.tensor(dim, dtype=fmap1.dtype))
        self.pyramid = [corr]
        for _ in range(num_levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.pyramid.append(corr)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        r = self.radius
        coords = coords.permute(0, 2, 3, 1)
        b, h1, w1, _ = coords.shape
        offsets = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
        # RAFT stacks meshgrid(dy, dx) as (first axis, second axis) and adds it to (x, y): the
        # window's first axis moves x. The trained weights expect this channel order.
        a, c = torch.meshgrid(offsets, offsets, indexing="ij")
        delta = torch.stack([a, c], dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        out = []
        for i, corr in enumerate(self.pyramid):
            centroid = coords.reshape(b * h1 * w1, 1, 1, 2) / 2 ** i
            out.append(bilinear_sampler(corr, centroid + delta).view(b, h1, w1, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()


class RAFT(nn.Module):
    """RAFT large (small=False) with princeton-vl's parameter names."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_dim, self.context_dim = HIDDEN_DIM, CONTEXT_DIM
        self.fnet = BasicEncoder(output_dim=256, norm_fn="instance")
        self.cnet = BasicEncoder(output_dim=HIDDEN_DIM + CONTEXT_DIM, norm_fn="batch")
        self.update_block = BasicUpdateBlock(hidden_dim=HIDDEN_DIM)

    @staticmethod
    def upsample_flow(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, 2, H/8, W/8] -> [B, 2, H, W]: each fine pixel a convex combination of 3x3 coarse ones."""
        n, _, h, w = flow.shape
        mask = torch.softmax(mask.view(n, 1, 9, 8, 8, h, w), dim=2)
        up = F.unfold(8 * flow, (3, 3), padding=1).view(n, 2, 9, 1, 1, h, w)
        up = torch.sum(mask * up, dim=2).permute(0, 1, 4, 2, 5, 3)
        return up.reshape(n, 2, 8 * h, 8 * w)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int = ITERS) -> torch.Tensor:
        """Frames float [B, 3, H, W] in [0, 255], H and W multiples of 8 -> flow [B, 2, H, W]
        (the test-mode `flow_up` of the last iteration)."""
        image1 = (2 * (image1 / 255.0) - 1.0).contiguous()
        image2 = (2 * (image2 / 255.0) - 1.0).contiguous()
        fmap1, fmap2 = self.fnet(torch.cat([image1, image2], dim=0)).split(image1.shape[0], dim=0)
        # RAFT casts the features to float32 (for mixed precision); float64 stays float64 (tests).
        wide = torch.promote_types(fmap1.dtype, torch.float32)
        corr_fn = CorrBlock(fmap1.to(wide), fmap2.to(wide))
        net, inp = torch.split(self.cnet(image1), [self.hidden_dim, self.context_dim], dim=1)
        net, inp = torch.tanh(net), torch.relu(inp)
        b, _, h, w = image1.shape
        coords0 = coords_grid(b, h // 8, w // 8, image1)
        coords1 = coords_grid(b, h // 8, w // 8, image1)
        mask = torch.zeros(())
        for _ in range(iters):
            corr = corr_fn(coords1)
            net, mask, delta_flow = self.update_block(net, inp, corr, coords1 - coords0)
            coords1 = coords1 + delta_flow
        # Only the last iteration's upsampled flow is returned in test mode; upsampling the
        # earlier ones (as RAFT does) changes nothing.
        return self.upsample_flow(coords1 - coords0, mask)


def input_padding(height: int, width: int) -> tuple[int, int, int, int]:
    """InputPadder's sintel-mode padding (left, right, top, bottom) up to multiples of 8."""
    pad_h = (((height // 8) + 1) * 8 - height) % 8
    pad_w = (((width // 8) + 1) * 8 - width) % 8
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def padded_size(height: int, width: int) -> tuple[int, int]:
    left, right, top, bottom = input_padding(height, width)
    return height + top + bottom, width + left + right


def check_raft_size(height: int, width: int, metric: str) -> None:
    """A one-line error for frames RAFT's 4-level correlation pyramid cannot take."""
    ph, pw = padded_size(height, width)
    if min(ph, pw) < MIN_PADDED_SIDE:
        raise MetricInputError(
            f"{metric}: RAFT needs frames of at least {MIN_PADDED_SIDE - 7} pixels on each side "
            f"(padded to {MIN_PADDED_SIDE}), got {height}x{width}"
        )


def strip_dataparallel(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """raft-things.pth was saved from nn.DataParallel: keys start with `module.`."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_raft(state: dict[str, torch.Tensor], source: str) -> RAFT:
    """A RAFT in eval mode with `state` loaded strictly; a missing or unexpected key is a WeightsError."""
    model = RAFT()
    state = strip_dataparallel(state)
    check_state_dict(model.state_dict(), state, source, "RAFT raft-things weights",
                     "Use raft-things.pth from princeton-vl's models.zip")
    model.load_state_dict(state, strict=True)
    return model.eval()


@dataclass
class VBenchRaft:
    """RAFT as VBench calls it, lent to dynamic_degree and the static filter through SharedWork."""

    model: RAFT
    device: str
    info: dict[str, Any] = field(default_factory=dict)
    pair_batch: int = 8  # pairs per forward; VBench runs one pair at a time (changes only low bits)
    vbench_gpu_compat: bool = False  # keep cuDNN's TF32 default on CUDA, as VBench-on-GPU does

    @torch.no_grad()
    def flows(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """uint8 [P, H, W, 3] frame pairs -> RAFT flows float32 [P, 2, H', W'] at the padded size
        H' x W' (VBench measures the flow on the padded frame, not cropped back)."""
        h, w = int(first.shape[1]), int(first.shape[2])
        pad = input_padding(h, w)
        out = []
        for start in range(0, int(first.shape[0]), max(1, self.pair_batch)):
            a = first[start:start + self.pair_batch].permute(0, 3, 1, 2).float().to(self.device)
            b = second[start:start + self.pair_batch].permute(0, 3, 1, 2).float().to(self.device)
            a = F.pad(a, list(pad), mode="replicate")
            b = F.pad(b, list(pad), mode="replicate")
            with precision_flags(self.device, self.vbench_gpu_compat):
                out.append(self.model(a, b).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 2, *padded_size(h, w)))


def precision_flags(device: str, vbench_gpu_compat: bool) -> contextlib.AbstractContextManager[Any]:
    """cuDNN without TF32 around a CUDA forward (full float32, as on a CPU), unless VBench's GPU
    behaviour is asked for; nothing to change elsewhere."""
    if vbench_gpu_compat or torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    c = torch.backends.cudnn
    return c.flags(enabled=c.enabled, benchmark=c.benchmark, benchmark_limit=c.benchmark_limit,
                   deterministic=c.deterministic, allow_tf32=False)


def build_vbench_raft(*, weights: str | None, weights_sha256: str | None, pretrained: str | None, device: str,
                      seed: int, pair_batch: int = 8, vbench_gpu_compat: bool = False) -> VBenchRaft:
    """VBench's RAFT: raft-things.pth through the resolver, or seeded random weights when asked for."""
    if pretrained is not None and str(pretrained).lower() in ("random", "none"):
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(seed)
            model = RAFT().eval()
        info: dict[str, Any] = {"flow": "raft-original", "weights": f"random (seed {seed})", "pretrained": "random"}
    elif pretrained in (None, "vbench", "raft-things"):
        r = resolve(RAFT_THINGS, weights, sha256=weights_sha256)
        model = load_raft(load_state_dict(r.path), str(r.path))
        info = {"flow": "raft-original", "weights": str(r.path), "weights_sha256": r.sha256,
                "weights_source": r.source, "weights_pinned": r.pinned, "pretrained": "raft-things"}
    else:
        from vdmbench.core.errors import ConfigError

        raise ConfigError(f"pretrained must be 'raft-things' (VBench's weights) or 'random', got {pretrained!r}")
    info.update(iters=ITERS, padding="InputPadder sintel (replicate)",
                precision="fp32 (cuDNN TF32 as PyTorch's default)" if vbench_gpu_compat else "fp32",
                vbench_gpu_compat=vbench_gpu_compat)
    return VBenchRaft(model.to(device), device, info, pair_batch, vbench_gpu_compat)

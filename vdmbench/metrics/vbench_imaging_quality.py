"""VBench's imaging_quality: MUSIQ (SPAQ checkpoint) on every frame, as vbench/imaging_quality.py does.

Per video (VBench's `technical_quality`): all decoded frames, no sampling; each frame as float32
[3, H, W] in 0..255 is resized when it is too large (preprocessing mode "longer", VBench's
default: if max(H, W) > 512, bilinear, antialias off, to (int(s * H), int(s * W)) with
s = 512 / max(H, W) in Python floats, so a 561-pixel side becomes 511), divided by 255 and
scored by pyiqa's MUSIQ; the video's value is the mean of its frames' scores. VBench's dimension
score is the plain mean over videos divided by 100 (not weighted by frames), so:

- `imaging_quality` = the video's mean frame score / 100 (its mean over a run is VBench's
  imaging_quality before the normalization of scripts/constant.py, whose range is 0..1);
- `imaging_quality_musiq` = the same on MUSIQ's own scale: the per-video value VBench writes
  in its results file.

Options: `preprocessing_mode` (VBench's imaging_quality_preprocessing_mode: longer | shorter |
shorter_centercrop | None); `resize_antialias` (VBench pins torchvision < 0.16 and later passes
antialias=False; true reproduces its vbench/imaging_quality.py run on torchvision >= 0.17, where
the tensor resize antialiases by default); `weights` / `weights_sha256`; `pretrained: random`
(seeded random weights, not comparable); `vbench_gpu_compat` (CUDA only: torch's default cuDNN
settings, under which VBench runs and its convolutions use TF32 on Ampere and newer GPUs; off, the
default, convolutions and matmuls stay in full float32, so a GPU gives the CPU's numbers up to
float rounding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric
from vdmbench.metrics.random_weights import RandomWeightsMark

PREPROCESSING_MODES = ("longer", "shorter", "shorter_centercrop", "None")
MAX_SIDE = 512  # VBench's limit for the side its mode names


def vbench_resize_size(h: int, w: int, mode: str) -> tuple[int, int] | None:
    """The size VBench resizes an H x W frame to, or None when it keeps it (Python float rules)."""
    side = max(h, w) if mode == "longer" else min(h, w) if mode.startswith("shorter") else 0
    if side <= MAX_SIDE:
        return None
    scale = 512.0 / side
    return int(scale * h), int(scale * w)


def vbench_preprocess(frames: torch.Tensor, mode: str = "longer", antialias: bool = False) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H', W'] in [0, 1], as VBench's `transform`."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)  # VBench: torch.Tensor(uint8 array), 0..255
    size = vbench_resize_size(x.shape[-2], x.shape[-1], mode)
    if size is not None:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)
        if mode == "shorter_centercrop":
            x = _center_crop(x, MAX_SIDE)
    return x / 255.0


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's CenterCrop(size) on a tensor: zero padding first where a side is short (the
    shorter side can come out at 511, see vbench_resize_size), then offsets by round()."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        pad_w, pad_h = max(size - w, 0), max(size - h, 0)
        x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def _musiq_builder(weights: str | None, sha256: str | None, pretrained: str, seed: int, device: str
                   ) -> tuple[Any, dict[str, Any]]:
    from vdmbench.features.musiq import MUSIQ_SPAQ, load_musiq, random_musiq
    from vdmbench.features.weights import load_state_dict, resolve

    if pretrained == "random":
        return random_musiq(seed).to(device), {"weights": f"random (seed {seed})"}
    found = resolve(MUSIQ_SPAQ, weights, sha256=sha256)
    model = load_musiq(load_state_dict(found.path), source=str(found.path))
    return model.to(device), {"weights": str(found.path), "weights_sha256": found.sha256,
                              "weights_source": found.source}


class ImagingQuality(RandomWeightsMark, PerSampleMetric):
    network = "MUSIQ"
    name = "imaging_quality"
    outputs = (
        Output("imaging_quality", higher_is_better=True, range=None,
               description="VBench imaging_quality: mean MUSIQ-SPAQ score of all frames / 100 (about 0..1)"),
        Output("imaging_quality_musiq", higher_is_better=True, range=None,
               description="mean MUSIQ-SPAQ score of all frames, MUSIQ's own scale (about 0..100)"),
    )

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str = "spaq",
                 preprocessing_mode: str = "longer", resize_antialias: bool = False,
                 vbench_gpu_compat: bool = False, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        if pretrained not in ("spaq", "random"):
            raise ConfigError(f"imaging_quality: pretrained must be 'spaq' or 'random', got {pretrained!r}")
        if preprocessing_mode not in PREPROCESSING_MODES:
            raise ConfigError(f"imaging_quality: preprocessing_mode must be one of {', '.join(PREPROCESSING_MODES)}, "
                              f"got {preprocessing_mode!r}")
        ctx = self.context
        weights = weights or ctx.weights_path.get("musiq_spaq")
        key = ("musiq", pretrained, weights, weights_sha256, ctx.seed if pretrained == "random" else None, ctx.device)
        self.model, info = ctx.shared.model(
            key, lambda: _musiq_builder(weights, weights_sha256, pretrained, ctx.seed, ctx.device))
        self.mode, self.antialias, self.gpu_compat = preprocessing_mode, bool(resize_antialias), bool(vbench_gpu_compat)
        self.info = {"model": "MUSIQ (pyiqa layout)", "pretrained": pretrained, **info,
                     "preprocessing_mode": preprocessing_mode, "resize_antialias": self.antialias,
                     "vbench_gpu_compat": self.gpu_compat, "frames": "all"}

    @contextlib.contextmanager
    def _numerics(self) -> Iterator[None]:
        """On CUDA: full float32 (no TF32 in convolutions or matmuls, deterministic convolution
        algorithms) unless VBench's own settings are asked for, i.e. torch's defaults, under which
        cuDNN convolutions run in TF32 on Ampere and newer GPUs. The CPU has no such switch."""
        if torch.device(self.context.device).type != "cuda":
            yield
            return
        if self.gpu_compat:
            with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True):
                yield
            return
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")  # restored below: another library may lower it
        try:
            with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
                yield
        finally:
            torch.set_float32_matmul_precision(precision)

    @torch.no_grad()
    def frame_scores(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> MUSIQ score of every frame, float64 [B, T]."""
        b, t = videos.shape[:2]
        frames = videos.reshape(b * t, *videos.shape[2:])
        out = []
        with self._numerics():
            for chunk in frames.split(max(1, self.context.batch_size)):
                x = vbench_preprocess(chunk, self.mode, self.antialias).to(self.context.device)
                out.append(self.model(x).to("cpu", torch.float64))
        return torch.cat(out).reshape(b, t)

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        musiq = self.frame_scores(videos).mean(dim=1)
        return {"imaging_quality": musiq / 100.0, "imaging_quality_musiq": musiq}


METRICS = [ImagingQuality]

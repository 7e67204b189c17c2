"""VBench's motion_smoothness: how well AMT-S frame interpolation predicts the frames it drops.

Procedure of VBench's `vbench/motion_smoothness.py`, per clip (all decoded frames, RGB uint8):
1. keep the even frames 0, 2, 4, ... (no resampling by fps);
2. interpolate one frame halfway (embt 0.5) between each consecutive pair of them with AMT-S:
   float32 /255, replicate padding to multiples of int(16/scale), unpadding, x*255 clipped to
   [0, 255] and truncated to uint8 (`vdmbench.features.amt.interpolate_midframes`);
3. compare the k-th interpolated frame with the real odd frame 2k+1 (an even-length clip's last
   frame has no partner and is ignored): mean absolute difference over pixels and channels;
4. motion_smoothness = (255 - mean over the interpolated frames of that difference) / 255.
The run value is the plain mean over clips (VBench: np.mean of the per-video values; no frame
weighting). VBench's total score then normalizes it with Min 0.706 / Max 0.9975
(scripts/constant.py), which vdmbench's VBench aggregation applies, not this metric.

Scale (see features/amt.py): default a fixed 1.0, which is what VBench computes on CPU and
through its own launchers on GPU (they pass torch.device("cuda"), which takes VBench's CPU
branch). `vbench_gpu_compat: true` reproduces VBench called with the string "cuda": the
downscale factor from the GPU's total memory (`gpu_memory_gb`, GiB, or read from the CUDA
device the run uses). `scale: <float>` fixes another factor (16/k, k >= 16 an integer).

Clips need at least 3 frames (two kept frames) and, at scale 1, sides over 112 pixels: on
fewer frames VBench fails an assert, on smaller frames it crashes (avg_pool2d) or makes NaN
frames (a one-pixel correlation level; see features/amt.py), so vdmbench refuses them. Options `weights:` (explicit amt-s.pth),
`weights_sha256:`, `pretrained: random` (seeded by the run's seed; not comparable), `pair_batch:`
frame pairs per network call (default 1, as VBench: its frames bit for bit on CPU; larger is
faster on a GPU and changes only float rounding, about 4e-7 in the score as measured on CPU).
"""

from __future__ import annotations

from typing import Any

import torch

from vdmbench.core.errors import ConfigError
from vdmbench.features.amt import build_amt_s, check_size, interpolate_midframes, vbench_scale
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric

GIB = 1024**3


def smoothness_from_frames(frames: torch.Tensor, interpolated: torch.Tensor) -> tuple[float, float]:
    """VBench's formula on given frames: (score, mean abs diff) for one clip.

    frames: uint8 [T, H, W, 3], the whole clip; interpolated: uint8 [K, H, W, 3], the frames made
    between the kept even frames (K = ceil(T/2) - 1), compared with the odd frames 1, 3, ...;
    extra odd frames (an even T) are ignored, as VBench's loop over the interpolated frames does."""
    odd = frames[1::2][: interpolated.shape[0]]
    if odd.shape[0] != interpolated.shape[0] or interpolated.shape[0] == 0:
        raise ValueError(f"{interpolated.shape[0]} interpolated frames for a clip of {frames.shape[0]} frames")
    diff = (odd.to(torch.int16) - interpolated.to(torch.int16)).abs()
    # Exact integer sums per frame, then the mean of the per-frame means in float64.
    per_frame = diff.flatten(1).sum(dim=1, dtype=torch.int64).to(torch.float64) / diff[0].numel()
    mad = float(per_frame.mean())
    return (255.0 - mad) / 255.0, mad


class MotionSmoothness(PerSampleMetric):
    name = "motion_smoothness"
    outputs = (
        Output("motion_smoothness", higher_is_better=True, range=(0.0, 1.0),
               description="VBench motion smoothness: (255 - mean abs difference between AMT-S-interpolated "
                           "and real odd frames) / 255"),
        Output("motion_smoothness_mean_abs_diff", higher_is_better=False, range=(0.0, 255.0),
               description="mean abs difference between interpolated and real odd frames, in grey levels"),
    )
    min_frames = 3  # two kept (even) frames at least

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str | None = "vbench", scale: float | None = None,
                 vbench_gpu_compat: bool = False, gpu_memory_gb: float | None = None, pair_batch: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        ctx = self.context
        if vbench_gpu_compat and scale is not None:
            raise ConfigError("motion_smoothness: give either scale or vbench_gpu_compat, not both")
        if not vbench_gpu_compat and gpu_memory_gb is not None:
            raise ConfigError("motion_smoothness: gpu_memory_gb is used only with vbench_gpu_compat: true")
        if scale is not None and not (0.0 < float(scale) <= 1.0):
            raise ConfigError(f"motion_smoothness: scale must be in (0, 1], got {scale!r}")
        if int(pair_batch) < 1:
            raise ConfigError(f"motion_smoothness: pair_batch must be a positive integer, got {pair_batch!r}")
        self.pair_batch = int(pair_batch)
        self.fixed_scale = 1.0 if scale is None else float(scale)
        self.vbench_gpu_compat = bool(vbench_gpu_compat)
        self.gpu_memory_bytes = self._gpu_memory(gpu_memory_gb) if self.vbench_gpu_compat else None
        weights = weights or ctx.weights_path.get("amt-s")
        key = ("amt-s", weights, weights_sha256, pretrained, ctx.seed if pretrained == "random" else None, ctx.device)
        self.net, info = ctx.shared.model(key, lambda: build_amt_s(
            weights=weights, sha256=weights_sha256, pretrained=pretrained, seed=ctx.seed, device=ctx.device))
        self.info = dict(info)

    def _gpu_memory(self, gpu_memory_gb: float | None) -> float:
        if gpu_memory_gb is not None:
            return float(gpu_memory_gb) * GIB
        device = torch.device(self.context.device)
        if device.type != "cuda" or not torch.cuda.is_available():
            raise ConfigError("motion_smoothness: vbench_gpu_compat needs gpu_memory_gb (the GPU's total memory in "
                              "GiB) when the run's device is not a CUDA GPU")
        return float(torch.cuda.get_device_properties(device).total_memory)

    def scale_for(self, height: int, width: int) -> float:
        """The network's downscale factor for a clip of this size."""
        if self.gpu_memory_bytes is not None:
            return vbench_scale(height, width, self.gpu_memory_bytes)
        return self.fixed_scale

    @property
    def comparable(self) -> bool:
        return self.info["pretrained"] != "random"

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info}
        if self.gpu_memory_bytes is not None:
            d["scale"] = f"VBench's GPU rule with {self.gpu_memory_bytes / GIB:g} GiB (vbench_gpu_compat)"
        else:
            d["scale"] = self.fixed_scale
        if not self.comparable:
            d["label"] = "not comparable with published numbers (random AMT-S weights)"
        return d

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        h, w = int(videos.shape[2]), int(videos.shape[3])
        scale = self.scale_for(h, w)
        check_size(h, w, scale, self.name)  # before any work: a one-line error for small clips
        scores, mads = [], []
        for clip in videos:
            mid = interpolate_midframes(self.net, clip[0::2], scale=scale, batch_size=self.pair_batch,
                                        device=self.context.device)
            score, mad = smoothness_from_frames(clip, mid)
            scores.append(score)
            mads.append(mad)
        return {"motion_smoothness": torch.tensor(scores, dtype=torch.float64),
                "motion_smoothness_mean_abs_diff": torch.tensor(mads, dtype=torch.float64)}


METRICS = [MotionSmoothness]

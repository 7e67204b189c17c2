"""Flow warping error: how well each frame is predicted by warping the next one along the flow.

For every consecutive pair (f1, f2): forward and backward optical flow, an occlusion mask from
their consistency (Sundaram et al., 2010), then

    E = sum_x M(x) * mean_c (warp(f2)(x) - f1(x))^2 / sum_x M(x)

with pixel values in [0, 1] (mean over the 3 channels). The clip's value is the mean over pairs;
lower is steadier. A pair whose pixels are all occluded cannot be judged by the mask, so it counts
with its unmasked error (the worst case) rather than being dropped. Flow: OpenCV DIS by default (no
weights); `flow: raft` uses torchvision RAFT with weights from the resolver.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vdmbench.features.flow import ClipFlows, occlusion_mask, sample_points, warp
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric


def warping_error(f1: np.ndarray, f2: np.ndarray, fw: np.ndarray, bw: np.ndarray) -> tuple[float, float]:
    """(masked warping error, fraction of pixels used) for uint8 frames and their flows."""
    points = sample_points(fw)  # shared by both warps along fw
    mask = occlusion_mask(fw, bw, points)
    warped, _ = warp(f2.astype(np.float32) / 255.0, fw, points)
    d = warped - f1.astype(np.float32) / 255.0
    d *= d
    sq = ((d[..., 0] + d[..., 1] + d[..., 2]) / np.float32(3)).astype(np.float64)  # mean over RGB, as numpy sums 3
    used = int(mask.sum())
    if used == 0:
        return float(sq.mean()), 0.0
    return float((sq * mask).sum() / used), used / mask.size


class FlowWarpingError(PerSampleMetric):
    name = "flow_warping_error"
    outputs = (Output("flow_warping_error", higher_is_better=False, range=(0.0, 1.0),
                      description="masked squared error of each frame against the next one warped along the flow"),)
    min_frames = 2

    def __init__(self, context: MetricContext | None = None, *, flow: str = "dis", weights: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.flow = ClipFlows(self.context.shared, flow, self.context.device,
                              weights or self.context.weights_path.get(flow), directions=("fw", "bw"))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.flow.info, "pixel_range": "[0, 1]", "occlusion": "fw-bw consistency"}

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        self.flow.check_size(videos, self.name)  # before any flow: OpenCV fails on tiny frames
        out = []
        for i in range(len(videos)):  # clip by clip: one clip's flows in memory at a time
            one = videos[i:i + 1]
            fws, bws = self.flow.forward(one)[0], self.flow.backward(one)[0]
            frames = videos[i].cpu().numpy()
            errs = [warping_error(frames[t], frames[t + 1], fws[t], bws[t])[0] for t in range(len(fws))]
            out.append(float(np.mean(errs)))
        return {"flow_warping_error": torch.tensor(out, dtype=torch.float64)}


METRICS = [FlowWarpingError]

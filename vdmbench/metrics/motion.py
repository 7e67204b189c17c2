"""Motion magnitude: how much a clip moves, so a frozen clip cannot win on flicker and coherence.

Forward optical flow between consecutive frames; magnitudes are divided by the frame diagonal
sqrt(H^2 + W^2), so values do not depend on resolution (0.01 = 1% of the diagonal per frame).
motion_mean: mean magnitude over pixels and pairs. motion_top5: mean of the largest 5% of each
pair's magnitudes, averaged over pairs (a small object moving in a still scene still registers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vdmbench.features.flow import ClipFlows
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric

TOP_FRACTION = 0.05


def motion_stats(flows: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """(mean, top-5% mean) of flow magnitudes [P, H, W, 2] normalized by the frame diagonal."""
    f = flows.astype(np.float64)
    x, y = f[..., 0], f[..., 1]
    # = np.linalg.norm(f, axis=-1), without numpy's slow reduction over a length-2 axis
    mag = np.sqrt(x * x + y * y).reshape(len(flows), -1) / np.hypot(height, width)
    k = max(1, int(np.ceil(TOP_FRACTION * mag.shape[1])))
    # The k largest, sorted: the same array as np.sort(mag)[:, -k:], without sorting the other 95%.
    top = np.sort(np.partition(mag, mag.shape[1] - k, axis=1)[:, -k:], axis=1).mean(axis=1)
    return float(mag.mean()), float(top.mean())


class Motion(PerSampleMetric):
    name = "motion"
    # More motion is not better in itself; the direction is "higher" because the metric exists to
    # expose frozen clips (a frozen clip scores 0).
    outputs = (
        Output("motion_mean", higher_is_better=True, range=(0.0, math.inf),
               description="mean optical-flow magnitude per frame, as a fraction of the frame diagonal"),
        Output("motion_top5", higher_is_better=True, range=(0.0, math.inf),
               description="mean of the largest 5% flow magnitudes per frame pair, over the frame diagonal"),
    )
    min_frames = 2

    def __init__(self, context: MetricContext | None = None, *, flow: str = "dis", weights: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.flow = ClipFlows(self.context.shared, flow, self.context.device,
                              weights or self.context.weights_path.get(flow), directions=("fw",))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.flow.info, "normalized_by": "frame diagonal"}

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        self.flow.check_size(videos, self.name)  # before any flow: OpenCV fails on tiny frames
        h, w = videos.shape[2:4]
        means, tops = [], []
        for i in range(len(videos)):
            m, t = motion_stats(self.flow.forward(videos[i:i + 1])[0], h, w)
            means.append(m)
            tops.append(t)
        return {"motion_mean": torch.tensor(means, dtype=torch.float64),
                "motion_top5": torch.tensor(tops, dtype=torch.float64)}


METRICS = [Motion]

"""Temporal flickering, as VBench defines it.

flicker = (255 - mean_abs_diff) / 255, where mean_abs_diff is the mean over consecutive frame
pairs of the mean absolute pixel difference over all pixels and channels. A static clip scores
exactly 1.0. The raw mean difference is reported too (lower is steadier).
"""

from __future__ import annotations

import torch

from vdmbench.metrics.base import ClipBatch, Output, PerSampleMetric


class Flicker(PerSampleMetric):
    name = "flicker"
    outputs = (
        Output("flicker", higher_is_better=True, range=(0.0, 1.0),
               description="(255 - mean abs difference of consecutive frames) / 255; 1 for a static clip"),
        Output("flicker_mean_abs_diff", higher_is_better=False, range=(0.0, 255.0),
               description="mean abs difference of consecutive frames, in grey levels"),
    )
    min_frames = 2  # a one-frame clip has no pairs: refuse it rather than return NaN

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        v = self.check_batch(batch)
        # Exact integer sums; the mean over pairs, pixels and channels in float64.
        diff = (v[:, 1:].to(torch.int16) - v[:, :-1].to(torch.int16)).abs()
        mad = diff.flatten(1).sum(dim=1, dtype=torch.int64).to(torch.float64) / diff[0].numel()
        return {"flicker": (255.0 - mad) / 255.0, "flicker_mean_abs_diff": mad}


METRICS = [Flicker]

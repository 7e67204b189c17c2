"""Editing quality on the shapes domain: follows the new prompt, keeps the rest of the source.

- edit_adherence: shapes_adherence of the edited clip to the new prompt (color, shape, motion);
- edit_preservation_psnr: PSNR between the edited clip and the source over the background, i.e.
  the pixels that are not part of any shape in either clip (shapes segmentation), so changing the
  object itself is not penalized but repainting the scene is;
- edit_score: their balance, adherence x min(1, preservation_psnr / 30 dB).
An unchanged copy of the source preserves perfectly but fails color and shape; a clip that ignores
the source fails preservation.
"""

from __future__ import annotations

import math

import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.metrics.base import ClipBatch, PerSampleMetric
from vdmbench.metrics.reconstruction import MAX_PSNR
from vdmbench.metrics.shapes_adherence import score_clip, segment

GOOD_PSNR = 30.0


def background_psnr(edited: torch.Tensor, source: torch.Tensor) -> float:
    bg = torch.from_numpy((segment(edited.numpy()) < 0) & (segment(source.numpy()) < 0))
    if not bool(bg.any()):
        return 0.0
    diff = (edited.double() - source.double())[bg]
    mse = float((diff**2).mean())
    return MAX_PSNR if mse == 0 else min(MAX_PSNR, 10 * math.log10(255.0**2 / mse))


class ShapesEditing(PerSampleMetric):
    name = "shapes_editing"
    outputs = ("edit_score", "edit_adherence", "edit_preservation_psnr")
    higher_is_better = True
    requires = frozenset({"prompts", "source"})
    min_frames = 2

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        if batch.source.shape != videos.shape:
            raise MetricInputError(f"shapes_editing: source {list(batch.source.shape)} does not match "
                                   f"the videos {list(videos.shape)}")
        adh = [score_clip(v, p)["adherence"] for v, p in zip(videos, batch.prompts)]
        pres = [background_psnr(v, s) for v, s in zip(videos, batch.source)]
        score = [a * min(1.0, q / GOOD_PSNR) for a, q in zip(adh, pres)]
        f64 = lambda x: torch.tensor(x, dtype=torch.float64)
        return {"edit_score": f64(score), "edit_adherence": f64(adh), "edit_preservation_psnr": f64(pres)}


METRICS = [ShapesEditing]

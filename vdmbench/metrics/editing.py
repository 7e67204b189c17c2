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
from vdmbench.metrics.base import ClipBatch, Output, PerSampleMetric
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
    outputs = (
        Output("edit_score", higher_is_better=True, range=(0.0, 1.0),
               description="adherence x min(1, preservation PSNR / 30 dB)"),
        Output("edit_adherence", higher_is_better=True, range=(0.0, 1.0),
               description="shapes adherence of the edited clip to the new prompt"),
        Output("edit_preservation_psnr", higher_is_better=True, range=(0.0, MAX_PSNR),
               description="PSNR against the source over the background, in dB"),
    )
    inputs = frozenset({"prompts", "source"})
    min_frames = 2

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos, source = self.check_batch(batch), batch.source
        assert source is not None  # check_batch: declared in inputs
        if source.shape != videos.shape:
            raise MetricInputError(f"shapes_editing: source {list(source.shape)} does not match "
                                   f"the videos {list(videos.shape)}")
        adh = [score_clip(v, p)["adherence"] for v, p in zip(videos, batch.prompts)]
        pres = [background_psnr(v, s) for v, s in zip(videos, source)]
        score = [a * min(1.0, q / GOOD_PSNR) for a, q in zip(adh, pres)]
        return {name: torch.tensor(x, dtype=torch.float64)
                for name, x in (("edit_score", score), ("edit_adherence", adh), ("edit_preservation_psnr", pres))}


METRICS = [ShapesEditing]

"""PSNR and SSIM against the ground truth, for prediction, interpolation and i2v suites.

Only the frames the model had to generate are scored: frames listed in the clip's
`cond_indices` were given to it (and a well-behaved model returns them unchanged), so counting
them would inflate every score. PSNR uses the mean squared error over all generated frames of a
clip (data range 255; capped at 100 dB for an exact match); SSIM (torchmetrics, Gaussian window
11, sigma 1.5, shrunk for frames smaller than the window) is averaged over those frames.
"""

from __future__ import annotations

import math

import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.metrics.base import ClipBatch, Output, PerSampleMetric

MAX_PSNR = 100.0


def generated_frames(num_frames: int, cond_indices: tuple[int, ...]) -> list[int]:
    idx = [t for t in range(num_frames) if t not in set(cond_indices)]
    if not idx:
        raise MetricInputError("reconstruction: every frame was given as conditioning; nothing to score")
    return idx


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """uint8 tensors of one shape -> PSNR in dB (float64 arithmetic)."""
    mse = float(((pred.double() - target.double()) ** 2).mean())
    return MAX_PSNR if mse == 0 else min(MAX_PSNR, 10 * math.log10(255.0**2 / mse))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """uint8 [T, H, W, 3] pair -> mean SSIM over frames."""
    k = min(11, min(pred.shape[1:3]) // 2 * 2 - 1)
    if k < 3:
        raise MetricInputError(f"reconstruction: frames of {tuple(pred.shape[1:3])} are too small for SSIM")
    p = pred.permute(0, 3, 1, 2).double()
    t = target.permute(0, 3, 1, 2).double()
    # Imported here: torchmetrics.functional.image imports torchvision (and torch._dynamo), ~3.5 s
    # that every `vdmbench list metrics` and run would pay otherwise.
    from torchmetrics.functional.image import structural_similarity_index_measure

    v = structural_similarity_index_measure(p, t, data_range=255.0, kernel_size=k, sigma=1.5 * k / 11, reduction="none")
    assert isinstance(v, torch.Tensor)  # a tuple only with return_full_image / return_contrast_sensitivity
    return float(v.mean())


class Reconstruction(PerSampleMetric):
    name = "reconstruction"
    outputs = (
        Output("psnr", higher_is_better=True, range=(0.0, MAX_PSNR),
               description="PSNR of the generated frames against the ground truth, in dB"),
        Output("ssim", higher_is_better=True, range=(-1.0, 1.0),
               description="SSIM of the generated frames against the ground truth, mean over frames"),
    )
    # cond_indices are used where given (frames the model was handed are not scored).
    inputs = frozenset({"ground_truth"})

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        gt = batch.ground_truth
        assert gt is not None  # check_batch: declared in inputs
        if gt.shape != videos.shape or gt.dtype != torch.uint8:
            raise MetricInputError(f"reconstruction: ground truth {gt.dtype} {list(gt.shape)} does not match "
                                   f"the videos {list(videos.shape)} (uint8)")
        cond = batch.cond_indices or [()] * len(batch)
        p, s = [], []
        for v, g, c in zip(videos, gt, cond):
            idx = generated_frames(v.shape[0], tuple(c))
            p.append(psnr(v[idx], g[idx]))
            s.append(ssim(v[idx], g[idx]))
        return {"psnr": torch.tensor(p, dtype=torch.float64), "ssim": torch.tensor(s, dtype=torch.float64)}


METRICS = [Reconstruction]

"""A feature extractor as the set-level metrics call it: uint8 clips in, float64 features out, in
batches on a device (the VideoMAE-v2 and V-JEPA backends; I3D adds autocast to the same shape)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class BatchedFeatures:
    """Callable uint8 videos [B, T, H, W, 3] -> float64 features [B, dim], batched on a device."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    id: str  # backend + weights + preprocessing + precision, for caches and reports
    device: str = "cpu"
    batch_size: int = 8
    precision: str = "fp32"

    @torch.no_grad()
    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        out = [self.forward(chunk.to(self.device, non_blocking=True)).to(torch.float64).cpu()
               for chunk in videos.split(max(1, self.batch_size))]
        return torch.cat(out) if out else torch.zeros(0, self.dim, dtype=torch.float64)

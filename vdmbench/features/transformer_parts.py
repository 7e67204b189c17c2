"""The one transformer piece several published networks define identically: the two-layer MLP
with exact (erf) GELU and the checkpoint key names `fc1` / `fc2` (DINO, VideoMAE-v2, V-JEPA, MUSIQ)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, nn.GELU's default

"""The "random weights" mark shared by metrics built on one pretrained network.

Such a metric keeps how its network was made in `self.info` (with `pretrained == "random"` when
seeded random weights were asked for, e.g. for offline tests). Its numbers are then not comparable
with published ones, and every stored row must say so.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vdmbench.metrics.base import VideoMetric


class RandomWeightsMark(VideoMetric):
    """`comparable` is False with random weights; describe() then adds a label naming the network.
    Mix in before the metric's base class: `class M(RandomWeightsMark, PerSampleMetric)`."""

    network: ClassVar[str]  # how the label names the network, e.g. "CLIP"
    info: dict[str, Any]

    @property
    def comparable(self) -> bool:
        return self.info["pretrained"] != "random"

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info}
        if not self.comparable:
            d["label"] = f"not comparable with published numbers (random {self.network} weights)"
        return d

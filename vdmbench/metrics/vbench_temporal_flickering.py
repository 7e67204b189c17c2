"""VBench's temporal_flickering: the flicker score of the clips VBench's static filter keeps.

VBench scores temporal flickering only on static videos: before scoring, `vbench static_filter`
(vbench/cli/static_filter.py) runs RAFT over the videos of the temporal_flickering prompts and
copies the static ones (at most 5 per prompt, the first in sorted file order) into the folder
that is then scored. This metric does both steps per clip:

Static filter (StaticFilter.infer / check_static), on ALL decoded frames (no fps subsampling):
1. RAFT (raft-things, 20 iterations, InputPadder, frames as float [0, 255]) on every consecutive
   pair, then on (first, last) and (last, first);
2. per pair: the mean of the largest int(h * w * 0.02) flow magnitudes over the padded frame;
3. thres = 3.0 * min(H, W) / 256 and count_num = round(2 * n / 16), n the number of frames;
   the clip is NOT static when more than count_num consecutive pairs exceed thres, or when one
   of the two first<->last pairs exceeds thres * count_num * 2; otherwise it is static.

Score (vbench/temporal_flickering.py): (255 - mean over consecutive pairs of the mean absolute
frame difference) / 255, computed by vdmbench's `flicker` metric (exact integer sums).
Aggregation: VBench averages over the kept videos only. Here a clip the filter excludes gets no
`temporal_flickering` value (NaN from `sample_values`, which the scorer does not store) and
`temporal_flickering_static` = 0; that output is the aggregation weight, so the run value is the
mean over the kept clips, as VBench's.

Not reproduced: the cap of 5 kept videos per prompt (it depends on the order files are listed;
a suite that wants it generates 5 clips per prompt and keeps all static ones). With
`static_filter: false` every clip is scored (for folders VBench's own static_filter already made).
The RAFT model is shared with dynamic_degree (same options -> one model per run).
"""

from __future__ import annotations

from typing import Any

import torch

from vdmbench.features.raft_original import check_raft_size
from vdmbench.metrics.base import ClipBatch, MetricContext, Output
from vdmbench.metrics.flicker import Flicker
from vdmbench.metrics.vbench_dynamic_degree import _RaftMetric, top_magnitude_mean

STATIC_TOP_FRACTION = 0.02  # static_filter's get_score: cut_index = int(h * w * 0.02)


def static_params(height: int, width: int, n_frames: int) -> tuple[float, int]:
    """(thres, count_num) of the static filter's set_params for frames H x W and n frames."""
    return 3.0 * (min(height, width) / 256.0), round(2 * (n_frames / 16.0))


def filter_pairs(n_frames: int) -> list[tuple[int, int]]:
    """Frame index pairs the static filter measures: consecutive ones, then (0, last), (last, 0)."""
    last = n_frames - 1
    return [(t, t + 1) for t in range(last)] + [(0, last), (last, 0)]


def is_static(scores: list[float], thres: float, count_num: int) -> bool:
    """The static filter's check_static over the scores of `filter_pairs` (same order)."""
    count = 0
    for s in scores[:-2]:
        if s > thres:
            count += 1
        if count > count_num:
            return False
    return all(not s > thres * count_num * 2 for s in scores[-2:])


class TemporalFlickering(_RaftMetric):
    name = "temporal_flickering"
    outputs = (
        Output("temporal_flickering", higher_is_better=True, range=(0.0, 1.0),
               description="VBench: (255 - mean abs difference of consecutive frames) / 255, only for clips "
                           "VBench's static filter keeps (no value for the others)"),
        Output("temporal_flickering_static", higher_is_better=True, range=(0.0, 1.0), is_score=False,
               description="1 if VBench's static filter keeps the clip, 0 if it is excluded; the weight of the "
                           "run value (not a score)"),
    )
    aggregate_weight = "temporal_flickering_static"
    min_frames = 2  # flicker needs a pair of frames

    def __init__(self, context: MetricContext | None = None, *, static_filter: bool = True, **kwargs: Any) -> None:
        if not isinstance(static_filter, bool):
            from vdmbench.core.errors import ConfigError

            raise ConfigError(f"temporal_flickering: static_filter must be true or false, got {static_filter!r}")
        self.static_filter = static_filter
        super().__init__(context, build_raft=static_filter, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "static_filter": self.static_filter,
                "aggregation": "mean over the clips the static filter keeps" if self.static_filter else "mean"}

    def keep(self, clip: torch.Tensor) -> bool:
        """VBench's static filter on one uint8 [T, H, W, 3] clip."""
        idx = filter_pairs(int(clip.shape[0]))
        first = clip[[a for a, _ in idx]]
        second = clip[[b for _, b in idx]]
        assert self.raft is not None  # built whenever static_filter is on
        flows = self.raft.flows(first, second).numpy()
        scores = [top_magnitude_mean(f, STATIC_TOP_FRACTION) for f in flows]
        thres, count_num = static_params(int(clip.shape[1]), int(clip.shape[2]), int(clip.shape[0]))
        return is_static(scores, thres, count_num)

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        if self.static_filter:
            check_raft_size(int(videos.shape[2]), int(videos.shape[3]), self.name)
            kept = torch.tensor([self.keep(clip) for clip in videos], dtype=torch.bool)
        else:
            kept = torch.ones(len(videos), dtype=torch.bool)
        value = torch.full((len(videos),), float("nan"), dtype=torch.float64)
        if kept.any():
            sub = ClipBatch(videos=videos[kept])
            value[kept] = Flicker(self.context).sample_values(sub)["flicker"].to(torch.float64)
        return {"temporal_flickering": value, "temporal_flickering_static": kept.to(torch.float64)}


METRICS = [TemporalFlickering]

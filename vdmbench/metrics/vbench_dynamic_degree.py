"""VBench's dynamic_degree: is the clip moving, by RAFT optical flow (0 or 1 per clip).

VBench (vbench/core/dynamic_degree.py, vbench/dynamic_degree.py), reproduced step by step:
1. frames: every `interval`-th decoded frame from the first, interval = max(1, round(fps / 8))
   (Python's round: 12 fps -> 2, 20 fps -> 2, 24 fps -> 3);
2. for each consecutive pair of the selected frames, RAFT (raft-things, 20 iterations, test mode)
   on the frames as float [0, 255] padded by InputPadder to multiples of 8 (replicate, sintel);
3. per pair: the magnitude sqrt(u^2 + v^2) of the flow over the PADDED frame (VBench does not
   crop it back), and the mean of its largest int(h * w * 0.05) values (h, w: padded size);
4. per clip: thres = 6.0 * min(H, W) / 256 (H, W: the unpadded frame) and
   count_num = round(4 * n / 16) with n the number of selected frames; the clip is dynamic (1)
   when at least count_num pairs exceed thres (and there is at least one pair), else 0;
5. over clips: the plain mean of the 0/1 values (VBench: np.mean over videos), i.e. the fraction
   of dynamic clips. No weighting.

An older VBench revision (vbench/dynamic_degree.py before the distributed rewrite) multiplied the
threshold by max(1, 8 / fps); the current code has no such factor, and neither has this metric.

Outputs: `dynamic_degree` (VBench's per-video value, 0 or 1) and `dynamic_degree_moving_pairs`
(the fraction of pairs over the threshold; a diagnostic VBench does not report).
Options: `weights` (path to raft-things.pth), `weights_sha256`, `pretrained` ("raft-things" or
"random": seeded random weights, results not comparable), `pair_batch` (frame pairs per RAFT
call; VBench uses 1; changes only the low bits), `vbench_gpu_compat` (on CUDA, keep cuDNN's TF32
convolutions as VBench-on-GPU does; off by default, so a GPU gives the CPU's numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.features.raft_original import VBenchRaft, build_vbench_raft, check_raft_size
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric

TOP_FRACTION = 0.05  # dynamic_degree's get_score: cut_index = int(h * w * 0.05)


def frame_interval(fps: float) -> int:
    """VBench's stride for ~8 fps: max(1, round(fps / 8)), with Python's round (half to even)."""
    return max(1, round(float(fps) / 8))


def top_magnitude_mean(flow: np.ndarray, fraction: float) -> float:
    """Mean of the largest int(h * w * fraction) flow magnitudes of one [2, h, w] float32 flow, computed
    as VBench does (numpy, float32 magnitudes, np.mean of the sorted values)."""
    u, v = flow[0], flow[1]
    rad = np.sqrt(np.square(u) + np.square(v))
    h, w = rad.shape
    cut = int(h * w * fraction)
    return float(np.mean(np.abs(np.sort(-rad.flatten()))[:cut]))


def dynamic_params(height: int, width: int, n_frames: int) -> tuple[float, int]:
    """(thres, count_num) of VBench's set_params for frames H x W and n selected frames."""
    return 6.0 * (min(height, width) / 256.0), round(4 * (n_frames / 16.0))


def is_moving(scores: list[float], thres: float, count_num: int) -> bool:
    """VBench's check_move: True once count_num pair scores exceed thres (never for no pairs)."""
    count = 0
    for s in scores:
        if s > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def shared_raft(context: MetricContext, weights: str | None, weights_sha256: str | None, pretrained: str | None,
                pair_batch: int, vbench_gpu_compat: bool) -> VBenchRaft:
    """The run's RAFT (one per settings), shared by dynamic_degree and temporal_flickering's filter."""
    weights = weights or context.weights_path.get("raft-things")
    key = ("vbench-raft", weights, weights_sha256, pretrained, context.seed, context.device, pair_batch,
           vbench_gpu_compat)
    return context.shared.model(key, lambda: build_vbench_raft(
        weights=weights, weights_sha256=weights_sha256, pretrained=pretrained, device=context.device,
        seed=context.seed, pair_batch=pair_batch, vbench_gpu_compat=vbench_gpu_compat))


class _RaftMetric(PerSampleMetric):
    """A VBench dimension measured with VBench's RAFT (weights options shared by its users)."""

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str | None = "raft-things", pair_batch: int = 8,
                 vbench_gpu_compat: bool = False, build_raft: bool = True, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        if not isinstance(vbench_gpu_compat, bool):
            raise ConfigError(f"{self.name}: vbench_gpu_compat must be true or false, got {vbench_gpu_compat!r}")
        if not isinstance(pair_batch, int) or isinstance(pair_batch, bool) or pair_batch < 1:
            raise ConfigError(f"{self.name}: pair_batch must be a positive integer, got {pair_batch!r}")
        self.raft: VBenchRaft | None = (
            shared_raft(self.context, weights, weights_sha256, pretrained, pair_batch, vbench_gpu_compat)
            if build_raft else None)

    @property
    def comparable(self) -> bool:
        return self.raft is None or self.raft.info.get("pretrained") != "random"

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **(self.raft.info if self.raft is not None else {})}
        if not self.comparable:
            d["label"] = "not comparable with published numbers (random RAFT weights)"
        return d


class DynamicDegree(_RaftMetric):
    name = "dynamic_degree"
    outputs = (
        Output("dynamic_degree", higher_is_better=True, range=(0.0, 1.0),
               description="VBench: 1 if RAFT flow shows the clip moving (count rule over ~8 fps frame pairs), "
                           "else 0; the run value is the fraction of dynamic clips"),
        Output("dynamic_degree_moving_pairs", higher_is_better=True, range=(0.0, 1.0),
               description="fraction of the sampled frame pairs whose top-5% flow magnitude exceeds "
                           "VBench's threshold (diagnostic)"),
    )
    inputs = frozenset({"fps"})
    min_frames = 2

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        h, w = int(videos.shape[2]), int(videos.shape[3])
        check_raft_size(h, w, self.name)
        assert self.raft is not None
        moving, fractions = [], []
        for clip, fps in zip(videos, batch.fps):
            frames = clip[::frame_interval(fps)]
            thres, count_num = dynamic_params(h, w, len(frames))
            flows = self.raft.flows(frames[:-1], frames[1:]).numpy()
            scores = [top_magnitude_mean(f, TOP_FRACTION) for f in flows]
            moving.append(1.0 if is_moving(scores, thres, count_num) else 0.0)
            fractions.append(float(np.mean([s > thres for s in scores])) if scores else 0.0)
        return {"dynamic_degree": torch.tensor(moving, dtype=torch.float64),
                "dynamic_degree_moving_pairs": torch.tensor(fractions, dtype=torch.float64)}


METRICS = [DynamicDegree]

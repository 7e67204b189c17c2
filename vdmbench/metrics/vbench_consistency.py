"""VBench's subject_consistency (DINO ViT-B/16) and background_consistency (CLIP ViT-B/32).

Per video, as vbench/subject_consistency.py and vbench/background_consistency.py compute it: every
decoded frame (VBench's load_video reads them all; no sampling by fps), embedded and L2-normalized;
for each frame i >= 1, (max(0, cos(f[i-1], f[i])) + max(0, cos(f[0], f[i]))) / 2, summed and divided
by the number of frame pairs T - 1. A static clip scores exactly 1.

Aggregation over videos: VBench divides the sum over ALL frame pairs of all videos by the number of
pairs (`sim / cnt`), so a long video weighs more than a short one: each metric declares
`aggregate_weight` = its `<dimension>_weight` output, the clip's T - 1 pairs, and the run value is
sum(w * v) / sum(w). (VBench's multi-GPU path averages the per-video values instead: a VBench
inconsistency; vdmbench follows its single-process result.)

Models and preprocessing (vdmbench.features.dino / openai_clip): DINO as torch.hub builds it, on
VBench's dino_transform (short side bilinear-resized to 224 without antialiasing, no crop: non-square
frames use DINO's position-grid interpolation); CLIP ViT-B/32 from OpenAI's ViT-B-32.pt on VBench's
clip_transform (bicubic short side 224, no antialiasing, center crop), the whole clip in one batch.

Known differences from VBench: fp32 everywhere (VBench-on-GPU runs CLIP in fp16: option
`vbench_gpu_compat: true` on CUDA); frames in one batch instead of DINO's one at a time (float
rounding only); cosines in float64 and clamped at 1 as well as 0 (a cosine above 1 is rounding);
a one-frame clip is refused (VBench divides by zero for subject_consistency and gives 1.0 with no
weight for background_consistency).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric


def weight_output(name: str, description: str) -> Output:
    """An aggregation-weight output (not a score: the gate and dashboard do not rank it)."""
    return Output(name, higher_is_better=True, range=None, description=description, is_score=False)


def vbench_consistency(features: torch.Tensor) -> float:
    """VBench's per-video consistency of frame features [T, D] (T >= 2), in float64."""
    f = F.normalize(features.to(torch.float64), dim=-1)
    cos_prev = (f[1:] * f[:-1]).sum(-1).clamp(0.0, 1.0)
    cos_first = (f[1:] * f[:1]).sum(-1).clamp(0.0, 1.0)
    # Identical features are exactly similar (a float dot product may land a hair below 1).
    same_prev = (features[1:] == features[:-1]).all(-1)
    same_first = (features[1:] == features[:1]).all(-1)
    cos_prev = torch.where(same_prev, torch.ones_like(cos_prev), cos_prev)
    cos_first = torch.where(same_first, torch.ones_like(cos_first), cos_first)
    return float(((cos_prev + cos_first) / 2).sum() / (features.shape[0] - 1))


def shared_openai_clip(context: MetricContext, name: str, *, weights: str | None, weights_sha256: str | None,
                       pretrained: str | None, vbench_gpu_compat: bool) -> tuple[Any, dict[str, Any]]:
    """One OpenAI CLIP model per run and settings, lent to every VBench metric that asks."""
    from vdmbench.features.openai_clip import load_openai_clip

    key = ("openai-clip", name, weights, weights_sha256, pretrained, context.seed, context.device,
           bool(vbench_gpu_compat))
    return context.shared.model(key, lambda: load_openai_clip(
        name, weights=weights, weights_sha256=weights_sha256, pretrained=pretrained, device=context.device,
        seed=context.seed, vbench_gpu_compat=vbench_gpu_compat))


class _VBenchConsistency(PerSampleMetric):
    """Per-clip frame features -> VBench's consistency; subclasses say how frames are embedded."""

    dimension: ClassVar[str]
    min_frames = 2  # the formula needs a pair of frames
    info: dict[str, Any]

    resize_antialias: bool = False

    @property
    def comparable(self) -> bool:
        # Published VBench numbers come from its pinned torchvision, whose tensor resize has no antialiasing.
        return bool(self.info.get("comparable", False)) and not self.resize_antialias

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info, "protocol": f"VBench {self.dimension}"}
        if not self.comparable:
            d["label"] = "not comparable with published numbers"
        return d

    def clip_features(self, clip: torch.Tensor) -> torch.Tensor:
        """uint8 [T, H, W, 3] -> features [T, D]."""
        raise NotImplementedError

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        values = [vbench_consistency(self.clip_features(clip)) for clip in videos]
        pairs = float(videos.shape[1] - 1)
        return {self.dimension: torch.tensor(values, dtype=torch.float64),
                f"{self.dimension}_weight": torch.full((len(videos),), pairs, dtype=torch.float64)}


def _check_pretrained(pretrained: str | None, allowed: str) -> None:
    if pretrained is not None and str(pretrained).lower() not in (allowed, "random", "none"):
        raise ConfigError(f"pretrained must be {allowed!r} or 'random', got {pretrained!r}")


class SubjectConsistency(_VBenchConsistency):
    """VBench's subject_consistency: DINO ViT-B/16 feature similarity of each frame with the previous and the first."""

    name = "subject_consistency"
    dimension = "subject_consistency"
    outputs = (
        Output("subject_consistency", higher_is_better=True, range=(0.0, 1.0),
               description="VBench subject consistency: mean over frames of (cos(prev, cur)+ + cos(first, cur)+)/2 "
                           "of DINO ViT-B/16 [CLS] features; 1 for a static clip"),
        weight_output("subject_consistency_weight",
                      "frame pairs of the clip (T - 1): VBench averages over all frame pairs, not videos"),
    )
    aggregate_weight = "subject_consistency_weight"

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str | None = "dino", model: str = "dino_vitb16",
                 resize_antialias: bool = False, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        from vdmbench.features.dino import load_dino

        _check_pretrained(pretrained, "dino")
        ctx = self.context
        weights = weights or ctx.weights_path.get("dino_vitb16")
        key = ("dino", model, weights, weights_sha256, pretrained, ctx.seed, ctx.device)
        self.net, info = ctx.shared.model(key, lambda: load_dino(
            model, weights=weights, weights_sha256=weights_sha256, pretrained=pretrained, device=ctx.device,
            seed=ctx.seed))
        self.resize_antialias = bool(resize_antialias)
        self.info = {**info, "resize_antialias": self.resize_antialias}

    @torch.no_grad()
    def clip_features(self, clip: torch.Tensor) -> torch.Tensor:
        from vdmbench.features.dino import vbench_dino_transform

        out = []
        for chunk in clip.split(max(1, self.context.batch_size * 4)):
            pixels = vbench_dino_transform(chunk, 224, antialias=self.resize_antialias)
            out.append(self.net(pixels.to(self.context.device)).float().cpu())
        return torch.cat(out)


class BackgroundConsistency(_VBenchConsistency):
    """VBench's background_consistency: CLIP ViT-B/32 similarity of each frame with the previous and the first."""

    name = "background_consistency"
    dimension = "background_consistency"
    outputs = (
        Output("background_consistency", higher_is_better=True, range=(0.0, 1.0),
               description="VBench background consistency: mean over frames of (cos(prev, cur)+ + cos(first, cur)+)/2 "
                           "of CLIP ViT-B/32 image embeddings; 1 for a static clip"),
        weight_output("background_consistency_weight",
                      "frame pairs of the clip (T - 1): VBench averages over all frame pairs, not videos"),
    )
    aggregate_weight = "background_consistency_weight"

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str | None = "openai",
                 vbench_gpu_compat: bool = False, resize_antialias: bool = False, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        _check_pretrained(pretrained, "openai")
        ctx = self.context
        weights = weights or ctx.weights_path.get("openai-clip-ViT-B-32")  # the WeightSpec name
        self.model, info = shared_openai_clip(ctx, "ViT-B-32", weights=weights, weights_sha256=weights_sha256,
                                              pretrained=pretrained, vbench_gpu_compat=vbench_gpu_compat)
        self.resize_antialias = bool(resize_antialias)
        self.info = {**info, "resize_antialias": self.resize_antialias}
        # Embeddings of VBench's clip_transform frames, shareable with any metric asking for the same kind.
        self._kind = "vbench-clip-frames|" + "|".join(
            map(str, ("ViT-B-32", info.get("weights_sha256", info.get("weights")), info["precision"],
                      self.resize_antialias, ctx.device)))
        self._reader = ctx.shared.register(self._kind)

    def clip_features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.frame_embeddings(clip.unsqueeze(0))[0]

    def frame_embeddings(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> CLIP image embeddings [B, T, D] (float32, not normalized)."""
        from vdmbench.features.openai_clip import encode_image, vbench_clip_transform

        def compute(idx: list[int]) -> list[torch.Tensor]:
            # As VBench: the whole clip goes through the image encoder as one batch.
            return [encode_image(self.model, vbench_clip_transform(videos[i], 224, antialias=self.resize_antialias)).cpu()
                    for i in idx]

        return torch.stack(self.context.shared.per_clip(self._kind, self._reader, videos, compute))


METRICS = [SubjectConsistency, BackgroundConsistency]

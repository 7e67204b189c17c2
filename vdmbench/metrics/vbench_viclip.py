"""VBench's overall_consistency and temporal_style: ViCLIP video-text cosine similarity.

Both dimensions compute the same thing (VBench `vbench/overall_consistency.py`,
`vbench/temporal_style.py`); only the prompts VBench's suite gives them differ. Per video: 8
frames chosen as VBench's `read_frames_decord_by_fps(num_frames=8, sample="middle")` does (the
clip's fps plays no part in that mode), `clip_transform(224)`, ViCLIP's video embedding and the
prompt's text embedding (32-token context), each L2-normalized in float32; the value is their
dot product, a cosine on VBench's raw scale (VBench later normalizes with min 0, max 0.364).
Aggregation: VBench's `np.mean` over videos, i.e. the plain mean of the per-video values (no
weighting), which is PerSampleMetric's run value.

The model and each clip's video embedding are shared by the two metrics of a run
(context.shared): scoring both costs one ViCLIP pass per clip. Text embeddings are memoized by
prompt, as VBench does.

Options: `weights` (a path to ViClip-InternVid-10M-FLT.pth; otherwise $VDMBENCH_WEIGHTS,
~/.cache/vdmbench, VBench's cache `ViCLIP/ViClip-InternVid-10M-FLT.pth`), `weights_sha256`,
`pretrained: random` (seeded by the run's seed; not comparable), `antialias` (default false, as
VBench's pinned torchvision < 0.16; true matches a VBench installed with torchvision >= 0.17),
`vbench_gpu_compat` (patch embedding as a convolution, as VBench runs it: on CUDA, cuDNN may
compute it in TF32; the default computes it as a float32 matrix product, the same on every
machine), `architecture` (other ViCLIP sizes; the default is VBench's ViT-L/14).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from vdmbench.features.viclip import CLIP_BPE_SHA256, ViclipConfig, ViclipEncoder, build_viclip
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric
from vdmbench.metrics.random_weights import RandomWeightsMark

RANDOM = ("random", "none")


class _ViclipMetric(RandomWeightsMark, PerSampleMetric):
    network = "ViCLIP"
    inputs = frozenset({"prompts"})

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, pretrained: str | None = "vbench", antialias: bool = False,
                 vbench_gpu_compat: bool = False, architecture: dict[str, int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        ctx = self.context
        weights = weights or ctx.weights_path.get("viclip")
        mode = "random" if pretrained is None or str(pretrained).lower() in RANDOM else str(pretrained)
        cfg = ViclipConfig.from_options(architecture)
        key = ("viclip", mode, weights, weights_sha256, tuple(asdict(cfg).items()), ctx.seed, ctx.device,
               ctx.batch_size, bool(antialias), bool(vbench_gpu_compat))

        def build() -> tuple[ViclipEncoder, dict[str, Any]]:
            model, info = build_viclip(cfg, pretrained=mode, weights=weights, weights_sha256=weights_sha256,
                                       seed=ctx.seed)
            encoder = ViclipEncoder(model, device=ctx.device, batch_size=ctx.batch_size, antialias=antialias,
                                    gpu_compat=vbench_gpu_compat)
            return encoder, {**info, "frames": f"{cfg.num_frames}, VBench 'middle' sampling",
                             "tokenizer": f"CLIP BPE (sha256 {CLIP_BPE_SHA256[:12]}), context {cfg.context_length}",
                             "antialias": bool(antialias), "vbench_gpu_compat": bool(vbench_gpu_compat)}

        # overall_consistency and temporal_style of one run share the model and the video embeddings.
        self.encoder, info = ctx.shared.model(key, build)
        self.info = dict(info)
        self._kind = "viclip-video|" + "|".join(map(str, key[1:]))
        self._reader = ctx.shared.register(self._kind)

    def video_embeddings(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> unit-norm float32 [B, D], computed once per clip and run."""
        def compute(idx: list[int]) -> list[torch.Tensor]:
            return list(self.encoder.videos(videos[idx] if len(idx) < len(videos) else videos))

        return torch.stack(self.context.shared.per_clip(self._kind, self._reader, videos, compute))

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)  # also checks that every clip has its prompt (inputs)
        vid = self.video_embeddings(videos)
        txt = self.encoder.texts(list(batch.prompts))
        # VBench: float32 product of the two unit vectors, then float().
        return {self.name: (vid * txt).sum(dim=-1).to(torch.float64)}


class OverallConsistency(_ViclipMetric):
    name = "overall_consistency"
    outputs = (Output("overall_consistency", higher_is_better=True, range=(-1.0, 1.0),
                      description="VBench overall_consistency: cosine of ViCLIP video and prompt embeddings "
                                  "(raw scale; VBench normalizes by 0.364)"),)


class TemporalStyle(_ViclipMetric):
    name = "temporal_style"
    outputs = (Output("temporal_style", higher_is_better=True, range=(-1.0, 1.0),
                      description="VBench temporal_style: cosine of ViCLIP video and prompt embeddings "
                                  "(raw scale; VBench normalizes by 0.364)"),)


METRICS = [OverallConsistency, TemporalStyle]

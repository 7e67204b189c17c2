"""VBench's aesthetic_quality: the LAION aesthetic predictor on CLIP ViT-L/14 frame embeddings.

As vbench/aesthetic_quality.py (laion_aesthetic) does it, per video:
- every decoded frame (VBench's `load_video` with no sampling: all frames, at any fps);
- VBench's `clip_transform(224)` on the float32 frames in [0, 255]: bicubic resize of the short
  side to 224 without antialiasing (VBench pins torchvision < 0.16), center crop, /255, CLIP's
  mean/std (vdmbench.features.openai_clip.vbench_clip_transform);
- OpenAI CLIP ViT-L/14 `encode_image` (VBench: openai-clip's `clip.load`, fp32 on CPU, fp16 on
  CUDA), in chunks of 32 frames, cast to float32 and L2-normalized;
- the LAION linear head (768 -> 1, `sa_0_4_vit_l_14_linear.pth`), each frame's score / 10;
- the video's value: the mean of its frames' scores.
Aggregation over videos: the plain mean of the per-video values (VBench's `aesthetic_avg / num`;
not weighted by frames), so the run value is the mean; it is already on VBench's 0..1 scale before
the normalization of scripts/constant.py (Min 0, Max 1).

Weights: the head via vdmbench.features.laion_aesthetic (VBench cache
`aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth`), CLIP via vdmbench.features.openai_clip
(`clip_model/ViT-L-14.pt`). Options: `weights` / `weights_sha256` (the head), `clip_weights` /
`clip_weights_sha256`, `pretrained: random` (both seeded by context.seed; not comparable),
`vbench_gpu_compat` (CUDA only: CLIP in fp16, as VBench on a GPU), `resize_antialias` (true:
VBench run with torchvision >= 0.17), `clip_model` (ViT-L-14; ViT-B-32 only with a head of its
width, e.g. for quick random-weight runs: never comparable).

Differences from VBench: VBench's `.squeeze()` makes a last chunk of exactly one frame 0-d, and
`torch.cat` then fails (videos of 33, 65, ... frames raise there); vdmbench scores them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric

VBENCH_FRAME_BATCH = 32  # frames per encode_image call in VBench (no effect on the values in fp32)
CLIP_MODELS = {"ViT-L-14": 768, "ViT-B-32": 512}  # image embedding width: the head's input


def _build(clip_model: str, pretrained: str, weights: str | None, weights_sha256: str | None,
           clip_weights: str | None, clip_weights_sha256: str | None, gpu_compat: bool, seed: int,
           device: str) -> tuple[Any, torch.nn.Linear, dict[str, Any]]:
    from vdmbench.features.laion_aesthetic import load_aesthetic_head, random_aesthetic_head
    from vdmbench.features.openai_clip import load_openai_clip

    width = CLIP_MODELS[clip_model]
    if pretrained == "random":
        head, head_info = random_aesthetic_head(seed, width), {"head_weights": f"random (seed {seed})"}
    else:  # the head first: a wrong file fails before CLIP's seconds of loading
        head, head_info = load_aesthetic_head(weights, weights_sha256, width)
    model, clip_info = load_openai_clip(clip_model, weights=clip_weights, weights_sha256=clip_weights_sha256,
                                        pretrained="random" if pretrained == "random" else "openai",
                                        device=device, seed=seed, vbench_gpu_compat=gpu_compat)
    return model, head.to(device), {**{f"clip_{k}": v for k, v in clip_info.items()}, **head_info}


class AestheticQuality(PerSampleMetric):
    name = "aesthetic_quality"
    outputs = (
        Output("aesthetic_quality", higher_is_better=True, range=None,
               description="VBench aesthetic_quality: mean over all frames of the LAION aesthetic score "
                           "(CLIP ViT-L/14 embedding, linear head) / 10; about 0..1"),
    )

    def __init__(self, context: MetricContext | None = None, *, weights: str | None = None,
                 weights_sha256: str | None = None, clip_weights: str | None = None,
                 clip_weights_sha256: str | None = None, pretrained: str = "openai",
                 vbench_gpu_compat: bool = False, resize_antialias: bool = False, clip_model: str = "ViT-L-14",
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        if pretrained not in ("openai", "random"):
            raise ConfigError(f"aesthetic_quality: pretrained must be 'openai' or 'random', got {pretrained!r}")
        if clip_model not in CLIP_MODELS:
            raise ConfigError(f"aesthetic_quality: clip_model must be one of {', '.join(CLIP_MODELS)}, got {clip_model!r}")
        ctx = self.context
        weights = weights or ctx.weights_path.get("laion_aesthetic")
        clip_weights = clip_weights or ctx.weights_path.get(f"openai_clip_{clip_model}")
        gpu_compat = bool(vbench_gpu_compat)
        key = ("laion-aesthetic", clip_model, pretrained, weights, weights_sha256, clip_weights, clip_weights_sha256,
               gpu_compat, ctx.seed if pretrained == "random" else None, ctx.device)
        self.clip, self.head, info = ctx.shared.model(key, lambda: _build(
            clip_model, pretrained, weights, weights_sha256, clip_weights, clip_weights_sha256, gpu_compat,
            ctx.seed, ctx.device))
        self.antialias = bool(resize_antialias)
        self.info = {"model": f"OpenAI CLIP {clip_model} + LAION aesthetic linear head", "pretrained": pretrained,
                     "clip_model": clip_model, **info, "resize_antialias": self.antialias,
                     "vbench_gpu_compat": gpu_compat, "frames": "all", "aggregation": "mean over videos"}

    @property
    def comparable(self) -> bool:
        return self.info["pretrained"] != "random" and self.info["clip_model"] == "ViT-L-14"

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info}
        if not self.comparable:
            d["label"] = ("not comparable with published numbers ("
                          + ("random weights" if self.info["pretrained"] == "random" else "not CLIP ViT-L/14") + ")")
        return d

    @torch.no_grad()
    def frame_scores(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> each frame's aesthetic score / 10, float64 [B, T]."""
        from vdmbench.features.openai_clip import encode_image, vbench_clip_transform

        b, t = videos.shape[:2]
        frames = videos.reshape(b * t, *videos.shape[2:])
        out = []
        for chunk in frames.split(VBENCH_FRAME_BATCH):
            pixels = vbench_clip_transform(chunk, 224, antialias=self.antialias)
            feats = F.normalize(encode_image(self.clip, pixels).to(torch.float32), dim=-1, p=2)
            out.append(self.head(feats.to(self.head.weight.device))[:, 0].to("cpu", torch.float64) / 10.0)
        return torch.cat(out).reshape(b, t)

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        return {"aesthetic_quality": self.frame_scores(videos).mean(dim=1)}


METRICS = [AestheticQuality]

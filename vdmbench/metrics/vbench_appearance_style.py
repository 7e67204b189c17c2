"""VBench's appearance_style (Semantic group): CLIP ViT-B/32 similarity of every frame with the style text.

As vbench/appearance_style.py computes it: the text is the prompt's auxiliary style (VBench's
prompt file: `auxiliary_info.appearance_style.appearance_style`, e.g. "Van Gogh style"), not the
prompt; every decoded frame goes through VBench's `clip_transform_Image(224)` (PIL bicubic resize
of the short side, which antialiases, center crop, ToTensor, CLIP mean/std); per frame the value is
CLIP's `logits_per_text / 100` = exp(logit_scale) * cos(image, text) / 100, with the checkpoint's
logit scale (an fp16 number: ln(100) at fp16 resolution is 4.60546875, whose exp is 100.0299, so
the value is not exactly the cosine); per video the mean over frames.

Aggregation over videos: VBench divides the sum over ALL frames of all videos by the number of
frames (`sim / cnt`), so the metric declares `aggregate_weight` = `appearance_style_weight`, the
clip's frame count. (VBench's multi-GPU path instead averages each video's LAST frame value, a
VBench bug; vdmbench follows the single-process result.)

Where the style comes from: the option `style:` (one text for every clip), else each prompt's suite
params `vbench.appearance_style.appearance_style` (what `vdmbench vbench import` keeps from VBench's
prompt file), read from the batch's `prompt_params` when the runner provides them.

Known differences from VBench: fp32 everywhere (VBench-on-GPU runs CLIP in fp16: option
`vbench_gpu_compat: true` on CUDA); the frames of a clip in one batch instead of one at a time
(float rounding only); the text is truncated at CLIP's 77 tokens where openai-clip would raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric
from vdmbench.metrics.vbench_consistency import shared_openai_clip, weight_output


def style_of(params: Mapping[str, Any] | None) -> str | None:
    """The VBench style text in a prompt's suite params (VBench's auxiliary info under "vbench")."""
    if not isinstance(params, Mapping):
        return None
    aux = params.get("vbench", {})
    entry = aux.get("appearance_style") if isinstance(aux, Mapping) else None
    if isinstance(entry, Mapping):
        entry = entry.get("appearance_style")
    return entry if isinstance(entry, str) and entry.strip() else None


class AppearanceStyle(PerSampleMetric):
    """VBench's appearance_style: CLIP ViT-B/32 similarity of the frames with the prompt's style text."""

    name = "appearance_style"
    outputs = (
        Output("appearance_style", higher_is_better=True, range=(-1.01, 1.01),
               description="VBench appearance style: mean over frames of CLIP ViT-B/32 logit_scale * cos(frame, "
                           "style text) / 100 (about the cosine), the style from the prompt's VBench auxiliary info"),
        weight_output("appearance_style_weight",
                      "frames of the clip: VBench averages over all frames of all videos, not over videos"),
    )
    aggregate_weight = "appearance_style_weight"

    def __init__(self, context: MetricContext | None = None, *, style: str | None = None,
                 weights: str | None = None, weights_sha256: str | None = None, pretrained: str | None = "openai",
                 vbench_gpu_compat: bool = False, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        if pretrained is not None and str(pretrained).lower() not in ("openai", "random", "none"):
            raise ConfigError(f"appearance_style: pretrained must be 'openai' or 'random', got {pretrained!r}")
        if style is not None and (not isinstance(style, str) or not style.strip()):
            raise ConfigError("appearance_style: style must be a non-empty text, e.g. 'Van Gogh style'")
        ctx = self.context
        self.style = style
        weights = weights or ctx.weights_path.get("openai-clip-ViT-B-32")  # the WeightSpec name
        self.model, info = shared_openai_clip(ctx, "ViT-B-32", weights=weights, weights_sha256=weights_sha256,
                                              pretrained=pretrained, vbench_gpu_compat=vbench_gpu_compat)
        self.info = dict(info)
        self._text_cache: dict[str, torch.Tensor] = {}

    @property
    def comparable(self) -> bool:
        return bool(self.info.get("comparable", False))

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), **self.info, "protocol": "VBench appearance_style",
             "style": self.style or "from each prompt's params: vbench.appearance_style.appearance_style"}
        if not self.comparable:
            d["label"] = "not comparable with published numbers"
        return d

    def styles(self, batch: ClipBatch) -> list[str]:
        if self.style is not None:
            return [self.style] * len(batch)
        params = list(getattr(batch, "prompt_params", None) or [])
        found = [style_of(p) for p in params] if len(params) == len(batch) else [None] * len(batch)
        missing = [i for i, s in enumerate(found) if s is None]
        if missing:
            which = batch.prompts[missing[0]] if len(batch.prompts) > missing[0] else f"clip {missing[0]}"
            raise MetricInputError(
                f"appearance_style: no style text for {which!r}. Give the metric a style (- name: appearance_style, "
                "style: 'Van Gogh style') or use a suite imported from VBench's prompt file (vdmbench vbench import), "
                "whose prompts keep it under params.vbench.appearance_style")
        return [s for s in found if s is not None]

    def text_embedding(self, text: str) -> torch.Tensor:
        from vdmbench.features.openai_clip import encode_text

        if text not in self._text_cache:
            self._text_cache[text] = encode_text(self.model, [text])[0].cpu()
        return self._text_cache[text]

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        from vdmbench.features.openai_clip import encode_image, logit_scale, vbench_clip_transform_image

        videos = self.check_batch(batch)
        styles = self.styles(batch)
        scale = logit_scale(self.model) / 100.0
        values = []
        for clip, text in zip(videos, styles):
            img = F.normalize(encode_image(self.model, vbench_clip_transform_image(clip, 224)).cpu().double(), dim=-1)
            txt = F.normalize(self.text_embedding(text).double(), dim=-1)
            values.append(float((scale * (img @ txt)).mean()))
        frames = float(videos.shape[1])
        return {"appearance_style": torch.tensor(values, dtype=torch.float64),
                "appearance_style_weight": torch.full((len(videos),), frames, dtype=torch.float64)}


METRICS = [AppearanceStyle]

"""Non-learned generators for the shapes suites, as `callable` adapter targets.

- ground_truth: the procedural clip the prompt and seed describe (the ceiling of every table);
- repeat_last:  prediction/interpolation baseline, each missing frame repeats the last given one;
- linear_blend: interpolation baseline, a per-pixel linear blend between the given frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from vdmbench.core.errors import AdapterError
from vdmbench.core.video import Video
from vdmbench.data.shapes import render, scene_from_prompt

if TYPE_CHECKING:  # the adapter layer calls these; they only read the request
    from vdmbench.adapters.base import GenerationRequest


def ground_truth(req: GenerationRequest) -> Video:
    params = {k: v for k, v in req.extra.items() if k in ("objects", "background", "background_seed")}
    scene = scene_from_prompt(req.prompt, req.seed, params)
    return Video(render(scene, req.num_frames, req.height, req.width).frames, req.fps)


def _known(req: GenerationRequest) -> dict[int, torch.Tensor]:
    if req.cond_frames is None or not req.cond_indices:
        raise AdapterError(f"this baseline needs given frames (task {req.task!r} gave none)")
    return dict(zip(req.cond_indices, req.cond_frames))


def repeat_last(req: GenerationRequest) -> Video:
    known = _known(req)
    first = min(known)
    frames, last = [], known[first]
    for t in range(req.num_frames):
        last = known.get(t, last)
        frames.append(last)
    return Video(torch.stack(frames), req.fps)


def linear_blend(req: GenerationRequest) -> Video:
    known = _known(req)
    idx = sorted(known)
    out = []
    for t in range(req.num_frames):
        a = max([i for i in idx if i <= t], default=idx[0])
        b = min([i for i in idx if i >= t], default=idx[-1])
        w = 0.0 if a == b else (t - a) / (b - a)
        out.append(((1 - w) * known[a].double() + w * known[b].double()).round().to(torch.uint8))
    return Video(torch.stack(out), req.fps)


__all__ = ["ground_truth", "linear_blend", "repeat_last"]

"""Ground truth and conditioning for the non-t2v tasks, from the procedural shapes generator.

The runner calls `prepare(suite, prompt, seed)` for every sample of a non-t2v suite:
- prediction:    the prompt's scene is rendered; the first `suite.context_frames` frames are given
                 (default: half the clip); ground truth = the whole clip;
- interpolation: the first and last frames are given; ground truth = the whole clip;
- i2v:           frame 0 is given; ground truth = the whole clip;
- editing:       a *source* clip is rendered from a different scene (prompt.params.source: a
                 caption, or by default the same layout, motion and background with another color
                 and shape), the model gets the whole source (cond_frames, no pinned indices) plus
                 the new prompt and `strength`; ground truth = the prompt's scene with the source's
                 layout, i.e. the ideal edit.
A prompt's `source_video` (a file) replaces the rendered clip where given.

The scene comes from the prompt text ("a red circle moving left") and prompt.params
(vdmbench.data.shapes.scene_from_prompt), with what is left open drawn from the sample's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.core.video import Video, read_video
from vdmbench.data import shapes as S

DEFAULT_STRENGTH = 0.6


@dataclass(frozen=True)
class Conditioning:
    ground_truth: Video | None
    cond_frames: torch.Tensor | None  # uint8 [K, H, W, 3]
    cond_indices: tuple[int, ...]
    source: Video | None
    strength: float | None


def _clip(suite: Any, text: str, seed: int, params: dict[str, Any]) -> Video:
    scene = S.scene_from_prompt(text, seed, params)
    return Video(S.render(scene, suite.num_frames, suite.height, suite.width).frames, suite.fps)


def _from_file(suite: Any, path: str) -> Video:
    v = read_video(path, num_frames=suite.num_frames)
    if (v.height, v.width) != (suite.height, suite.width):
        raise ConfigError(f"source_video {path}: {v.width}x{v.height}, the suite needs {suite.width}x{suite.height}")
    return v


def edit_source_scene(target: S.Scene, seed: int) -> S.Scene:
    """The scene an edit starts from: same layout, motion and background, other color and shape."""
    rng = np.random.default_rng([int(seed), S.PROMPT, 1])
    objs = []
    for o in target.objects:
        color = str(rng.choice([c for c in S.COLORS if c != o.color]))
        shape = str(rng.choice([s for s in S.SHAPES if s != o.shape]))
        objs.append(replace(o, color=color, shape=shape))
    return replace(target, objects=tuple(objs))


def prepare(suite: Any, prompt: Any, seed: int) -> Conditioning:
    """Conditioning of one (prompt, seed) sample of a suite (vdmbench.config.suite.Suite / Prompt)."""
    task, t_len = suite.task, suite.num_frames
    params = {**(suite.params or {}), **(prompt.params or {})}
    if task == "t2v":
        return Conditioning(None, None, (), None, None)
    if task == "editing":
        target = S.scene_from_prompt(prompt.text, seed, params)
        gt = Video(S.render(target, t_len, suite.height, suite.width).frames, suite.fps)
        if prompt.source_video:
            source = _from_file(suite, prompt.source_video)
        elif isinstance(params.get("source"), str):  # a caption for the source scene
            source = _clip(suite, params["source"], seed, {k: v for k, v in params.items() if k != "source"})
        else:
            src_scene = edit_source_scene(target, seed)
            source = Video(S.render(src_scene, t_len, suite.height, suite.width).frames, suite.fps)
        strength = suite.strength if suite.strength is not None else float(params.get("strength", DEFAULT_STRENGTH))
        return Conditioning(gt, source.frames, (), source, strength)
    gt = _from_file(suite, prompt.source_video) if prompt.source_video else _clip(suite, prompt.text, seed, params)
    if task == "prediction":
        k = suite.context_frames or max(1, t_len // 2)
        if not 1 <= k < t_len:
            raise ConfigError(f"suite {suite.name!r}: context_frames must be in [1, {t_len - 1}], got {k}")
        idx = tuple(range(k))
    elif task == "interpolation":
        if t_len < 3:
            raise ConfigError(f"suite {suite.name!r}: interpolation needs >= 3 frames, got {t_len}")
        idx = (0, t_len - 1)
    elif task == "i2v":
        idx = (0,)
    else:
        raise ConfigError(f"suite {suite.name!r}: unknown task {task!r}")
    return Conditioning(gt, gt.frames[list(idx)].contiguous(), idx, None, None)


def reference_clips(suite: Any) -> Iterator[torch.Tensor]:
    """Real clips for the suite's `reference: {source: shapes, n: 64, seed: 10000}` (FVD/KVD)."""
    ref = suite.reference or {}
    if ref.get("source") != "shapes":
        raise ConfigError(f"suite {suite.name!r}: reference source is {ref.get('source')!r}, not 'shapes'")
    n, seed = int(ref.get("n", 64)), int(ref.get("seed", 0))
    return S.reference_clips(n, seed, suite.num_frames, suite.height, suite.width)

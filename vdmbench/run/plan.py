"""The plan of a run: every (prompt, seed) of the suite (or of one shard) with its request and
the cache key its clip is stored under."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from vdmbench.adapters.base import GenerationRequest, model_cache_config, request_cache_key
from vdmbench.config.suite import Prompt, Suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.video import Video


@dataclass(frozen=True)
class PlannedSample:
    sample_id: str
    prompt: Prompt
    seed: int
    request: GenerationRequest
    cache_key: str
    ground_truth: Video | None = None
    source: Video | None = None


def plan_samples(suite: Suite, model_config: dict[str, Any], shard: tuple[int, int] | None = None) -> list[PlannedSample]:
    """Every sample of the suite (or of one shard), with its request and cache key."""
    conditioning: ModuleType | None = None
    if suite.task != "t2v":
        try:
            from vdmbench.data import conditioning
        except ImportError as e:
            raise ConfigError(f"suite {suite.name!r} (task {suite.task}) needs vdmbench.data.conditioning: {e}") from e
    planned = []
    cache_config = model_cache_config(model_config)
    for index, (prompt, seed) in enumerate(suite.samples()):
        if shard and index % shard[1] != shard[0]:
            continue
        gt = source = None
        cond_frames, cond_indices, strength = None, (), suite.strength
        if conditioning is not None:
            c = conditioning.prepare(suite, prompt, seed)
            gt, source = c.ground_truth, c.source
            cond_frames, cond_indices = c.cond_frames, tuple(c.cond_indices)
            strength = c.strength if c.strength is not None else strength
        req = GenerationRequest(
            prompt=prompt.text, seed=seed, num_frames=suite.num_frames, height=suite.height,
            width=suite.width, fps=suite.fps, task=suite.task, steps=suite.steps,
            guidance=suite.guidance, cond_frames=cond_frames, cond_indices=cond_indices,
            strength=strength, extra={"prompt_id": prompt.id, **suite.params, **prompt.params},
        )
        planned.append(
            PlannedSample(f"{prompt.id}-s{seed}", prompt, seed, req, request_cache_key(cache_config, req), gt, source)
        )
    return planned

"""Scoring: per-sample metric values of each generated chunk, and a run's statistics at its end
(per-sample means with bootstrap CIs, then set-level metrics such as FVD over every stored clip)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from vdmbench.core.errors import error_text
from vdmbench.core.stats import Estimate, clustered_bootstrap_mean
from vdmbench.core.video import Video
from vdmbench.core.video_loader import iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch, VideoMetric
from vdmbench.run.plan import PlannedSample
from vdmbench.run.writer import SampleFiles
from vdmbench.store.database import Store


def score_chunk(chunk: Sequence[PlannedSample], videos: dict[str, Video], errors: dict[str, str],
                info: dict[str, dict[str, Any]], metrics: Sequence[VideoMetric]) -> dict[str, dict[str, float]]:
    """Per-sample metric values of a chunk; clips of equal shape are scored together, and a group a
    metric fails on is scored clip by clip, so only the failing clip gets the error (in `errors`)."""
    values: dict[str, dict[str, float]] = {p.sample_id: {} for p in chunk}
    ready = [p for p in chunk if p.sample_id in videos and p.sample_id not in errors]
    groups: dict[tuple, list[PlannedSample]] = {}
    for p in ready:
        groups.setdefault(tuple(videos[p.sample_id].frames.shape), []).append(p)
    for group in groups.values():
        for m in metrics:
            try:
                _score_group(m, group, videos, info, values)
            except Exception:
                for p in group:  # find the clip that fails; the others keep their values
                    try:
                        _score_group(m, [p], videos, info, values)
                    except Exception as e:
                        errors[p.sample_id] = f"scoring {m.name}: {error_text(e)}"
    return values


def _score_group(metric: VideoMetric, group: list[PlannedSample], videos: dict[str, Video],
                 info: dict[str, dict[str, Any]], values: dict[str, dict[str, float]]) -> None:
    batch = ClipBatch(
        videos=torch.stack([videos[p.sample_id].frames for p in group]),
        prompts=[p.prompt.text for p in group],
        fps=[videos[p.sample_id].fps for p in group],
        sample_ids=[p.sample_id for p in group],
        ground_truth=_stack_optional([p.ground_truth for p in group]),
        source=_stack_optional([p.source for p in group]),
        cond_indices=[p.request.cond_indices for p in group],
        # Known for cached clips; a new clip's file is hashed after scoring, by the writer.
        sha256=_known_sha256([info[p.sample_id].get("sha256") for p in group]),
    )
    out = metric.sample_values(batch)
    metric.update(batch, values=out)
    for j, p in enumerate(group):
        for name, v in out.items():
            values[p.sample_id][name] = float(v[j])


def run_statistics(store: Store, files: SampleFiles, run_id: str, metrics: Sequence[VideoMetric], *,
                   batch_size: int, workers: int) -> list[dict[str, Any]]:
    """The run's statistics: per-sample metrics over prompts, then the set-level metrics (which
    need at least one successful clip)."""
    set_metrics = [m for m in metrics if not m.per_sample]
    set_level = (set_level_values(store, files, run_id, set_metrics, batch_size=batch_size, workers=workers)
                 if set_metrics and store.count_ok(run_id) else [])
    return per_sample_statistics(store, run_id, metrics) + set_level


def per_sample_statistics(store: Store, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
    """Each per-sample output's mean over the run with a 95% bootstrap CI over prompts."""
    rows: list[dict[str, Any]] = []
    table = store.sample_values(run_id)
    for m in metrics:
        if not m.per_sample:
            continue
        for out in m.outputs:
            sub = table[table.metric == out]
            if sub.empty:
                continue
            est, how = _mean_with_ci(sub.value.to_numpy(), sub.prompt_id.to_numpy())
            rows.append({
                "metric": out, "value": est.value, "ci_low": _finite(est.ci_low), "ci_high": _finite(est.ci_high),
                "n": est.n, "details": {**m.describe(), "higher_is_better": m.direction(out),
                                        "per_sample": True, "ci": how},
            })
    return rows


def _mean_with_ci(values: np.ndarray, prompts: np.ndarray) -> tuple[Estimate, str]:
    """The mean with a 95% bootstrap CI over prompts; with one prompt, over its seeds; with one
    sample, no CI (stored as NULL, never NaN) and the reason."""
    if len(np.unique(prompts)) >= 2:
        return clustered_bootstrap_mean(values, prompts), "bootstrap over prompts, 95%"
    if len(values) >= 2:
        return clustered_bootstrap_mean(values, np.arange(len(values))), "bootstrap over seeds (one prompt), 95%"
    return clustered_bootstrap_mean(values, prompts), "none: one sample has no CI"


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def set_level_values(store: Store, files: SampleFiles, run_id: str, metrics: Sequence[VideoMetric], *,
                     batch_size: int, workers: int) -> list[dict[str, Any]]:
    """Stream every successful clip of the run (including resumed ones) through set metrics."""
    if not metrics:
        return []
    samples = store.samples(run_id, ok_only=True)
    for m in metrics:
        m.reset()
    paths = [files.absolute(str(s.path)) for s in samples]  # ok samples always have a file
    for items in iterate_videos(paths, batch_size=batch_size, workers=workers):
        for idx, videos, fps in stack_by_shape(items):
            part = [samples[i] for i in idx]
            batch = ClipBatch(videos=videos, prompts=[s.prompt for s in part], fps=fps,
                              sample_ids=[s.sample_id for s in part], sha256=[s.sha256 or "" for s in part])
            for m in metrics:
                m.update(batch)
    rows = []
    for m in metrics:
        result = m.compute()
        details = {**m.describe(), "per_sample": False}
        for out in m.outputs:
            value = result[out] if isinstance(result, dict) else result
            rows.append({
                "metric": out, "value": float(value), "ci_low": _get_float(result, f"{out}_ci_low"),
                "ci_high": _get_float(result, f"{out}_ci_high"), "n": len(samples),
                "details": {**details, "higher_is_better": m.direction(out)},
            })
    return rows


def _get_float(result: Any, key: str) -> float | None:
    if isinstance(result, dict) and key in result:
        return float(result[key])
    return None


def _stack_optional(items: list[Video | None]) -> torch.Tensor | None:
    """The clips stacked, or None unless every sample has one (ground truth, source clips)."""
    frames = [v.frames for v in items if v is not None]
    return torch.stack(frames) if frames and len(frames) == len(items) else None


def _known_sha256(shas: list[str | None]) -> list[str]:
    return [s for s in shas if s] if all(shas) else []

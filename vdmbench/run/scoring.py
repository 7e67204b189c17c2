"""Scoring: per-sample metric values of each generated chunk, and a run's statistics at its end
(per-sample means with bootstrap CIs, then set-level metrics such as FVD over every stored clip).

A per-sample metric that declares `aggregate_weight` gets sum(w * v) / sum(w) over the run with a
bootstrap CI of that ratio over prompts; its weight output is stored per sample only (not a score,
so not in run_metrics; the total weight is in the weighted rows' details). Derived metrics (VBench's
Quality/Total scores) are computed from the stored per-sample values, after the per-sample rows."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from vdmbench.core.allocator import reuse_freed_memory
from vdmbench.core.errors import error_text
from vdmbench.core.stats import Estimate, clustered_bootstrap_mean, clustered_bootstrap_weighted_mean
from vdmbench.core.video import Video
from vdmbench.core.video_loader import iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch, VideoMetric
from vdmbench.metrics.base import DerivedMetric, PerSampleMetric
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
        prompt_params=[dict(p.prompt.params) for p in group],
    )
    out = metric.sample_values(batch)
    metric.update(batch, values=out)
    notes = metric.sample_notes(batch)
    for j, p in enumerate(group):
        for name, v in out.items():
            x = float(v[j])
            if math.isfinite(x):  # NaN: no value for this clip (one a filter excluded); never stored
                values[p.sample_id][name] = x
        if notes and notes[j]:
            info[p.sample_id].setdefault("metric_notes", {})[metric.name] = notes[j]


def run_statistics(store: Store, files: SampleFiles, run_id: str, metrics: Sequence[VideoMetric], *,
                   batch_size: int, workers: int) -> list[dict[str, Any]]:
    """The run's statistics: per-sample metrics over prompts, then the set-level metrics (which
    need at least one successful clip)."""
    set_metrics = [m for m in metrics if not m.per_sample and not isinstance(m, DerivedMetric)]
    set_level = (set_level_values(store, files, run_id, set_metrics, batch_size=batch_size, workers=workers)
                 if set_metrics and store.count_ok(run_id) else [])
    return per_sample_statistics(store, run_id, metrics) + set_level


def per_sample_statistics(store: Store, run_id: str, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
    """Each per-sample output's run value (the mean, or the weighted mean of a metric declaring
    `aggregate_weight`) with a 95% bootstrap CI over prompts; then the derived metrics' rows."""
    return table_statistics(store.sample_values(run_id), metrics)


def table_statistics(table: pd.DataFrame, metrics: Sequence[VideoMetric]) -> list[dict[str, Any]]:
    """per_sample_statistics of a long table of per-sample values (sample_id, prompt_id, metric,
    value), e.g. of files scored outside a run."""
    rows: list[dict[str, Any]] = []
    for m in metrics:
        if not m.per_sample:
            continue
        weight = m.aggregate_weight if isinstance(m, PerSampleMetric) else None
        weights = table[table.metric == weight].set_index("sample_id").value if weight is not None else None
        for out in m.outputs:
            if out == weight:
                continue  # a weight, not a score: stored per sample, its total in the details below
            sub = table[table.metric == out]
            if sub.empty:
                continue
            details = {**m.describe(), "higher_is_better": m.direction(out), "per_sample": True}
            if weights is not None:
                w = sub.sample_id.map(weights).fillna(0.0).to_numpy(dtype=np.float64)
                if not (w > 0).any():
                    continue  # every clip has weight 0 (e.g. single frames): no value to report
                est, how = _weighted_mean_with_ci(sub.value.to_numpy(), w, sub.prompt_id.to_numpy())
                details.update(aggregate_weight=weight, total_weight=float(w.sum()),
                               aggregation=f"sum({weight} * value) / sum({weight})")
            else:
                est, how = _mean_with_ci(sub.value.to_numpy(), sub.prompt_id.to_numpy())
            rows.append({
                "metric": out, "value": est.value, "ci_low": _finite(est.ci_low), "ci_high": _finite(est.ci_high),
                "n": est.n, "details": {**details, "ci": how},
            })
    for m in metrics:
        if isinstance(m, DerivedMetric):
            for r in m.derive(table, list(metrics)):
                rows.append({"metric": r.output, "value": r.value, "ci_low": _finite_or_none(r.ci_low),
                             "ci_high": _finite_or_none(r.ci_high), "n": r.n,
                             "details": {**m.describe(), **r.details, "higher_is_better": m.direction(r.output),
                                         "per_sample": False, "derived": True}})
    return rows


def _mean_with_ci(values: np.ndarray, prompts: np.ndarray) -> tuple[Estimate, str]:
    """The mean with a 95% bootstrap CI over prompts; with one prompt, over its seeds; with one
    sample, no CI (stored as NULL, never NaN) and the reason."""
    if len(np.unique(prompts)) >= 2:
        return clustered_bootstrap_mean(values, prompts), "bootstrap over prompts, 95%"
    if len(values) >= 2:
        return clustered_bootstrap_mean(values, np.arange(len(values))), "bootstrap over seeds (one prompt), 95%"
    return clustered_bootstrap_mean(values, prompts), "none: one sample has no CI"


def _weighted_mean_with_ci(values: np.ndarray, weights: np.ndarray, prompts: np.ndarray) -> tuple[Estimate, str]:
    """sum(w * v) / sum(w) with a 95% bootstrap CI of that ratio, resampling as _mean_with_ci."""
    used = weights > 0
    if len(np.unique(prompts[used])) >= 2:
        return clustered_bootstrap_weighted_mean(values, weights, prompts), "weighted; bootstrap over prompts, 95%"
    if used.sum() >= 2:
        return (clustered_bootstrap_weighted_mean(values, weights, np.arange(len(values))),
                "weighted; bootstrap over seeds (one prompt), 95%")
    return clustered_bootstrap_weighted_mean(values, weights, prompts), "none: one sample has no CI"


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None else _finite(x)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def set_level_values(store: Store, files: SampleFiles, run_id: str, metrics: Sequence[VideoMetric], *,
                     batch_size: int, workers: int) -> list[dict[str, Any]]:
    """Stream every successful clip of the run (including resumed ones) through set metrics."""
    metrics = [m for m in metrics if not isinstance(m, DerivedMetric)]  # they read no clips
    if not metrics:
        return []
    samples = store.samples(run_id, ok_only=True)
    for m in metrics:
        m.reset()
    paths = [files.absolute(str(s.path)) for s in samples]  # ok samples always have a file
    # Set-level metrics stream every clip through a CNN: on CPU, glibc keeping freed memory saves
    # re-faulting each batch's activations (core/allocator.py; values unchanged, ~20% less CPU).
    on_cpu = all(str(m.context.device).startswith("cpu") for m in metrics)
    with reuse_freed_memory(enabled=on_cpu):
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

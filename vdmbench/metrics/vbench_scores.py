"""VBench's scores: each dimension's normalized value, the Quality, Semantic and Total scores.

Constants and formulas from Vchitect/VBench `scripts/constant.py` (NORMALIZE_DIC, DIM_WEIGHT,
QUALITY_LIST, SEMANTIC_LIST, QUALITY_WEIGHT = 4, SEMANTIC_WEIGHT = 1) and `scripts/cal_final_score.py`:

    normalized[d] = (raw[d] - Min[d]) / (Max[d] - Min[d])        (not clipped: may leave [0, 1])
    Quality  = sum_d DIM_WEIGHT[d] * normalized[d] / sum_d DIM_WEIGHT[d]     over QUALITY_LIST
    Semantic = the same over SEMANTIC_LIST
    Total    = (4 * Quality + 1 * Semantic) / 5

`raw[d]` is the dimension's run value on VBench's scale (its mean over videos, or the frame-pair
weighted mean for the dimensions that declare `aggregate_weight`). VBench's script scores a missing
dimension as 0; here a group is computed over the dimensions present (weights renormalized) and is
comparable with the VBench leaderboard only when every dimension of its group is present (Total:
all 16) and every metric that went in is itself comparable (no random weights). Total is reported
only when both groups have at least one dimension.

The metric `vbench_scores` (a DerivedMetric: it reads no pixels) turns these into run rows with a
bootstrap CI over prompts that recomputes the whole formula from the per-sample values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vdmbench.core.stats import bootstrap_ratios
from vdmbench.metrics.base import DerivedMetric, DerivedRow, Output, PerSampleMetric, VideoMetric

if TYPE_CHECKING:
    import pandas as pd

SOURCE = "Vchitect/VBench scripts/constant.py and scripts/cal_final_score.py"

# (Min, Max) per dimension, VBench's NORMALIZE_DIC (keys with underscores, as its result files use).
NORMALIZE: dict[str, tuple[float, float]] = {
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
}
DIM_WEIGHT: dict[str, float] = {d: 1.0 for d in NORMALIZE} | {"dynamic_degree": 0.5}
QUALITY_DIMENSIONS = ("subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
                      "aesthetic_quality", "imaging_quality", "dynamic_degree")
SEMANTIC_DIMENSIONS = ("object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
                       "appearance_style", "temporal_style", "overall_consistency")
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0

# vdmbench outputs that hold a dimension's per-video value, preferred first: `temporal_flickering`
# (VBench's protocol, static videos left out) over the plain `flicker` (every clip).
OUTPUTS_OF_DIMENSION: dict[str, tuple[str, ...]] = {d: (d,) for d in NORMALIZE} | {
    "temporal_flickering": ("temporal_flickering", "flicker"),
}


def normalized(dimension: str, raw: float) -> float:
    """VBench's min-max normalization of one dimension's raw value (before DIM_WEIGHT)."""
    if dimension not in NORMALIZE:
        raise KeyError(f"{dimension!r} is not a VBench dimension; known: {', '.join(NORMALIZE)}")
    lo, hi = NORMALIZE[dimension]
    return (raw - lo) / (hi - lo)


@dataclass(frozen=True)
class GroupScore:
    """A Quality or Semantic score and which dimensions it is made of."""

    value: float
    dimensions: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def group_score(raw: Mapping[str, float], group: tuple[str, ...]) -> GroupScore | None:
    """DIM_WEIGHT-weighted mean of the normalized values of `group`'s dimensions present in `raw`,
    or None when none is."""
    present = tuple(d for d in group if d in raw)
    if not present:
        return None
    total = sum(DIM_WEIGHT[d] * normalized(d, raw[d]) for d in present)
    return GroupScore(total / sum(DIM_WEIGHT[d] for d in present), present,
                      tuple(d for d in group if d not in raw))


def quality_score(raw: Mapping[str, float]) -> GroupScore | None:
    return group_score(raw, QUALITY_DIMENSIONS)


def semantic_score(raw: Mapping[str, float]) -> GroupScore | None:
    return group_score(raw, SEMANTIC_DIMENSIONS)


def total_score(quality: float, semantic: float) -> float:
    """VBench's Total: (QUALITY_WEIGHT * Quality + SEMANTIC_WEIGHT * Semantic) / their sum."""
    return (QUALITY_WEIGHT * quality + SEMANTIC_WEIGHT * semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)


def vbench_scores(raw: Mapping[str, float]) -> dict[str, float]:
    """{"quality", "semantic", "total"} from dimensions' raw values, each where it can be made."""
    out: dict[str, float] = {}
    q, s = quality_score(raw), semantic_score(raw)
    if q is not None:
        out["quality"] = q.value
    if s is not None:
        out["semantic"] = s.value
    if q is not None and s is not None:
        out["total"] = total_score(q.value, s.value)
    return out


# --- run rows -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _DimensionSource:
    output: str  # the vdmbench output holding the per-video values
    weight: str | None  # its aggregate_weight output, or None (mean over videos)
    comparable: bool  # the producing metric's own comparability (random weights: False)


def dimension_sources(metrics: list[VideoMetric]) -> dict[str, _DimensionSource]:
    """Which of the run's metric outputs give each VBench dimension (the preferred output where
    two do: temporal_flickering over flicker)."""
    found: dict[str, _DimensionSource] = {}
    produced = {o.name: m for m in metrics if m.per_sample for o in m.outputs}
    for dim, candidates in OUTPUTS_OF_DIMENSION.items():
        for name in candidates:
            m = produced.get(name)
            if m is not None:
                weight = m.aggregate_weight if isinstance(m, PerSampleMetric) else None
                found[dim] = _DimensionSource(name, weight, m.comparable)
                break
    return found


class VBenchScores(DerivedMetric):
    """VBench's Quality, Semantic and Total scores of a run, from its VBench dimensions' values."""

    name = "vbench_scores"
    outputs = (
        Output("vbench_quality_score", higher_is_better=True,
               description="VBench Quality score: DIM_WEIGHT-weighted mean of the normalized Quality dimensions "
                           "present (details list them; comparable with the leaderboard only with all 7)"),
        Output("vbench_semantic_score", higher_is_better=True,
               description="VBench Semantic score over the Semantic dimensions present (comparable only with all 9)"),
        Output("vbench_total_score", higher_is_better=True,
               description="VBench Total score (4 * Quality + Semantic) / 5; comparable only with all 16 dimensions"),
    )
    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "vbench_quality_score": QUALITY_DIMENSIONS, "vbench_semantic_score": SEMANTIC_DIMENSIONS,
        "vbench_total_score": QUALITY_DIMENSIONS + SEMANTIC_DIMENSIONS,
    }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": SOURCE}

    def derive(self, samples: pd.DataFrame, metrics: list[VideoMetric]) -> list[DerivedRow]:
        sources = dimension_sources(metrics)
        if not sources:
            return []
        use_prompts = samples.prompt_id.nunique() >= 2
        cluster_of = samples.prompt_id if use_prompts else samples.sample_id
        clusters = sorted(set(cluster_of))
        index = {c: i for i, c in enumerate(clusters)}
        dims: list[str] = []
        num_rows, den_rows, counts = [], [], {}
        for dim, src in sources.items():
            sub = samples[samples.metric == src.output]
            if src.weight is not None:
                w = sub.sample_id.map(samples[samples.metric == src.weight].set_index("sample_id").value)
                w = w.fillna(0.0).to_numpy(dtype=np.float64)
            else:
                w = np.ones(len(sub))
            keep = w > 0
            if not keep.any():
                continue
            k = np.array([index[c] for c in cluster_of[sub.index]])[keep]
            v = sub.value.to_numpy(dtype=np.float64)[keep]
            num_rows.append(np.bincount(k, weights=w[keep] * v, minlength=len(clusters)))
            den_rows.append(np.bincount(k, weights=w[keep], minlength=len(clusters)))
            counts[dim] = int(keep.sum())
            dims.append(dim)
        if not dims:
            return []
        num, den = np.stack(num_rows), np.stack(den_rows)
        raw = dict(zip(dims, num.sum(1) / den.sum(1)))
        scores = vbench_scores(raw)
        how = ("bootstrap over prompts of the whole formula, 95%" if use_prompts else
               "bootstrap over samples (one prompt) of the whole formula, 95%")
        rows = []
        for output, key in (("vbench_quality_score", "quality"), ("vbench_semantic_score", "semantic"),
                            ("vbench_total_score", "total")):
            if key not in scores:
                continue
            est = bootstrap_ratios(num, den, _statistic(dims, key), n=int(samples.sample_id.nunique()))
            group = self.GROUPS[output]
            used = [d for d in group if d in raw]
            missing = [d for d in group if d not in raw]
            inputs_comparable = all(sources[d].comparable for d in used)
            reasons = ([f"dimensions missing: {', '.join(missing)}"] if missing else []) + (
                [] if inputs_comparable else ["some dimensions use random weights"])
            rows.append(DerivedRow(output, est.value, est.ci_low, est.ci_high, est.n, {
                "comparable": not reasons,
                "comparable_with_vbench_leaderboard": not reasons,
                "not_comparable_because": "; ".join(reasons) or None,
                "dimensions": {d: {"output": sources[d].output, "raw": float(raw[d]),
                                   "normalized": normalized(d, float(raw[d])), "dim_weight": DIM_WEIGHT[d],
                                   "aggregation": (f"weighted by {sources[d].weight}" if sources[d].weight
                                                   else "mean over videos"), "n": counts[d]}
                               for d in used},
                "missing_dimensions": missing, "ci": how,
            }))
        return rows


def _statistic(dims: list[str], key: str) -> Callable[[np.ndarray], np.ndarray]:
    """The score `key` as a function of the dimensions' raw values [D, ...] (vectorized over replicates)."""
    lo = np.array([NORMALIZE[d][0] for d in dims])
    hi = np.array([NORMALIZE[d][1] for d in dims])
    dim_w = np.array([DIM_WEIGHT[d] for d in dims])
    quality = np.array([d in QUALITY_DIMENSIONS for d in dims])

    def group(r: np.ndarray, mask: np.ndarray) -> np.ndarray:
        norm = (r - lo[:, None]) / (hi - lo)[:, None]
        return (dim_w[mask, None] * norm[mask]).sum(0) / dim_w[mask].sum()

    def stat(raw: np.ndarray) -> np.ndarray:
        r = raw.reshape(len(dims), -1)
        if key == "quality":
            out = group(r, quality)
        elif key == "semantic":
            out = group(r, ~quality)
        else:
            out = (QUALITY_WEIGHT * group(r, quality) + SEMANTIC_WEIGHT * group(r, ~quality)) / (
                QUALITY_WEIGHT + SEMANTIC_WEIGHT)
        return out.reshape(raw.shape[1:])

    return stat


METRICS = [VBenchScores]

"""Chart data the Plots page draws, without Streamlit: means with CIs, the log-scale rule, and
the per-dimension (tag) table and radar coordinates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vdmbench.dashboard.cells import clip_ci

LOG_SPAN = 100.0  # positive values spanning more than this factor get a log axis


def needs_log_scale(values: pd.Series | np.ndarray) -> bool:
    """True when every value is positive and max / min exceeds LOG_SPAN (e.g. FVD 40 vs 900 is not,
    KVD 0.001 vs 2 is): a linear axis would flatten the small ones to nothing."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=np.float64)
    return bool(len(v) >= 2 and (v > 0).all() and v.max() / v.min() > LOG_SPAN)


def means_with_cis(wide: pd.DataFrame, metric: str) -> pd.DataFrame:
    """model, value, ci_low, ci_high (clipped to the metric's range) for a bar chart."""
    if metric not in wide:
        return pd.DataFrame(columns=["model", "value", "ci_low", "ci_high"])
    lo = wide.get(f"{metric} lo", pd.Series(np.nan, index=wide.index))
    hi = wide.get(f"{metric} hi", pd.Series(np.nan, index=wide.index))
    clipped = [clip_ci(metric, float(a), float(b)) for a, b in zip(lo, hi)]
    out = pd.DataFrame({"model": wide.model, "value": pd.to_numeric(wide[metric], errors="coerce"),
                        "ci_low": [a for a, _ in clipped], "ci_high": [b for _, b in clipped]})
    return out.dropna(subset=["value"]).reset_index(drop=True)


def dimension_table(per_tag: pd.DataFrame) -> pd.DataFrame:
    """models x tags of a metric's mean (from plots.tag_means: model, tag, value, samples)."""
    if per_tag.empty:
        return pd.DataFrame()
    table = per_tag.pivot_table(index="model", columns="tag", values="value", aggfunc="first")
    table.columns.name = None
    return table


def radar_points(table: pd.DataFrame, higher_is_better: bool | None) -> pd.DataFrame:
    """Polygon vertices per model on a radar of the tags: radius = the model's value on that tag
    min-max normalized over the models (1 = best, flipped when lower is better), placed at the
    tag's angle; the first vertex repeats last to close the shape. Columns: model, tag, order,
    x, y, score, value, and ux, uy (the tag's axis direction, for its label)."""
    cols = ["model", "tag", "order", "x", "y", "score", "value", "ux", "uy"]
    if table.empty or table.shape[1] < 3:
        return pd.DataFrame(columns=cols)  # a radar of fewer than three axes says nothing
    tags = list(table.columns)
    rows = []
    for k, tag in enumerate(tags):
        v = table[tag].astype(float)
        lo, hi = v.min(), v.max()
        score = pd.Series(1.0, index=v.index) if hi == lo else (v - lo) / (hi - lo)
        if higher_is_better is False:
            score = 1.0 - score if hi != lo else score
        angle = math.pi / 2 - 2 * math.pi * k / len(tags)  # the first tag at the top, clockwise
        for model in table.index:
            s = float(score[model]) if np.isfinite(score[model]) else 0.0
            rows.append({"model": model, "tag": tag, "order": k, "x": s * math.cos(angle),
                         "y": s * math.sin(angle), "score": s, "value": float(v[model]),
                         "ux": math.cos(angle), "uy": math.sin(angle)})
    points = pd.DataFrame(rows, columns=cols)
    first = points[points.order == 0].assign(order=len(tags))
    return pd.concat([points, first], ignore_index=True).sort_values(["model", "order"]).reset_index(drop=True)

"""Chart data the Plots page draws, without Streamlit: means with CIs, the log-scale rule, the
per-dimension (tag) scores with CIs and radar coordinates, metric-vs-metric scatter points and the
sample-efficiency ladder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vdmbench.core.stats import clustered_bootstrap_mean
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


def dimension_scores(values: pd.DataFrame, tags: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (run, tag): the mean of `metric` over the run's ok samples carrying the tag, with the
    leaderboard's 95% CI (bootstrap over prompts, clipped to the metric's range). Columns: run_id,
    tag, value, ci_low, ci_high, samples, prompts."""
    cols = ["run_id", "tag", "value", "ci_low", "ci_high", "samples", "prompts"]
    part = values[values.metric == metric] if not values.empty else values
    if part.empty or tags.empty:
        return pd.DataFrame(columns=cols)
    joined = part.merge(tags, on=["run_id", "sample_id"])
    rows = []
    for (run_id, tag), g in joined.groupby(["run_id", "tag"], sort=True):
        est = clustered_bootstrap_mean(g.value.to_numpy(), g.prompt_id.astype(str).to_numpy(), n_boot=1000)
        lo, hi = clip_ci(metric, est.ci_low, est.ci_high)
        rows.append({"run_id": run_id, "tag": tag, "value": est.value, "ci_low": lo, "ci_high": hi,
                     "samples": len(g), "prompts": int(g.prompt_id.nunique())})
    return pd.DataFrame(rows, columns=cols)


def scatter_points(wide: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """model, x, y and their CI ends for a metric-vs-metric scatter (one point per model); the
    models that have both values."""
    def col(name: str, suffix: str = "") -> pd.Series:
        return pd.to_numeric(wide.get(f"{name}{suffix}", pd.Series(np.nan, index=wide.index)), errors="coerce")

    out = pd.DataFrame({"model": wide.model, "x": col(x), "y": col(y), "x_lo": col(x, " lo"), "x_hi": col(x, " hi"),
                        "y_lo": col(y, " lo"), "y_hi": col(y, " hi")})
    return out.dropna(subset=["x", "y"]).reset_index(drop=True)


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho of two columns (NaN with fewer than three points or a constant column)."""
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if len(both) < 3 or both.a.nunique() < 2 or both.b.nunique() < 2:
        return float("nan")
    return float(both.a.rank().corr(both.b.rank()))


def ladder_points(run_metrics: pd.DataFrame, model_of: dict[str, str]) -> pd.DataFrame:
    """The sample-efficiency ladder of set-level metrics (issue #18): one row per (run, metric, n)
    from `details["ladder"]` (value and CI at n = 64, 128, ..., N samples), with the run's model,
    `settled` and the `rule` sentence. Rows without a ladder (older files) are skipped."""
    cols = ["run_id", "model", "metric", "n", "value", "ci_low", "ci_high", "settled", "rule"]
    rows = []
    for r in run_metrics.itertuples():
        details = r.details if isinstance(r.details, dict) else {}
        ladder = details.get("ladder")
        if not isinstance(ladder, list):
            continue
        for step in ladder:
            if not isinstance(step, dict) or step.get("n") is None or step.get("value") is None:
                continue
            rows.append({"run_id": r.run_id, "model": model_of.get(r.run_id, r.run_id), "metric": r.metric,
                         "n": int(step["n"]), "value": float(step["value"]),
                         "ci_low": np.nan if step.get("ci_low") is None else float(step["ci_low"]),
                         "ci_high": np.nan if step.get("ci_high") is None else float(step["ci_high"]),
                         "settled": details.get("settled"), "rule": details.get("ladder_rule") or ""})
    return pd.DataFrame(rows, columns=cols)

"""The leaderboard table and the overall rank.

Overall rank (documented in docs/dashboard.md):
  1. per metric m with a known direction, over the models shown, min-max normalize so that the
     best model gets 1 and the worst 0:
        s = (v - min) / (max - min)   if higher is better
        s = (max - v) / (max - min)   if lower is better
     (every model gets 1 when all values are equal: the metric does not separate them);
  2. overall = sum_m w_m * s_m / sum_m w_m over the metrics the model has a value for, with the
     user's weights w_m >= 0 (default 1; metrics without a direction get no weight);
  3. rank 1 = highest overall score (ties share a rank).
Min-max keeps each metric's spread, unlike mean rank, so a near tie stays a near tie; it depends
on which models are shown, which is why the rank is recomputed for every filter.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from vdmbench.core.stats import clustered_bootstrap_mean

ARROW = {True: "↑", False: "↓"}


def directions(metrics_long: pd.DataFrame) -> dict[str, bool]:
    """metric -> higher_is_better, for the metrics that declare it."""
    out: dict[str, bool] = {}
    for metric, hib in zip(metrics_long.metric, metrics_long.higher_is_better):
        if hib is not None and not (isinstance(hib, float) and np.isnan(hib)):
            out[metric] = bool(hib)
    return out


def not_comparable(metrics_long: pd.DataFrame) -> list[str]:
    """Metrics computed with a random-weight extractor (not comparable with published numbers)."""
    return sorted(set(metrics_long.metric[~metrics_long.comparable.astype(bool)]))


def recompute_from_samples(values: pd.DataFrame) -> pd.DataFrame:
    """Run metrics recomputed from per-sample values (used when a tag filter drops samples).

    Same estimator as the runner: mean over samples, CI from the bootstrap over prompts.
    """
    rows = []
    for (run_id, metric), part in values.groupby(["run_id", "metric"], sort=True):
        est = clustered_bootstrap_mean(part.value.to_numpy(), part.prompt_id.to_numpy())
        rows.append({"run_id": run_id, "metric": metric, "value": est.value,
                     "ci_low": est.ci_low, "ci_high": est.ci_high, "n": est.n})
    return pd.DataFrame(rows, columns=["run_id", "metric", "value", "ci_low", "ci_high", "n"])


def wide_table(metrics_long: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model (its latest run), per metric a value column and a CI column."""
    base = runs[["model", "run_id", "finished_at"]].copy()
    if metrics_long.empty:
        return base
    m = metrics_long.merge(runs[["run_id"]], on="run_id")
    values = m.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    lo = m.pivot_table(index="run_id", columns="metric", values="ci_low", aggfunc="first")
    hi = m.pivot_table(index="run_id", columns="metric", values="ci_high", aggfunc="first")
    out = base.set_index("run_id")
    for metric in values.columns:
        out[metric] = values[metric]
        out[f"{metric} CI"] = [
            _ci_text(lo.get(metric, pd.Series(dtype=float)).get(r), hi.get(metric, pd.Series(dtype=float)).get(r))
            for r in out.index
        ]
    return out.reset_index()


def _ci_text(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"[{lo:.4g}, {hi:.4g}]"


def normalized_scores(wide: pd.DataFrame, metric_directions: Mapping[str, bool]) -> pd.DataFrame:
    """Per-metric scores in [0, 1], 1 = best model shown (NaN where a model lacks the metric)."""
    out = pd.DataFrame(index=wide.index)
    for metric, higher in metric_directions.items():
        if metric not in wide:
            continue
        v = pd.to_numeric(wide[metric], errors="coerce")
        lo, hi = v.min(), v.max()
        if pd.isna(lo):
            continue
        if hi == lo:
            out[metric] = np.where(v.isna(), np.nan, 1.0)
        else:
            out[metric] = (v - lo) / (hi - lo) if higher else (hi - v) / (hi - lo)
    return out


def overall_rank(
    wide: pd.DataFrame, metric_directions: Mapping[str, bool], weights: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """`wide` with `overall` (weighted mean of normalized scores) and `rank` (1 = best) added."""
    scores = normalized_scores(wide, metric_directions)
    w = pd.Series({m: float((weights or {}).get(m, 1.0)) for m in scores.columns}, dtype=float)
    w = w.clip(lower=0.0)
    out = wide.copy()
    if scores.empty or w.sum() <= 0:
        out["overall"] = np.nan
        out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
        return out
    present = scores.notna().astype(float)
    num = (scores.fillna(0.0) * w).sum(axis=1)
    den = (present * w).sum(axis=1)
    out["overall"] = np.where(den > 0, num / den.where(den > 0, 1.0), np.nan)
    out["rank"] = out["overall"].rank(ascending=False, method="min").astype("Int64")
    return out


def best_rows(wide: pd.DataFrame, metric_directions: Mapping[str, bool]) -> dict[str, list[int]]:
    """metric -> row positions holding its best value (for highlighting)."""
    out = {}
    for metric, higher in metric_directions.items():
        if metric not in wide:
            continue
        v = pd.to_numeric(wide[metric], errors="coerce")
        if v.notna().any():
            best = v.max() if higher else v.min()
            out[metric] = [i for i, x in enumerate(v) if x == best]
    return out


def column_label(metric: str, metric_directions: Mapping[str, bool], flagged: Sequence[str] = ()) -> str:
    """'flicker ↑' / 'fvd ↓ *' (star: not comparable with published numbers)."""
    label = f"{metric} {ARROW[metric_directions[metric]]}" if metric in metric_directions else metric
    return label + (" *" if metric in flagged else "")

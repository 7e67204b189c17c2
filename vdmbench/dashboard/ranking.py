"""The leaderboard table, the overall score and its rank bands.

Overall score (documented in docs/dashboard.md):
  1. per counted metric m with a known direction, over the models shown, min-max normalize so
     that the best model gets 1 and the worst 0:
        s = (v - min) / (max - min)   if higher is better
        s = (max - v) / (max - min)   if lower is better
     (every model gets 1 when all values are equal: the metric does not separate them);
  2. overall = coverage * sum_m w_m * s_m / sum_m w_m over the metrics the model has a value for,
     with the weights w_m >= 0 (the page starts duplicates, derived and not-comparable metrics at
     0, see metric_facts) and coverage = ok / planned samples (a failed sample scores 0);
  3. the same map applied to each metric's CI ends gives an interval; models whose intervals
     overlap share a rank band (rank_bands), rank 1 = highest overall score.
Min-max keeps each metric's spread, unlike mean rank, so a near tie stays a near tie; it depends
on which models are shown, which is why the score is recomputed for every filter.
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
    """One row per model (its latest run): per metric its value and the columns `<m> lo`, `<m> hi`
    (95% CI) and `<m> n` (samples behind it)."""
    base = runs[["model", "run_id", "finished_at"]].copy()
    if metrics_long.empty:
        return base
    m = metrics_long.merge(runs[["run_id"]], on="run_id")
    out = base.set_index("run_id")
    for col, suffix in (("value", ""), ("ci_low", " lo"), ("ci_high", " hi"), ("n", " n")):
        piv = m.pivot_table(index="run_id", columns="metric", values=col, aggfunc="first", dropna=False)
        for metric in piv.columns:
            out[f"{metric}{suffix}"] = pd.to_numeric(piv[metric], errors="coerce").reindex(out.index)
    return out.reset_index()


def normalized_scores(wide: pd.DataFrame, metric_directions: Mapping[str, bool],
                      column: str = "") -> pd.DataFrame:
    """Per-metric scores, 1 = best model shown, 0 = worst (NaN where a model lacks the metric).

    `column` "" normalizes the values; " lo" / " hi" put a CI end through the same map (the
    min and max of the values), so a CI becomes an interval on the same score scale."""
    out = pd.DataFrame(index=wide.index)
    for metric, higher in metric_directions.items():
        if metric not in wide:
            continue
        v = pd.to_numeric(wide[metric], errors="coerce")
        x = pd.to_numeric(wide.get(f"{metric}{column}", v), errors="coerce").fillna(v) if column else v
        lo, hi = v.min(), v.max()
        if pd.isna(lo):
            continue
        if hi == lo:
            out[metric] = np.where(v.isna(), np.nan, 1.0)
        else:
            out[metric] = (x - lo) / (hi - lo) if higher else (hi - x) / (hi - lo)
    return out


def _weighted(scores: pd.DataFrame, w: pd.Series) -> np.ndarray:
    present = scores.notna().astype(float)
    num = (scores.fillna(0.0) * w).sum(axis=1)
    den = (present * w).sum(axis=1)
    return np.where(den > 0, num / den.where(den > 0, 1.0), np.nan)


def overall_rank(
    wide: pd.DataFrame, metric_directions: Mapping[str, bool], weights: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """`wide` with `overall`, its interval `overall_low`/`overall_high`, `rank` (1 = best) and
    `rank_band` added.

    Failure policy: with a `coverage` column (ok samples / planned samples), every score is
    multiplied by it, i.e. a failed or missing sample counts as the worst model shown (0) on
    every metric: a failed sample can never help a model.
    The interval puts each metric's CI ends through the same min-max map and takes the same
    weighted mean (as if the metrics' errors were perfectly correlated: wide, never too narrow).
    """
    out = wide.copy()
    directions = {m: d for m, d in metric_directions.items() if float((weights or {}).get(m, 1.0)) > 0}
    scores = normalized_scores(wide, directions)
    w = pd.Series({m: float((weights or {}).get(m, 1.0)) for m in scores.columns}, dtype=float).clip(lower=0.0)
    if scores.empty or w.sum() <= 0:
        out["overall"] = out["overall_low"] = out["overall_high"] = np.nan
        out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["rank_band"] = ""
        return out
    coverage = pd.to_numeric(wide["coverage"], errors="coerce").fillna(1.0).to_numpy() if "coverage" in wide else 1.0
    worst_end = {m: (" lo" if d else " hi") for m, d in directions.items()}
    low = pd.DataFrame({m: normalized_scores(wide, {m: directions[m]}, worst_end[m]).get(m) for m in scores.columns})
    high = pd.DataFrame({m: normalized_scores(wide, {m: directions[m]}, " hi" if worst_end[m] == " lo" else " lo").get(m)
                         for m in scores.columns})
    out["overall"] = _weighted(scores, w) * coverage
    out["overall_low"] = _weighted(low, w) * coverage
    out["overall_high"] = _weighted(high, w) * coverage
    out["rank"] = out["overall"].rank(ascending=False, method="min").astype("Int64")
    out["rank_band"] = rank_bands(out.overall_low.to_numpy(), out.overall_high.to_numpy(), out.overall.to_numpy())
    return out


def rank_bands(low: np.ndarray, high: np.ndarray, point: np.ndarray) -> list[str]:
    """'1', '1-3': the ranks a model could hold given the intervals. Best rank = 1 + the models
    surely better (their low above its high); worst = the models not surely worse (their high at
    or above its low). Models whose intervals overlap share a band, never a strict order."""
    out = []
    ok = np.isfinite(point)
    for i in range(len(point)):
        if not ok[i]:
            out.append("")
            continue
        lo_i = low[i] if np.isfinite(low[i]) else point[i]
        hi_i = high[i] if np.isfinite(high[i]) else point[i]
        lows = np.where(np.isfinite(low), low, point)[ok]
        highs = np.where(np.isfinite(high), high, point)[ok]
        best = 1 + int(np.count_nonzero(lows > hi_i))
        worst = int(np.count_nonzero(highs >= lo_i))
        worst = max(best, worst)
        out.append(str(best) if best == worst else f"{best}\u2013{worst}")
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

"""Comparing runs: per-metric deltas with paired CIs and significance, per-prompt differences.

Runs of one suite share their (prompt, seed) pairs, so deltas are paired: the difference is taken
per sample and its mean gets a CI from the bootstrap over prompts (seeds of one prompt are not
independent), the same clustered resampling as the run metrics' CIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PairedDelta:
    delta: float  # mean over matched samples of (candidate - baseline)
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, from the bootstrap distribution of the mean difference
    n: int  # matched samples


def paired_delta(
    baseline: np.ndarray, candidate: np.ndarray, clusters: np.ndarray, *, n_boot: int = 2000,
    confidence: float = 0.95, seed: int = 0,
) -> PairedDelta:
    """Mean paired difference with a prompt-clustered bootstrap CI and a two-sided p-value."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diff.size == 0:
        raise ValueError("no matched samples")
    mean = float(diff.mean())
    uniq, inv = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(uniq)
    if k < 2:
        return PairedDelta(mean, float("nan"), float("nan"), float("nan"), int(diff.size))
    sums = np.bincount(inv, weights=diff, minlength=k)
    counts = np.bincount(inv, minlength=k).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    if np.all(boot == 0):
        p = 1.0
    else:
        # Share of replicates on the far side of zero, doubled; +1 terms keep p > 0 (finite n_boot).
        tail = min((boot <= 0).sum(), (boot >= 0).sum())
        p = min(1.0, 2 * (tail + 1) / (n_boot + 1))
    return PairedDelta(mean, float(lo), float(hi), float(p), int(diff.size))


def matched(values: pd.DataFrame, base_run: str, other_run: str, metric: str) -> pd.DataFrame:
    """Per (prompt, seed) values of one metric in two runs, only where both have a value."""
    cols = ["prompt_id", "seed", "value"]
    a = values[(values.run_id == base_run) & (values.metric == metric)][cols]
    b = values[(values.run_id == other_run) & (values.metric == metric)][cols]
    return a.merge(b, on=["prompt_id", "seed"], suffixes=("_base", "_other"))


def metric_deltas(
    values: pd.DataFrame,
    run_metrics: pd.DataFrame,
    run_ids: Sequence[str],
    metric_directions: Mapping[str, bool],
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """For every run after the first (the baseline) and every metric: the delta, its CI, p, verdict."""
    base = run_ids[0]
    base_values = run_metrics[run_metrics.run_id == base].set_index("metric").value
    rows = []
    for other in run_ids[1:]:
        other_values = run_metrics[run_metrics.run_id == other].set_index("metric").value
        for metric in sorted(set(base_values.index) | set(other_values.index)):
            row = {"run": other, "metric": metric, "baseline": base_values.get(metric),
                   "value": other_values.get(metric), "delta": np.nan, "ci_low": np.nan,
                   "ci_high": np.nan, "p_value": np.nan, "n": 0, "significant": False,
                   "verdict": "no paired test (set-level metric)"}
            pairs = matched(values, base, other, metric)
            if len(pairs):
                d = paired_delta(pairs.value_base.to_numpy(), pairs.value_other.to_numpy(),
                                 pairs.prompt_id.to_numpy())
                sig = bool(d.p_value < alpha) if not np.isnan(d.p_value) else False
                row.update(delta=d.delta, ci_low=d.ci_low, ci_high=d.ci_high, p_value=d.p_value, n=d.n,
                           significant=sig, verdict=_verdict(d.delta, sig, metric_directions.get(metric)))
            elif row["baseline"] is not None and row["value"] is not None:
                row["delta"] = row["value"] - row["baseline"]
            rows.append(row)
    return pd.DataFrame(rows)


def _verdict(delta: float, significant: bool, higher_is_better: bool | None) -> str:
    if not significant:
        return "no significant change"
    if higher_is_better is None:
        return "significant change"
    return "better" if (delta > 0) == higher_is_better else "worse"


def per_prompt(values: pd.DataFrame, run_ids: Sequence[str], labels: Mapping[str, str], metric: str) -> pd.DataFrame:
    """One row per (prompt, seed): each run's value, and the difference, largest first.

    With two runs the difference is (second - first); with more, the spread (max - min).
    """
    part = values[(values.metric == metric) & values.run_id.isin(run_ids)]
    if part.empty:
        return pd.DataFrame(columns=["prompt_id", "seed", "prompt", "difference"])
    wide = part.pivot_table(index=["prompt_id", "seed"], columns="run_id", values="value", aggfunc="first")
    wide = wide.reindex(columns=[r for r in run_ids if r in wide.columns])
    wide.columns.name = None
    if len(run_ids) == 2 and wide.shape[1] == 2:
        diff = wide.iloc[:, 1] - wide.iloc[:, 0]
    else:
        diff = wide.max(axis=1) - wide.min(axis=1)
    wide = wide.rename(columns=lambda r: labels.get(r, r))
    wide["difference"] = diff
    prompts = part.drop_duplicates(["prompt_id", "seed"]).set_index(["prompt_id", "seed"]).prompt
    wide.insert(0, "prompt", prompts.reindex(wide.index))
    wide = wide.reset_index()
    order = wide.difference.abs().sort_values(ascending=False, na_position="last").index
    return wide.loc[order].reset_index(drop=True)

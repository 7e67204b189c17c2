"""Run-level statistics: means with bootstrap confidence intervals.

Per-sample metrics are clustered by prompt (several seeds of one prompt are not independent
draws of the suite), so the CI resamples prompts: the run value is the mean over samples, and
each bootstrap replicate redraws prompts with replacement. Seeded, so results are bit-stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int


def clustered_bootstrap_mean(
    values: np.ndarray,
    clusters: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of `values` with a percentile CI from resampling whole clusters (prompts)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no values to summarize")
    value = float(values.mean())
    uniq, inv = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(uniq)
    if k < 2:
        return Estimate(value, float("nan"), float("nan"), int(values.size))
    sums = np.bincount(inv, weights=values, minlength=k)
    counts = np.bincount(inv, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_boot, k))
    boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return Estimate(value, float(lo), float(hi), int(values.size))

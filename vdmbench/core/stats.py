"""Run-level statistics: means with bootstrap confidence intervals, and two-run comparisons.

Per-sample metrics are clustered by prompt (several seeds of one prompt are not independent
draws of the suite), so the CI resamples prompts: the run value is the mean over samples, and
each bootstrap replicate redraws prompts with replacement. Seeded, so results are bit-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import norm as _norm


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


# --- two-run comparisons (the release gate) ----------------------------------------------------
#
# Every comparison is oriented so that a positive difference means "candidate better": the gate
# then asks one-sided questions about a signed effect `delta` against a tolerance `tol >= 0`:
#   regression  H0: delta >= -tol   (rejected: the candidate is worse by more than the tolerance)
#   improvement H0: delta <= +tol   (rejected: the candidate is better by more than the tolerance)
#   non-inferiority, H0: delta < -tol (rejected: a regression beyond the tolerance is ruled out)
# p-values come from the same bootstrap replicates as the CI, so a verdict never contradicts the
# interval that is printed next to it.

STATISTICS = ("mean", "median")


@dataclass(frozen=True)
class Comparison:
    """Candidate minus baseline, oriented so that positive means better."""

    delta: float  # oriented effect (candidate - baseline) * (+1 if higher is better else -1)
    ci_low: float  # two-sided CI of the oriented effect
    ci_high: float
    p_regression: float  # one-sided, unadjusted
    p_improvement: float
    p_noninferior: float
    effect_size: float  # Cohen's d_z of the paired differences (oriented); nan for set-level metrics
    n: int  # resampling units (pairs) or samples behind the set-level estimate
    method: str


def _statistic(name: str):
    if name == "mean":
        return lambda x, axis=-1: np.mean(x, axis=axis)
    if name == "median":
        return lambda x, axis=-1: np.median(x, axis=axis)
    raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {name!r}")


def _bootstrap_p(reps: np.ndarray, tol: float) -> tuple[float, float, float]:
    """(p_regression, p_improvement, p_noninferior) from replicates of the oriented effect.

    The add-one form never gives p = 0, which a finite number of replicates cannot support."""
    b = len(reps)
    p_reg = (1 + np.count_nonzero(reps >= -tol)) / (b + 1)
    p_imp = (1 + np.count_nonzero(reps <= tol)) / (b + 1)
    p_ni = (1 + np.count_nonzero(reps < -tol)) / (b + 1)
    return float(p_reg), float(p_imp), float(p_ni)


def paired_bootstrap(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    seeds: np.ndarray | None = None,
    higher_is_better: bool = True,
    tolerance: float = 0.0,
    statistic: str = "mean",
    n_boot: int = 4000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of `statistic(candidate) - statistic(baseline)` over matched samples.

    Element i of both arrays is the same (prompt, seed), so a resample draws pairs, keeping each
    sample's shared difficulty on both sides: far less noise than two independent bootstraps.
    With `clusters` (prompt ids) whole prompts are drawn instead, for suites that stand for a
    population of prompts rather than a fixed list. With `clusters` and `seeds` both, prompts and
    seeds are drawn independently and every (prompt, seed) combination drawn is kept (a crossed
    or "pigeonhole" bootstrap): generators that seed their noise by the seed alone give every
    prompt the same noise for a seed, so samples sharing a seed are correlated, and resampling
    pairs would understate the noise (mean only).

    The plain percentile bootstrap is too narrow for few pairs (its variance is (n-1)/n of the
    unbiased one), so the replicates' spread about the estimate is widened by sqrt(n/(n-1)).
    """
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if base.shape != cand.shape or base.ndim != 1:
        raise ValueError(f"paired values must be 1-d arrays of equal length, got {base.shape} and {cand.shape}")
    if base.size == 0:
        raise ValueError("no pairs to compare")
    if not (np.isfinite(base).all() and np.isfinite(cand).all()):
        raise ValueError("paired values contain NaN or infinity")
    stat = _statistic(statistic)
    sign = 1.0 if higher_is_better else -1.0
    delta = sign * float(stat(cand) - stat(base))
    diffs = sign * (cand - base)
    sd = float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan")
    effect = float(diffs.mean() / sd) if sd > 0 else (0.0 if np.all(diffs == 0) else float("nan"))

    rng = np.random.default_rng(seed)
    if clusters is not None and seeds is not None and len(np.unique(seeds)) < 2:
        seeds = None  # one seed: nothing is shared across prompts, so prompts are the units
    if clusters is not None and seeds is not None and len(np.unique(clusters)) < 2:
        clusters, seeds = seeds, None
    if clusters is not None and seeds is not None:
        return _crossed(base, cand, np.asarray(clusters), np.asarray(seeds), sign, delta, effect, statistic,
                        tolerance, n_boot, confidence, rng)
    units: list[np.ndarray] = []  # clustered: the pairs of each prompt
    if clusters is None:
        k = int(base.size)  # one pair per unit
        method = "paired bootstrap over prompt x seed"
    else:
        _, inv = np.unique(np.asarray(clusters), return_inverse=True)
        units = [np.flatnonzero(inv == c) for c in range(inv.max() + 1)]
        k = len(units)
        method = "paired bootstrap over prompts (clustered)"
    if k < 2:
        nan = float("nan")
        return Comparison(delta, nan, nan, nan, nan, nan, effect, int(base.size), method)

    draws = rng.integers(0, k, size=(n_boot, k))
    if clusters is None:
        idx = draws
        reps = sign * (stat(cand[idx]) - stat(base[idx]))
    else:
        reps = np.empty(n_boot)
        for b in range(n_boot):
            idx = np.concatenate([units[j] for j in draws[b]])
            reps[b] = sign * (stat(cand[idx]) - stat(base[idx]))
    reps = delta + (reps - delta) * np.sqrt(k / (k - 1))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    p_reg, p_imp, p_ni = _bootstrap_p(reps, tolerance)
    return Comparison(delta, float(lo), float(hi), p_reg, p_imp, p_ni, effect, int(base.size), method)


def _crossed(base, cand, prompts, seeds, sign, delta, effect, statistic, tolerance, n_boot, confidence, rng):
    if statistic != "mean":
        raise ValueError("the crossed (prompt x seed) bootstrap supports statistic 'mean' only")
    _, inv_p = np.unique(prompts, return_inverse=True)
    _, inv_s = np.unique(seeds, return_inverse=True)
    kp, ks = int(inv_p.max()) + 1, int(inv_s.max()) + 1
    method = "paired crossed bootstrap over prompts x seeds"
    k = min(kp, ks)
    if k < 2:
        nan = float("nan")
        return Comparison(delta, nan, nan, nan, nan, nan, effect, int(base.size), method)
    # Multiplicity of each prompt and seed in each replicate; a pair's weight is their product.
    wp = np.stack([np.bincount(r, minlength=kp) for r in rng.integers(0, kp, size=(n_boot, kp))])
    ws = np.stack([np.bincount(r, minlength=ks) for r in rng.integers(0, ks, size=(n_boot, ks))])
    w = (wp[:, inv_p] * ws[:, inv_s]).astype(np.float64)
    total = w.sum(axis=1)
    ok = total > 0  # a draw can miss every observed pair when the grid has holes
    reps = sign * (w[ok] @ (cand - base)) / total[ok]
    # Both factors are underestimated by (k-1)/k; widen by the smaller factor count (conservative).
    reps = delta + (reps - delta) * np.sqrt(k / (k - 1))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    p_reg, p_imp, p_ni = _bootstrap_p(reps, tolerance)
    return Comparison(delta, float(lo), float(hi), p_reg, p_imp, p_ni, effect, int(base.size), method)


def compare_estimates(
    base_value: float,
    base_ci: tuple[float, float],
    cand_value: float,
    cand_ci: tuple[float, float],
    *,
    higher_is_better: bool = False,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    ci_confidence: float = 0.95,
    n: int = 0,
) -> Comparison:
    """Compare two set-level estimates (FVD, KVD) from their own bootstrap CIs.

    Set-level metrics have no per-sample values to pair, so each run's stored bootstrap interval
    (over its generated clips) is read as a normal standard error, and the two runs, independent
    draws, combine as sqrt(se_b^2 + se_c^2)."""
    z_ci = float(_norm.ppf(0.5 + ci_confidence / 2))
    se_b = (base_ci[1] - base_ci[0]) / (2 * z_ci)
    se_c = (cand_ci[1] - cand_ci[0]) / (2 * z_ci)
    sign = 1.0 if higher_is_better else -1.0
    delta = sign * (cand_value - base_value)
    se = float(np.hypot(se_b, se_c))
    method = "normal approximation from each run's bootstrap CI"
    if not np.isfinite(se) or se <= 0:
        nan = float("nan")
        return Comparison(delta, nan, nan, nan, nan, nan, nan, n, method)
    z = float(_norm.ppf(0.5 + confidence / 2))
    p_reg = float(_norm.cdf((delta + tolerance) / se))
    p_imp = float(_norm.sf((delta - tolerance) / se))
    p_ni = float(_norm.sf((delta + tolerance) / se))
    return Comparison(delta, delta - z * se, delta + z * se, p_reg, p_imp, p_ni, float("nan"), n, method)


# --- multiple testing -----------------------------------------------------------------------------

CORRECTIONS = ("holm", "bh", "bonferroni", "none")


def adjust_pvalues(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values; NaN entries are left out of the family and stay NaN.

    holm: family-wise error rate (any false alarm among the metrics), valid under any dependence,
    which matters here because metrics of one run are strongly correlated. bh: Benjamini-Hochberg
    false discovery rate (assumes positive dependence). bonferroni, none: as named."""
    values = np.asarray(p, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(values))
    m = len(ok)
    if m == 0:
        return out
    q = values[ok]
    if method == "none":
        adj = q
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method == "holm":
        order = np.argsort(q, kind="stable")
        steps = q[order] * (m - np.arange(m))
        adj_sorted = np.minimum(np.maximum.accumulate(steps), 1.0)
        adj = np.empty(m)
        adj[order] = adj_sorted
    elif method == "bh":
        order = np.argsort(q, kind="stable")
        steps = q[order] * m / np.arange(1, m + 1)
        adj_sorted = np.minimum(np.minimum.accumulate(steps[::-1])[::-1], 1.0)
        adj = np.empty(m)
        adj[order] = adj_sorted
    else:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    out[ok] = adj
    return out

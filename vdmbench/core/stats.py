"""Run-level statistics: means with bootstrap confidence intervals, and two-run comparisons.

Per-sample metrics are clustered by prompt (several seeds of one prompt are not independent
draws of the suite), so the CI resamples prompts: the run value is the mean over samples, and
each bootstrap replicate redraws prompts with replacement. Seeded, so results are bit-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


def cluster_multiplicities(k: int, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """[n_boot, k] counts: how often each of k clusters is drawn in each bootstrap replicate.
    The same draws as clustered_bootstrap_mean makes for the same (k, n_boot, seed)."""
    draws = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    counts = np.zeros((n_boot, k))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts


def bootstrap_ratios(
    numerators: np.ndarray,
    denominators: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    n: int,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A statistic of D ratios of cluster sums, with a percentile CI from resampling clusters.

    `numerators`, `denominators`: [D, K] per-cluster sums (e.g. sum of w * v and of w over a
    prompt's samples). The estimate is statistic(num.sum(1) / den.sum(1)) (statistic maps [D, ...]
    to [...]; default: the single ratio, D = 1); each replicate redraws the K clusters with
    replacement and recomputes the whole statistic. A replicate in which some ratio has no weight
    (its clusters were not drawn) is left out. `n`: the number of samples behind the estimate."""
    num = np.atleast_2d(np.asarray(numerators, dtype=np.float64))
    den = np.atleast_2d(np.asarray(denominators, dtype=np.float64))
    if num.shape != den.shape or num.size == 0:
        raise ValueError(f"numerators and denominators must be equal non-empty [D, K] arrays, got {num.shape}, {den.shape}")
    stat = statistic if statistic is not None else (lambda r: r[0])
    totals = den.sum(axis=1)
    if np.any(totals == 0):
        raise ValueError("a ratio has zero total weight")
    value = float(stat(num.sum(axis=1) / totals))
    k = num.shape[1]
    if k < 2:
        return Estimate(value, float("nan"), float("nan"), n)
    counts = cluster_multiplicities(k, n_boot=n_boot, seed=seed)
    rep_den = den @ counts.T  # [D, n_boot]
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.asarray(stat((num @ counts.T) / rep_den), dtype=np.float64)
    reps = reps[np.all(rep_den > 0, axis=0) & np.isfinite(reps)]
    if reps.size == 0:
        return Estimate(value, float("nan"), float("nan"), n)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return Estimate(value, float(lo), float(hi), n)


def clustered_bootstrap_weighted_mean(
    values: np.ndarray,
    weights: np.ndarray,
    clusters: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """sum(w * v) / sum(w) with a percentile CI from resampling whole clusters (prompts): the
    weighted counterpart of clustered_bootstrap_mean (equal weights give the same value and CI).
    Samples of weight 0 take no part (their value may be NaN); `n` counts the others."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    clusters = np.asarray(clusters)
    if values.shape != weights.shape or values.shape != clusters.shape:
        raise ValueError(f"values, weights and clusters must have one shape, got {values.shape}, {weights.shape}, "
                         f"{clusters.shape}")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("weights must be finite and >= 0")
    keep = weights > 0
    if not keep.any():
        raise ValueError("no sample has a positive weight")
    values, weights, clusters = values[keep], weights[keep], clusters[keep]
    _, inv = np.unique(clusters, return_inverse=True)
    k = int(inv.max()) + 1
    num = np.bincount(inv, weights=weights * values, minlength=k)
    den = np.bincount(inv, weights=weights, minlength=k)
    return bootstrap_ratios(num[None], den[None], n=int(values.size), n_boot=n_boot, confidence=confidence,
                            seed=seed)


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

"""The sample-size ladder of a set-level metric (FVD, KVD, JEDi): its value and 95% CI on nested
subsets of the generated clips, and whether the value has settled.

Why: a set metric's value depends on how many clips it saw (FVD is biased upwards by roughly
tr(cov) / n; MMD estimates are noisy at small n), so a number is only worth reporting once more
clips would not move it beyond its own error bar. The ladder shows that curve; `settled` says
whether the last doubling still moved the value.

Sizes: 64, 128, 256, ... below n, then n itself. Below 128 clips that would leave no size at or
below n / 2 (so no doubling to judge), and the ladder is n // 4, n // 2, n instead (sizes under
MIN_SIZE dropped). The subsets are nested prefixes of ONE permutation of the clips, drawn with
the run's seed, so the curve is smooth (each size adds clips to the last) and reproducible. The
reference side is always the full reference set: only the generated side is subsampled.

The rule (RULE, stored with every ladder): settled when |v(n) - v(m)| <= half the width of the
95% CI at n, where m is the largest ladder size <= n / 2; without a CI, when |v(n) - v(m)| <=
5% of |v(n)|. For a metric whose value does not depend on n, v(m) - v(n) on nested subsets has
about the standard deviation of v(n) itself (var(v(m)) - var(v(n)) with var ~ 1/n), so the rule
calls such a metric settled about 95% of the time; a bias that changes with n larger than the
sampling noise makes it "not settled".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FIRST = 64  # the smallest size of a full ladder
MIN_SIZE = 2  # FVD needs two clips for a covariance; the others use the same floor
RELATIVE_TOLERANCE = 0.05  # the rule's tolerance without a CI
RULE = ("settled when the value at n differs from the value at the largest ladder size <= n/2 by at most "
        "half the width of its 95% CI at n (without a CI: by at most 5% of the value); subsets are nested "
        "prefixes of one seeded permutation of the generated clips, the reference set is always used in full")

Interval = tuple[float, float | None, float | None]  # value, ci_low, ci_high


# The keys ladder_details() adds to a set metric's details.
LADDER_KEYS = ("ladder", "ladder_rule", "settled", "ladder_warning")


def ladder_sizes(n: int) -> list[int]:
    """64, 128, ... below n, then n; for n < 128: n // 4, n // 2, n. Sizes below MIN_SIZE dropped."""
    if n < MIN_SIZE:
        return []
    if n < 2 * FIRST:
        sizes = [n // 4, n // 2, n]
    else:
        sizes = [FIRST * 2**k for k in range(n.bit_length()) if FIRST * 2**k < n] + [n]
    return sorted({s for s in sizes if s >= MIN_SIZE})


def ladder_permutation(n: int, seed: int) -> np.ndarray:
    """The order in which clips enter the ladder: subset k is permutation[:k]."""
    return np.random.default_rng(seed).permutation(n)


def build_ladder(n: int, seed: int, full: Interval, evaluate: Callable[[np.ndarray], Interval]) -> list[dict[str, Any]]:
    """[{"n", "value", "ci_low", "ci_high"}, ...] at ladder_sizes(n). The entry at n is `full` (the
    metric's headline result, unchanged); every other one is `evaluate(indices)` on the subset
    `ladder_permutation(n, seed)[:k]`, in that order (what a fresh metric fed those clips computes)."""
    perm = ladder_permutation(n, seed)
    out = []
    for k in ladder_sizes(n):
        value, lo, hi = full if k == n else evaluate(perm[:k])
        out.append({"n": int(k), "value": float(value), "ci_low": _float_or_none(lo), "ci_high": _float_or_none(hi)})
    return out


def judge_ladder(ladder: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """(settled, why not) by RULE; the reason is one line for the terminal, None when settled."""
    if not ladder:
        return False, "no ladder (fewer than 2 clips)"
    last = ladder[-1]
    n, v = last["n"], last["value"]
    below = [r for r in ladder if 2 * r["n"] <= n]
    if not below:
        return False, f"{n} clips are too few to judge (no subset of at most {n // 2} clips with {MIN_SIZE} or more)"
    prev = below[-1]
    change = abs(v - prev["value"])
    if last["ci_low"] is not None and last["ci_high"] is not None:
        tol, what = (last["ci_high"] - last["ci_low"]) / 2, "half its 95% CI"
    else:
        tol, what = RELATIVE_TOLERANCE * abs(v), f"{RELATIVE_TOLERANCE:.0%} of the value (no CI)"
    if change <= tol:
        return True, None
    return False, (f"{prev['value']:.4g} at {prev['n']} clips -> {v:.4g} at {n}: the last doubling moved it by "
                   f"{change:.3g}, more than {what} ({tol:.3g}); more clips would still change it")


def ladder_details(metric: str, ladder: list[dict[str, Any]]) -> dict[str, Any]:
    """What a set metric stores in its run_metrics details: ladder, ladder_rule, settled and, when
    not settled, ladder_warning (the line the terminal prints)."""
    settled, why = judge_ladder(ladder)
    out: dict[str, Any] = {"ladder": ladder, "ladder_rule": RULE, "settled": settled}
    if not settled:
        out["ladder_warning"] = f"{metric} has not settled: {why}"
    return out


def _float_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)

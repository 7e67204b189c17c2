"""How values look in the dashboard's tables: one cell per metric, fixed decimals per metric,
CIs clipped to the metric's range, p-values at the bootstrap's floor said as such."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from vdmbench.dashboard.metric_facts import value_range

MAX_DECIMALS = 4


def clip_ci(metric: str, lo: float, hi: float) -> tuple[float, float]:
    """A CI cut to the metric's declared range (a bootstrap of a [0, 1] mean stays in [0, 1])."""
    r = value_range(metric)
    if r is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return lo, hi
    return max(lo, r[0]), min(hi, r[1])


def clip_delta_ci(metric: str, lo: float, hi: float) -> tuple[float, float]:
    """A CI of a difference of two values in [a, b] lies in [-(b - a), b - a]."""
    r = value_range(metric)
    if r is None or not math.isfinite(r[1] - r[0]) or not (np.isfinite(lo) and np.isfinite(hi)):
        return lo, hi
    span = r[1] - r[0]
    return max(lo, -span), min(hi, span)


def decimals_for(values: Iterable[float], half_widths: Iterable[float] = ()) -> int:
    """One number of decimals for a whole column: enough for the CI's first significant digit
    (0.972 ± 0.006: 3), or without CIs three significant digits of the typical (median) value (104, 0.917)."""
    widths = [abs(float(w)) for w in half_widths if w is not None and np.isfinite(w) and w > 0]
    if widths:
        d = -math.floor(math.log10(float(np.median(widths))))
    else:
        vals = [abs(float(v)) for v in values if v is not None and np.isfinite(v) and v != 0]
        if not vals:
            return 3
        d = 2 - math.floor(math.log10(float(np.median(vals))))
    return int(min(MAX_DECIMALS, max(0, d)))


def metric_decimals(run_metrics: pd.DataFrame) -> dict[str, int]:
    """Decimals per metric by the Leaderboard's rule (decimals_for over the metric's values and
    clipped CI half-widths), from run-level rows (metric, value, ci_low, ci_high), so Compare and
    Drill-down print a metric as the board does."""
    out: dict[str, int] = {}
    if run_metrics.empty:
        return out
    for metric, part in run_metrics.groupby("metric", sort=True):
        m = str(metric)
        lo = pd.to_numeric(part.get("ci_low", pd.Series(dtype=float)), errors="coerce")
        hi = pd.to_numeric(part.get("ci_high", pd.Series(dtype=float)), errors="coerce")
        clipped = [clip_ci(m, float(a), float(b)) for a, b in zip(lo, hi)]
        values = pd.to_numeric(part.value, errors="coerce")
        out[m] = decimals_for(values, [(b - a) / 2 for a, b in clipped])
    return out


def value_cell(value: float, lo: float | None, hi: float | None, decimals: int) -> str:
    """'0.972 ± 0.006' (half the CI's width); '0.972' without a CI; '–' without a value."""
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.{decimals}f}"
    if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        text += f" ± {(hi - lo) / 2:.{decimals}f}"
    return text


def number_cell(value: float | None, decimals: int) -> str:
    """A bare number at fixed decimals; '–' for a missing one (None / NaN), as every table cell."""
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return "–"
    return f"{float(value):.{decimals}f}"


def count_cell(value: float | None) -> str:
    """A whole count ('64'); '–' for a missing one."""
    if value is None or pd.isna(value):
        return "–"
    return f"{int(value)}"


def p_floor(n_boot: int) -> float:
    """The smallest two-sided p a bootstrap of n_boot replicates gives (add-one form: 2/(B+1))."""
    return 2.0 / (n_boot + 1)


def p_cell(p_adjusted: float, p_raw: float, n_boot: int, n_tests: int = 1) -> str:
    """A Holm-adjusted p-value; at the bootstrap's floor '< 1/B'-style ('< 0.003'), since the
    true p is only known to be below what B replicates can resolve."""
    if p_adjusted is None or not np.isfinite(p_adjusted):
        return "–"
    if np.isfinite(p_raw) and p_raw <= p_floor(n_boot) * (1 + 1e-9):
        bound = min(1.0, p_floor(n_boot) * max(1, n_tests))
        return f"< {bound:.2g}"
    return "< 0.001" if p_adjusted < 0.001 else f"{p_adjusted:.3f}"

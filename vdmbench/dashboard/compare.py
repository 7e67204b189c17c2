"""Comparing runs: per-metric deltas with paired CIs and significance, per-prompt differences.

Runs of one suite share their (prompt, seed) pairs, so deltas are paired, with the release gate's
statistics (vdmbench.core.stats): a paired bootstrap of the mean difference for per-sample metrics
that resamples prompts, each drawn prompt bringing all its (paired) seeds: the same unit as the
leaderboard's CIs (the runner's bootstrap over prompts), so both pages answer the same question, a normal approximation from each run's bootstrap CI for set-level metrics
(FVD, KVD), two-sided p-values, and Holm's correction across the metrics of one comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from vdmbench.core.stats import adjust_pvalues, compare_estimates, paired_bootstrap

N_BOOT = 4000  # the gate policy's default
RESAMPLING_UNIT = "prompts (each drawn prompt brings all its seeds)"  # as the leaderboard's CIs


@dataclass(frozen=True)
class PairedDelta:
    delta: float  # candidate - baseline (raw units: positive means the value went up)
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, unadjusted
    n: int  # matched samples


def _two_sided(p_regression: float, p_improvement: float) -> float:
    if np.isnan(p_regression) or np.isnan(p_improvement):
        return float("nan")  # too few units for a test
    return float(min(1.0, 2 * min(p_regression, p_improvement)))


def paired_delta(baseline: np.ndarray, candidate: np.ndarray, clusters: np.ndarray | None = None, *,
                 n_boot: int = N_BOOT, seed: int = 0) -> PairedDelta:
    """Mean paired difference with its bootstrap CI and two-sided p (the gate's paired bootstrap)."""
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    c = paired_bootstrap(base, cand, clusters=clusters, higher_is_better=True, n_boot=n_boot, seed=seed)
    return PairedDelta(c.delta, c.ci_low, c.ci_high, _two_sided(c.p_regression, c.p_improvement), c.n)


def set_level_delta(base: pd.Series, cand: pd.Series, higher_is_better: bool | None) -> PairedDelta | None:
    """Two runs' set-level values compared through their stored CIs; None without CIs."""
    cis = [base.ci_low, base.ci_high, cand.ci_low, cand.ci_high]
    if any(pd.isna(x) for x in cis):
        return None
    sign = -1.0 if higher_is_better is False else 1.0
    c = compare_estimates(float(base.value), (float(base.ci_low), float(base.ci_high)), float(cand.value),
                          (float(cand.ci_low), float(cand.ci_high)), higher_is_better=sign > 0, n=int(cand.n or 0))
    if np.isnan(c.p_regression):
        return None
    lo, hi = sorted((sign * c.ci_low, sign * c.ci_high))  # back to raw units
    return PairedDelta(sign * c.delta, lo, hi, _two_sided(c.p_regression, c.p_improvement), c.n)


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
    correction: str = "holm",
) -> pd.DataFrame:
    """For every run after the first (the baseline) and every metric: delta, CI, p, verdict.

    `p_value` is adjusted across the metrics of each (baseline, run) comparison, as the gate does.
    """
    base = run_ids[0]
    base_rows = run_metrics[run_metrics.run_id == base].set_index("metric")
    out = []
    for other in run_ids[1:]:
        other_rows = run_metrics[run_metrics.run_id == other].set_index("metric")
        rows = []
        for metric in sorted(set(base_rows.index) | set(other_rows.index)):
            b = base_rows.loc[metric] if metric in base_rows.index else None
            o = other_rows.loc[metric] if metric in other_rows.index else None
            row = {"run": other, "metric": metric, "baseline": None if b is None else b.value,
                   "value": None if o is None else o.value, "delta": np.nan, "ci_low": np.nan,
                   "ci_high": np.nan, "p_raw": np.nan, "n": 0, "test": "none"}
            pairs = matched(values, base, other, metric)
            d = None
            if len(pairs):
                d = paired_delta(pairs.value_base.to_numpy(), pairs.value_other.to_numpy(),
                                 clusters=pairs.prompt_id.astype(str).to_numpy())
                row["test"] = "paired bootstrap"
            elif b is not None and o is not None:
                d = set_level_delta(b, o, metric_directions.get(metric))
                row["test"] = "from run CIs" if d else "none (no CIs)"
                row["delta"] = o.value - b.value
            if d is not None:
                row.update(delta=d.delta, ci_low=d.ci_low, ci_high=d.ci_high, p_raw=d.p_value, n=d.n)
            rows.append(row)
        raw = [r["p_raw"] for r in rows]
        adjusted = adjust_pvalues(raw, correction)
        for r, p in zip(rows, adjusted):
            sig = bool(np.isfinite(p) and p < alpha)
            r.update(p_value=float(p), significant=sig,
                     verdict=_verdict(r["delta"], sig, metric_directions.get(r["metric"]))
                     if np.isfinite(p) else "no test")
        out += rows
    return pd.DataFrame(out)


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
    wide = part.pivot_table(index=["prompt_id", "seed"], columns="run_id", values="value", aggfunc="first",
                            dropna=False).astype(float)
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

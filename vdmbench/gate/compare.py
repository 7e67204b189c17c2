"""The gate's decision: compare a candidate run with a baseline run under a policy.

Steps: refuse runs that are not comparable (suite hash, metric configuration) unless forced;
pair per-sample values by (prompt id, seed); one paired bootstrap per gated metric; adjust the
regression and improvement p-values across metrics (false-alarm control); one verdict per metric:

  regression    worse than the tolerance, significant after adjustment across metrics
  improvement   better than the tolerance, significant after adjustment
  pass          a regression beyond the tolerance is ruled out (one-sided, level alpha)
  inconclusive  none of the above: too few samples, or an interval too wide to decide

Set-level metrics (FVD, KVD) have no per-sample values; they are compared through each run's
stored bootstrap CI (normal approximation), or, when a run stored no CI, by the tolerance alone
(marked as such and left out of the false-alarm control, which needs a p-value).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vdmbench.core.errors import ConfigError
from vdmbench.core.ladder import LADDER_KEYS
from vdmbench.core.stats import (
    Comparison,
    adjust_pvalues,
    compare_estimates,
    paired_bootstrap,
)
from vdmbench.gate.baseline import RunData
from vdmbench.gate.policy import MetricRule, Policy, check_direction, declared_direction

# Details that describe one run's outcome rather than how the metric is computed.
_VOLATILE_DETAILS = {"n", "n_reference", "ci_low", "ci_high", "ci", "warning", "note", "kvd_std", "subset_size",
                     "subsets", "seconds", *LADDER_KEYS}


class NotComparableError(ConfigError):
    """The two runs measure different things; `--force` compares them anyway."""


@dataclass
class MetricResult:
    metric: str
    verdict: str
    higher_is_better: bool
    baseline: float | None
    candidate: float | None
    delta: float | None  # candidate - baseline, in the metric's units
    rel_change: float | None  # delta / |baseline|
    ci_low: float | None  # CI of delta (candidate - baseline)
    ci_high: float | None
    p_value: float | None  # regression p-value, adjusted across metrics
    p_regression: float | None  # unadjusted
    p_improvement: float | None  # adjusted
    effect_size: float | None  # Cohen's d_z of the paired differences, oriented (negative = worse)
    tolerance: float
    n: int
    statistic: str
    method: str
    reason: str = ""


@dataclass
class GateResult:
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    policy: dict[str, Any]
    metrics: list[MetricResult]
    forced: bool = False
    warnings: list[str] = field(default_factory=list)
    not_gated: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {v: sum(m.verdict == v for m in self.metrics) for v in ("pass", "regression", "improvement",
                                                                        "inconclusive")}

    @property
    def verdict(self) -> str:
        """The worst verdict: regression > inconclusive > improvement > pass."""
        c = self.counts()
        for v in ("regression", "inconclusive", "improvement"):
            if c[v]:
                return v
        return "pass"

    def failed(self, fail_on: tuple[str, ...]) -> bool:
        return any(m.verdict in fail_on for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "counts": self.counts(), "forced": self.forced,
                "baseline": self.baseline, "candidate": self.candidate, "policy": self.policy,
                "warnings": self.warnings, "not_gated": self.not_gated,
                "metrics": [{k: _json_float(v) for k, v in asdict(m).items()} for m in self.metrics]}


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


# --- comparability --------------------------------------------------------------------------------

def _diff_dicts(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON-like values (first few only)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff_dicts(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    if a != b:
        return [f"{prefix.rstrip('.')}: {a!r} vs {b!r}"]
    return []


def suite_mismatch(base: RunData, cand: RunData) -> str | None:
    """Why the runs' suites differ, or None when they are the same suite (same content hash)."""
    if base.run.get("suite_hash") == cand.run.get("suite_hash"):
        return None
    diffs = _diff_dicts(base.run.get("suite_config") or {}, cand.run.get("suite_config") or {})
    what = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    return (f"different suites: baseline {base.run.get('suite')} (hash {base.run.get('suite_hash')}) vs candidate "
            f"{cand.run.get('suite')} (hash {cand.run.get('suite_hash')})" + (f" — {what}" if what else ""))


def metric_config(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (details or {}).items() if k not in _VOLATILE_DETAILS}


def metric_mismatch(metric: str, base: RunData, cand: RunData) -> str | None:
    b = base.run_metrics.get(metric, {}).get("details")
    c = cand.run_metrics.get(metric, {}).get("details")
    if b is None or c is None:
        return None
    diffs = _diff_dicts(metric_config(b), metric_config(c))
    return f"metric {metric} is configured differently: " + "; ".join(diffs[:5]) if diffs else None


# --- pairing ----------------------------------------------------------------------------------------

def paired_values(base: pd.DataFrame, cand: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, int, bool]:
    """(pairs with prompt_id, base, cand; unpaired count; paired by seed position).

    Samples pair by (prompt id, seed). Runs whose seeds differ (only when forced, e.g. the
    calibration of the gate itself) pair the k-th seed of a prompt with the k-th seed instead."""
    b = base[base.metric == metric][["prompt_id", "seed", "value"]]
    c = cand[cand.metric == metric][["prompt_id", "seed", "value"]]
    by_position = set(map(tuple, b[["prompt_id", "seed"]].to_numpy())) != set(map(tuple, c[["prompt_id", "seed"]].to_numpy())) \
        and not set(b.seed) & set(c.seed)
    if by_position:
        b = b.assign(seed=b.groupby("prompt_id").seed.rank(method="first").astype(int))
        c = c.assign(seed=c.groupby("prompt_id").seed.rank(method="first").astype(int))
    pairs = b.merge(c, on=["prompt_id", "seed"], suffixes=("_base", "_cand"))
    pairs = pairs[np.isfinite(pairs.value_base) & np.isfinite(pairs.value_cand)]
    pairs = pairs.sort_values(["prompt_id", "seed"]).reset_index(drop=True)
    unpaired = len(b) + len(c) - 2 * len(pairs)
    return pairs, unpaired, by_position


# --- the decision ----------------------------------------------------------------------------------

def _direction(metric: str, rule: MetricRule, base: RunData, cand: RunData, source: str) -> bool:
    """Whether higher is better: the policy's explicit direction, else the metric's declaration,
    else what the runs stored; all that are known must agree."""
    stored = [r.get("details", {}).get("higher_is_better") for r in (base.run_metrics.get(metric, {}),
                                                                       cand.run_metrics.get(metric, {}))]
    stored = [s for s in stored if s is not None]
    if len(set(stored)) > 1:
        raise NotComparableError(f"metric {metric}: the runs disagree on whether higher is better")
    check_direction(metric, rule, f"{source}: metrics.{metric}")
    if rule.direction != "auto":
        want = rule.direction == "higher"
        if stored and bool(stored[0]) != want:
            raise ConfigError(f"policy says {rule.direction} is better for {metric}, but the metric reports "
                              f"{'higher' if stored[0] else 'lower'} is better; fix the policy (or use direction: auto)")
        return want
    declared = declared_direction(metric)
    if declared is not None:
        if stored and bool(stored[0]) != declared:
            raise NotComparableError(
                f"metric {metric}: the runs stored {'higher' if stored[0] else 'lower'} is better, but the metric "
                f"now declares {'higher' if declared else 'lower'}; re-score the runs with this vdmbench")
        return declared
    if not stored:
        raise ConfigError(f"metric {metric}: the runs do not say whether higher is better and no installed "
                          "metric declares it; set direction: higher or lower in the policy")
    return bool(stored[0])


def _run_value(data: RunData, metric: str) -> float | None:
    v = data.run_metrics.get(metric, {}).get("value")
    return float(v) if v is not None else None


def _oriented_to_raw(c: Comparison, higher: bool) -> tuple[float, float]:
    """CI of candidate - baseline from the CI of the oriented effect."""
    if higher:
        return c.ci_low, c.ci_high
    return -c.ci_high, -c.ci_low


def _compare_metric(metric: str, rule: MetricRule, base: RunData, cand: RunData, policy: Policy,
                    higher: bool) -> tuple[Comparison | None, dict[str, Any]]:
    """One metric's comparison plus what the report shows besides it."""
    bv, cv = _run_value(base, metric), _run_value(cand, metric)
    per_sample = metric in set(base.samples.metric) and metric in set(cand.samples.metric)
    if per_sample:
        pairs, unpaired, by_position = paired_values(base.samples, cand.samples, metric)
        stat = np.median if rule.statistic == "median" else np.mean
        info: dict[str, Any] = {"n": len(pairs), "statistic": rule.statistic}
        notes = []
        if unpaired:
            notes.append(f"{unpaired} samples without a partner left out")
        if by_position:
            notes.append("seeds differ: paired by seed position")
        if len(pairs) == 0:
            info.update(baseline=bv, candidate=cv, reason="; ".join(["no matching samples", *notes]),
                        method="paired bootstrap", tolerance=rule.tolerance(bv or 0.0))
            return None, info
        if policy.resample == "crossed" and rule.statistic != "mean":
            raise ConfigError(f"metric {metric}: statistic {rule.statistic} needs resample: pairs or prompts "
                              "(the crossed bootstrap is for means)")
        b_stat, c_stat = float(stat(pairs.value_base)), float(stat(pairs.value_cand))
        tol = rule.tolerance(b_stat)
        info.update(baseline=b_stat, candidate=c_stat, tolerance=tol, reason="; ".join(notes))
        if len(pairs) < rule.min_samples:
            info.update(method="paired bootstrap",
                        reason="; ".join([f"only {len(pairs)} pairs (policy needs {rule.min_samples})", *notes]))
            return None, info
        comp = paired_bootstrap(
            pairs.value_base.to_numpy(), pairs.value_cand.to_numpy(),
            clusters=pairs.prompt_id.to_numpy() if policy.resample in ("prompts", "crossed") else None,
            seeds=pairs.seed.to_numpy() if policy.resample == "crossed" else None,
            higher_is_better=higher, tolerance=tol, statistic=rule.statistic, n_boot=policy.n_boot,
            confidence=policy.confidence, seed=policy.seed,
        )
        info["method"] = comp.method
        return comp, info
    # Set-level: value and CI as stored.
    rb, rc = base.run_metrics[metric], cand.run_metrics[metric]
    n = int(min(rb.get("n") or 0, rc.get("n") or 0))
    if bv is None or cv is None:
        return None, {"baseline": bv, "candidate": cv, "tolerance": 0.0, "n": n, "statistic": "value",
                      "method": "set-level", "reason": "a run stored no value"}
    tol = rule.tolerance(bv)
    info = {"baseline": bv, "candidate": cv, "tolerance": tol, "n": n, "statistic": "value"}
    if n and n < rule.min_samples:
        info.update(method="set-level", reason=f"only {n} samples (policy needs {rule.min_samples})")
        return None, info
    cis = [rb.get("ci_low"), rb.get("ci_high"), rc.get("ci_low"), rc.get("ci_high")]
    if any(x is None or not math.isfinite(float(x)) for x in cis):
        info["method"] = "tolerance only (no bootstrap CI stored; not under false-alarm control)"
        return None, info
    comp = compare_estimates(bv, (rb["ci_low"], rb["ci_high"]), cv, (rc["ci_low"], rc["ci_high"]),
                             higher_is_better=higher, tolerance=tol, confidence=policy.confidence, n=n)
    info["method"] = comp.method
    return comp, info


def compare_runs(base: RunData, cand: RunData, policy: Policy, *, force: bool = False) -> GateResult:
    """Verdicts for every metric the policy gates. Raises NotComparableError / ConfigError."""
    warnings: list[str] = []
    why = suite_mismatch(base, cand)
    if why:
        if not force:
            raise NotComparableError(f"{why}. The gate only compares runs of the same suite; "
                                     "re-run the candidate on the baseline's suite, or pass --force")
        warnings.append(f"forced: {why}")
    if base.run_id == cand.run_id and base.run.get("started_at") == cand.run.get("started_at"):
        warnings.append("the baseline and the candidate are the same run")

    common = base.metric_names() & cand.metric_names()
    gated: dict[str, MetricRule] = {}
    missing: list[str] = []
    for name, rule in policy.metrics.items():
        if name in common:
            gated[name] = rule
        elif rule.required:
            where = [label for label, d in (("baseline", base), ("candidate", cand)) if name not in d.metric_names()]
            have = ", ".join(sorted((base if "baseline" in where else cand).metric_names())) or "none"
            missing.append(f"{name} (missing in the {' and '.join(where)}; it has: {have})")
    if missing:
        raise ConfigError(f"policy {policy.name} requires metrics the runs lack: {'; '.join(missing)}. "
                          "Score them in the suite, or set required: false in the policy")
    not_gated: list[str] = []
    for name in sorted(common - set(gated)):
        other = policy.rule(name)
        if other is None or not _is_score(name):  # a weight (frame pairs per clip) is not a quality
            not_gated.append(name)
        else:
            gated[name] = other
    for name in policy.metrics:
        if name not in gated:
            warnings.append(f"{name}: not in both runs; not gated (required: false)")
    if not gated:
        raise ConfigError(f"nothing to gate: the runs share no metric the policy {policy.name} names "
                          f"(baseline: {', '.join(sorted(base.metric_names())) or 'none'}; "
                          f"candidate: {', '.join(sorted(cand.metric_names())) or 'none'})")

    mismatched = [m for m in (metric_mismatch(name, base, cand) for name in sorted(gated)) if m]
    if mismatched:
        if not force:
            raise NotComparableError("; ".join(mismatched) + ". Compare runs scored the same way, or pass --force")
        warnings += [f"forced: {m}" for m in mismatched]

    names = sorted(gated)
    comps: list[Comparison | None] = []
    infos: list[dict[str, Any]] = []
    directions: list[bool] = []
    for name in names:
        higher = _direction(name, gated[name], base, cand, policy.source)
        comp, info = _compare_metric(name, gated[name], base, cand, policy, higher)
        comps.append(comp)
        infos.append(info)
        directions.append(higher)

    nan = float("nan")
    p_reg = adjust_pvalues([c.p_regression if c else nan for c in comps], policy.correction)
    p_imp = adjust_pvalues([c.p_improvement if c else nan for c in comps], policy.correction)
    results = []
    for i, name in enumerate(names):
        comp, info, higher = comps[i], infos[i], directions[i]
        bv, cv = info.get("baseline"), info.get("candidate")
        delta = (cv - bv) if bv is not None and cv is not None else None
        rel = delta / abs(bv) if delta is not None and bv else None
        reason = info.get("reason", "")
        lo = hi = eff = None
        p_raw = None
        if comp is None:
            verdict = "inconclusive"
            if info.get("method", "").startswith("tolerance only") and delta is not None:
                oriented = delta if higher else -delta
                verdict = "regression" if oriented < -info["tolerance"] else \
                          "improvement" if oriented > info["tolerance"] else "pass"
        else:
            lo, hi = _oriented_to_raw(comp, higher)
            eff, p_raw = comp.effect_size, comp.p_regression
            if not math.isfinite(p_reg[i]):
                verdict, reason = "inconclusive", reason or "no variation to estimate noise from"
            elif p_reg[i] <= policy.alpha:
                verdict = "regression"
            elif p_imp[i] <= policy.alpha:
                verdict = "improvement"
            elif comp.p_noninferior <= policy.alpha:
                verdict = "pass"
            else:
                verdict = "inconclusive"
                reason = reason or "the interval still allows a regression beyond the tolerance"
        results.append(MetricResult(
            metric=name, verdict=verdict, higher_is_better=higher, baseline=bv, candidate=cv, delta=delta,
            rel_change=rel, ci_low=lo, ci_high=hi, p_value=_finite(p_reg[i]), p_regression=p_raw,
            p_improvement=_finite(p_imp[i]), effect_size=_finite(eff), tolerance=float(info.get("tolerance", 0.0)),
            n=int(info.get("n", 0)), statistic=info.get("statistic", "mean"), method=info.get("method", ""),
            reason=reason,
        ))
    return GateResult(
        baseline=_summary(base), candidate=_summary(cand),
        policy={"name": policy.name, "source": policy.source, "alpha": policy.alpha,
                "correction": policy.correction, "n_boot": policy.n_boot, "confidence": policy.confidence,
                "resample": policy.resample, "fail_on": list(policy.fail_on)},
        metrics=results, forced=force and bool([w for w in warnings if w.startswith("forced")]),
        warnings=warnings, not_gated=not_gated,
    )


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _summary(d: RunData) -> dict[str, Any]:
    keys = ("run_id", "suite", "suite_version", "suite_hash", "model", "config_hash", "git_sha", "finished_at")
    return {**{k: d.run.get(k) for k in keys}, "source": d.source}


def _is_score(output: str) -> bool:
    """False for an output its metric declares not to be a score (e.g. subject_consistency_weight);
    `other_metrics: gate` never gates those. An undeclared output (an old run's) counts as a score."""
    from vdmbench.metrics import output_declaration

    found = output_declaration(output)
    return found is None or bool(getattr(found, "is_score", True))

"""`vdmbench gate`: verdicts, comparability checks, missing metrics (synthetic runs, no models)."""

import numpy as np
import pandas as pd
import pytest

from vdmbench.core.errors import ConfigError
from vdmbench.gate.baseline import RunData
from vdmbench.gate.compare import NotComparableError, compare_runs
from vdmbench.gate.policy import load_policy, parse_policy

PROMPTS = [f"p{i}" for i in range(10)]
SEEDS = [0, 1]


def make_run(values: dict[str, np.ndarray], *, run_id="r", suite_hash="h1", higher=None, details=None,
             run_metrics=None, seeds=SEEDS) -> RunData:
    """A run with per-sample values (one array of len(PROMPTS) * len(seeds) per metric)."""
    higher = higher or {}
    rows = []
    for metric, arr in values.items():
        for i, (p, s) in enumerate((p, s) for p in PROMPTS for s in seeds):
            rows.append((f"{p}-s{s}", p, s, metric, float(arr[i])))
    samples = pd.DataFrame(rows, columns=["sample_id", "prompt_id", "seed", "metric", "value"])
    rm = {m: {"value": float(np.mean(a)), "ci_low": None, "ci_high": None, "n": len(a),
              "details": {"metric": m, "comparable": True, "higher_is_better": higher.get(m, True),
                          "per_sample": True, **(details or {}).get(m, {})}}
          for m, a in values.items()}
    rm.update(run_metrics or {})
    run = {"run_id": run_id, "suite": "toy", "suite_hash": suite_hash, "model": run_id, "status": "finished",
           "suite_config": {"name": "toy", "seeds": list(seeds)}}
    return RunData(run, rm, samples, f"test run {run_id}")


RNG = np.random.default_rng(0)
BASE = RNG.uniform(0.4, 0.6, size=20)


def verdicts(base, cand, policy=None, **kw):
    res = compare_runs(base, cand, policy or parse_policy({}), **kw)
    return {m.metric: m for m in res.metrics}, res


def test_each_verdict():
    noise = RNG.normal(scale=0.002, size=20)
    base = make_run({"same": BASE, "worse": BASE, "better": BASE, "noisy": BASE})
    cand = make_run({"same": BASE + noise, "worse": BASE - 0.1 + noise, "better": BASE + 0.1 + noise,
                     "noisy": BASE + np.random.default_rng(5).normal(scale=0.2, size=20)}, run_id="c")
    policy = parse_policy({"defaults": {"abs": 0.02}})
    v, res = verdicts(base, cand, policy)
    assert {k: m.verdict for k, m in v.items()} == {
        "same": "pass", "worse": "regression", "better": "improvement", "noisy": "inconclusive"}
    w = v["worse"]
    assert w.delta == pytest.approx(-0.1, abs=0.01) and w.ci_low < w.delta < w.ci_high < 0
    assert w.p_value < 0.05 and w.effect_size < -5 and w.n == 20 and w.tolerance == 0.02
    assert "regression beyond the tolerance" in v["noisy"].reason
    assert res.verdict == "regression" and res.failed(("regression",))
    assert not compare_runs(base, make_run({"same": BASE, "better": BASE + 0.1}), parse_policy({})).failed(("regression",))


def test_lower_is_better_metric_regresses_when_it_rises():
    base = make_run({"err": BASE}, higher={"err": False})
    cand = make_run({"err": BASE + 0.05}, higher={"err": False}, run_id="c")
    v, _ = verdicts(base, cand)
    assert v["err"].verdict == "regression" and v["err"].delta > 0 and not v["err"].higher_is_better
    assert v["err"].ci_low > 0  # CI of candidate - baseline, in the metric's units


def test_policy_direction_contradicting_the_metric_is_a_config_error():
    base = make_run({"err": BASE}, higher={"err": False})
    with pytest.raises(ConfigError, match="lower is better"):
        compare_runs(base, base, parse_policy({"metrics": {"err": {"direction": "higher"}}}))


def test_resampling_schemes_and_shared_seed_noise():
    """A seed's noise shared by every prompt: resampling pairs is fooled, the crossed bootstrap is not."""
    seed_effect = np.tile([0.006, -0.016], 10)  # sample order is prompt-major, seeds 0, 1
    noise = np.random.default_rng(7).normal(scale=0.001, size=20)
    base = make_run({"m": BASE})
    cand = make_run({"m": BASE + seed_effect + noise}, run_id="c")
    pairs, _ = verdicts(base, cand, parse_policy({"resample": "pairs"}))
    crossed, _ = verdicts(base, cand, parse_policy({"resample": "crossed"}))
    assert pairs["m"].verdict == "regression"
    assert crossed["m"].verdict != "regression" and "crossed" in crossed["m"].method
    prompts, _ = verdicts(base, cand, parse_policy({"resample": "prompts"}))
    assert "prompts (clustered)" in prompts["m"].method
    with pytest.raises(ConfigError, match="crossed bootstrap is for means"):
        compare_runs(base, cand, parse_policy({"defaults": {"statistic": "median"}}))


def test_relative_tolerance_and_min_samples():
    base = make_run({"m": BASE})
    cand = make_run({"m": BASE * 0.97}, run_id="c")
    v, _ = verdicts(base, cand, parse_policy({"metrics": {"m": {"rel": 0.10}}}))
    assert v["m"].verdict == "pass" and v["m"].tolerance == pytest.approx(0.1 * BASE.mean())
    v, _ = verdicts(base, cand, parse_policy({"metrics": {"m": {"min_samples": 50}}}))
    assert v["m"].verdict == "inconclusive" and "only 20 pairs" in v["m"].reason


def test_holm_across_metrics_keeps_a_borderline_metric_from_failing():
    # One metric is borderline-worse; alone it fails, among twenty metrics Holm makes it pass the gate.
    rng = np.random.default_rng(11)
    diffs = rng.normal(scale=0.05, size=20)
    diffs = (diffs - diffs.mean()) / diffs.std(ddof=1) * 0.05 - 0.0225  # d_z = -0.45, one-sided p ~ 0.03
    base_vals = {f"m{i}": BASE for i in range(20)}
    cand_vals = {f"m{i}": BASE + (diffs if i == 0 else 0) for i in range(20)}
    base, cand = make_run(base_vals), make_run(cand_vals, run_id="c")
    alone, _ = verdicts(make_run({"m0": BASE}), make_run({"m0": cand_vals["m0"]}), parse_policy({"resample": "pairs"}))
    assert alone["m0"].verdict == "regression"
    v, _ = verdicts(base, cand, parse_policy({"correction": "holm", "resample": "pairs"}))
    assert v["m0"].verdict != "regression" and v["m0"].p_value > v["m0"].p_regression
    v, _ = verdicts(base, cand, parse_policy({"correction": "none", "resample": "pairs"}))
    assert v["m0"].verdict == "regression"


def test_mismatched_suites_are_refused_unless_forced():
    base = make_run({"m": BASE})
    cand = make_run({"m": BASE}, run_id="c", suite_hash="h2", seeds=[5, 6])
    with pytest.raises(NotComparableError, match=r"different suites.*seeds: \[0, 1\] vs \[5, 6\].*--force"):
        compare_runs(base, cand, parse_policy({}))
    v, res = verdicts(base, cand, force=True)
    assert res.forced and any("forced" in w for w in res.warnings)
    assert v["m"].verdict == "pass" and "paired by seed position" in v["m"].reason


def test_mismatched_metric_config_is_refused_unless_forced():
    base = make_run({"fvd_like": BASE}, details={"fvd_like": {"features": "i3d", "n": 20}})
    cand = make_run({"fvd_like": BASE}, run_id="c", details={"fvd_like": {"features": "random-i3d", "n": 19}})
    with pytest.raises(NotComparableError, match="features: 'i3d' vs 'random-i3d'"):
        compare_runs(base, cand, parse_policy({}))
    _, res = verdicts(base, cand, force=True)
    assert any("configured differently" in w for w in res.warnings)
    # Outcome details (n, CI) differ between any two runs and never block a comparison.
    same_cfg = make_run({"fvd_like": BASE}, run_id="c", details={"fvd_like": {"features": "i3d", "n": 3}})
    compare_runs(base, same_cfg, parse_policy({}))


def test_missing_metrics():
    base = make_run({"a": BASE, "b": BASE})
    cand = make_run({"a": BASE}, run_id="c")
    with pytest.raises(ConfigError, match=r"requires metrics the runs lack: b \(missing in the candidate"):
        compare_runs(base, cand, parse_policy({"metrics": {"a": {}, "b": {}}}))
    v, res = verdicts(base, cand, parse_policy({"metrics": {"a": {}, "b": {"required": False}}}))
    assert list(v) == ["a"] and any("b: not in both runs" in w for w in res.warnings)
    # No policy: whatever both runs have is gated; a metric only one run has is not.
    v, _ = verdicts(base, cand)
    assert list(v) == ["a"]
    with pytest.raises(ConfigError, match="nothing to gate"):
        compare_runs(base, make_run({"z": BASE}, run_id="c"), parse_policy({}))


def test_failed_samples_in_the_candidate_are_left_out_and_reported():
    base = make_run({"m": BASE})
    cand = make_run({"m": BASE}, run_id="c")
    cand.samples = cand.samples.iloc[:-3]
    v, _ = verdicts(base, cand)
    assert v["m"].n == 17 and "3 samples without a partner" in v["m"].reason


def test_set_level_metric_compared_through_stored_cis():
    def fvd(value, lo, hi):
        return {"fvd": {"value": value, "ci_low": lo, "ci_high": hi, "n": 64,
                        "details": {"metric": "fvd", "higher_is_better": False, "per_sample": False,
                                    "features": "i3d", "ci_low": lo, "n": 64}}}
    base = make_run({"m": BASE}, run_metrics=fvd(100.0, 95.0, 105.0))
    worse = make_run({"m": BASE}, run_id="c", run_metrics=fvd(130.0, 125.0, 135.0))
    same = make_run({"m": BASE}, run_id="c", run_metrics=fvd(101.0, 96.0, 106.0))
    policy = parse_policy({"metrics": {"fvd": {"rel": 0.10}}})
    v, _ = verdicts(base, worse, policy)
    assert v["fvd"].verdict == "regression" and v["fvd"].statistic == "value" and "bootstrap CI" in v["fvd"].method
    v, _ = verdicts(base, same, policy)
    assert v["fvd"].verdict == "pass"
    no_ci = make_run({"m": BASE}, run_id="c", run_metrics=fvd(130.0, None, None))
    v, _ = verdicts(base, no_ci, policy)
    assert v["fvd"].verdict == "regression" and v["fvd"].p_value is None and "tolerance only" in v["fvd"].method


def test_policy_validation_and_shipped_smoke_policy():
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_policy({"alpah": 0.05})
    with pytest.raises(ConfigError, match="correction"):
        parse_policy({"correction": "magic"})
    with pytest.raises(ConfigError, match=r"metrics.m.direction"):
        parse_policy({"metrics": {"m": {"direction": "up"}}})
    with pytest.raises(ConfigError, match="unknown gate policy"):
        load_policy("no-such-policy")
    smoke = load_policy("smoke")
    assert smoke.alpha == 0.05 and set(smoke.metrics) == {"shapes_adherence", "flicker"}
    assert load_policy(None, suite="smoke").name == "smoke"
    assert load_policy(None, suite="unknown-suite").name == "default"


# --- directions come from the metrics' declarations; the policy schema ------------------------------

def _without_stored_direction(run: RunData) -> RunData:
    for row in run.run_metrics.values():
        row["details"].pop("higher_is_better", None)
    return run


def test_direction_comes_from_the_metric_declaration():
    smoke = load_policy("smoke")
    assert {r.direction for r in smoke.metrics.values()} == {"auto"}  # no direction repeated in the YAML
    # flicker_mean_abs_diff: lower is better, as its metric declares, though the runs stored nothing.
    base = _without_stored_direction(make_run({"flicker_mean_abs_diff": BASE}))
    cand = _without_stored_direction(make_run({"flicker_mean_abs_diff": BASE + 0.05}, run_id="c"))
    v, _ = verdicts(base, cand)
    assert v["flicker_mean_abs_diff"].verdict == "regression" and not v["flicker_mean_abs_diff"].higher_is_better
    # An output no metric declares and no run stores: the policy must say.
    with pytest.raises(ConfigError, match="no installed metric declares it; set direction"):
        compare_runs(_without_stored_direction(make_run({"m": BASE})), _without_stored_direction(make_run({"m": BASE})),
                     parse_policy({}))


def test_a_policy_direction_contradicting_the_declaration_is_a_one_line_error():
    with pytest.raises(ConfigError) as e:
        parse_policy({"metrics": {"flicker_mean_abs_diff": {"direction": "higher"}}}, "gates/p.yaml")
    assert str(e.value) == ("gates/p.yaml: metrics.flicker_mean_abs_diff: direction higher contradicts the metric, "
                            "which declares lower is better for flicker_mean_abs_diff; remove the key (the gate reads "
                            "the direction from the metric)")
    assert parse_policy({"metrics": {"flicker": {"direction": "higher"}}}).metrics["flicker"].direction == "higher"
    # Runs scored when the metric declared the other direction are not compared silently.
    base = make_run({"flicker": BASE}, higher={"flicker": False})
    with pytest.raises(NotComparableError, match="the runs stored lower is better, but the metric now declares higher"):
        compare_runs(base, base, parse_policy({}))


@pytest.mark.parametrize("data, message", [
    ({"alpha": 1}, "p.yaml: alpha must be a number in [0, 0.5], got 1"),
    ({"alpha": "0.05"}, "p.yaml: alpha must be a number in [0, 0.5], got '0.05'"),
    ({"n_boot": True}, "p.yaml: n_boot must be an integer >= 100, got True"),
    ({"correction": "magic"}, "p.yaml: correction must be one of holm, bh, bonferroni, none, got 'magic'"),
    ({"fail_on": ["regression", "sometimes"]}, "p.yaml: fail_on must be a list of regression / inconclusive, got 'sometimes'"),
    ({"metrics": {"m": "strict"}}, "p.yaml: metrics.m must be a mapping of direction, abs, rel, min_samples, "
                                   "statistic, required, got 'strict'"),
    ({"metrics": {"m": {"min_samples": 1}}}, "p.yaml: metrics.m.min_samples must be an integer >= 2, got 1"),
    ({"metrics": {"m": {"statistic": "mode"}}}, "p.yaml: metrics.m.statistic must be one of mean, median, got 'mode'"),
    ({"defaults": {"abs": -1}}, "p.yaml: defaults.abs must be a number >= 0, got -1"),
    ({"defaults": {"tolerance": 1}}, "p.yaml: defaults: unknown keys ['tolerance']; allowed: ['abs', 'direction', "
                                     "'min_samples', 'rel', 'required', 'statistic']"),
    ({"metrics": []}, "p.yaml: metrics must be a mapping of metric name -> rule, got []"),
    ([1, 2], "p.yaml: a gate policy must be a mapping, got list"),
])
def test_policy_schema_errors_name_the_file_the_key_and_what_is_expected(data, message):
    with pytest.raises(ConfigError) as e:
        parse_policy(data, "p.yaml")
    assert str(e.value) == message


def test_rules_inherit_the_defaults_key_by_key():
    p = parse_policy({"defaults": {"min_samples": 8, "rel": 0.1}, "metrics": {"a": {"abs": 0.2}, "b": None}})
    assert (p.metrics["a"].min_samples, p.metrics["a"].rel, p.metrics["a"].abs) == (8, 0.1, 0.2)
    assert p.metrics["b"] == p.defaults and p.other_metrics == "ignore"
    assert parse_policy({"name": 3}).name == "3" and parse_policy(None).other_metrics == "gate"


def test_other_metrics_gate_never_gates_a_weight_output():
    """`other_metrics: gate` gates every shared output that is a score; a per-clip weight (frame
    pairs of a VBench dimension, a static filter's 0/1) is declared is_score=False and left out."""
    from vdmbench.gate.compare import _is_score

    assert not _is_score("subject_consistency_weight") and not _is_score("temporal_flickering_static")
    assert _is_score("subject_consistency") and _is_score("flicker")
    assert _is_score("a_metric_of_an_old_run")  # undeclared: treated as a score, as before

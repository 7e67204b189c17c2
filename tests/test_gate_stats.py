"""The gate's statistics: paired bootstrap, p-values, multiple-testing control."""

import numpy as np
import pytest

from vdmbench.core.stats import (
    adjust_pvalues,
    clustered_bootstrap_mean,
    compare_estimates,
    paired_bootstrap,
)


def test_paired_bootstrap_orients_by_direction():
    base = np.linspace(0, 1, 20)
    worse = base - 0.3
    up = paired_bootstrap(base, worse, higher_is_better=True, n_boot=1000)
    down = paired_bootstrap(base, worse, higher_is_better=False, n_boot=1000)
    assert up.delta == pytest.approx(-0.3) and down.delta == pytest.approx(0.3)
    assert up.p_regression < 0.01 and up.p_improvement > 0.99
    assert down.p_improvement < 0.01 and down.p_regression > 0.99


def test_identical_runs_pass_noninferiority_even_at_zero_tolerance():
    x = np.random.default_rng(0).normal(size=16)
    c = paired_bootstrap(x, x, n_boot=500)
    assert (c.delta, c.ci_low, c.ci_high) == (0.0, 0.0, 0.0)
    assert c.p_regression == 1.0 and c.p_noninferior < 0.01 and c.effect_size == 0.0


def test_tolerance_shifts_the_regression_test():
    rng = np.random.default_rng(1)
    base = rng.normal(size=40)
    cand = base - 0.1 + rng.normal(scale=0.05, size=40)
    strict = paired_bootstrap(base, cand, tolerance=0.0, n_boot=2000)
    lenient = paired_bootstrap(base, cand, tolerance=0.5, n_boot=2000)
    assert strict.p_regression < 0.01
    assert lenient.p_regression > 0.5 and lenient.p_noninferior < 0.01


def test_median_and_clustered_variants_run():
    rng = np.random.default_rng(2)
    base = rng.normal(size=24)
    cand = base - 1.0
    clusters = np.repeat(np.arange(8), 3)
    for kw in ({"statistic": "median"}, {"clusters": clusters}, {"clusters": clusters, "statistic": "median"}):
        c = paired_bootstrap(base, cand, n_boot=500, **kw)
        assert c.delta == pytest.approx(-1.0) and c.p_regression < 0.01, kw


def test_paired_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="statistic"):
        paired_bootstrap(np.ones(3), np.ones(3), statistic="mode")


def test_false_alarm_rate_under_the_null_is_near_alpha():
    """Same distribution on both sides: a one-sided 5% test should reject about 5% of the time."""
    rng = np.random.default_rng(3)
    sims, n = 300, 16
    rejected = 0
    for i in range(sims):
        base = rng.normal(size=n)
        cand = base + rng.normal(size=n)  # paired noise, no shift
        rejected += paired_bootstrap(base, cand, n_boot=1000, seed=i).p_regression <= 0.05
    assert 0.01 <= rejected / sims <= 0.10, rejected / sims


def test_holm_and_bh_match_hand_computation():
    p = [0.01, 0.04, 0.03, np.nan]
    np.testing.assert_allclose(adjust_pvalues(p, "holm")[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjust_pvalues(p, "holm")[3])
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.04, 0.03], "bh"), [0.03, 0.04, 0.04])
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.4], "bonferroni"), [0.02, 0.8])
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.4], "none"), [0.01, 0.4])
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "sidak-ish")


def test_holm_controls_family_wise_error_over_many_null_metrics():
    rng = np.random.default_rng(4)
    any_false = 0
    for _ in range(400):
        p = rng.uniform(size=10)  # ten true null hypotheses
        any_false += (adjust_pvalues(p, "holm") <= 0.05).any()
    assert any_false / 400 <= 0.08


def test_compare_estimates_from_cis():
    worse = compare_estimates(100.0, (90.0, 110.0), 140.0, (130.0, 150.0), higher_is_better=False)
    assert worse.delta == -40.0 and worse.p_regression < 0.001
    same = compare_estimates(100.0, (90.0, 110.0), 101.0, (91.0, 111.0), higher_is_better=False, tolerance=20.0)
    assert same.p_noninferior < 0.01 and same.p_regression > 0.5
    nan = compare_estimates(1.0, (1.0, 1.0), 2.0, (2.0, 2.0))
    assert np.isnan(nan.p_regression)


def test_clustered_bootstrap_mean_still_works():
    est = clustered_bootstrap_mean(np.arange(10.0), np.repeat(np.arange(5), 2))
    assert est.value == 4.5 and est.ci_low < 4.5 < est.ci_high and est.n == 10

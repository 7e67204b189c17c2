"""Weighted aggregation (PerSampleMetric.aggregate_weight): VBench dimensions that average over all
frame pairs of all videos get sum(w * v) / sum(w), in the metric's compute() and in the run's
stored statistics, with a CI over prompts of that ratio."""

import numpy as np
import pytest
import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.core.stats import bootstrap_ratios, clustered_bootstrap_mean, clustered_bootstrap_weighted_mean
from vdmbench.metrics.base import ClipBatch, Output, PerSampleMetric
from vdmbench.run.scoring import per_sample_statistics
from vdmbench.store.database import SampleRecord, Store


class PairMean(PerSampleMetric):
    """Toy: per clip, the mean over consecutive frame pairs of the mean frame difference; its
    weight is the number of pairs (as VBench's subject consistency is weighted)."""

    name = "toy_pair_mean"
    outputs = (
        Output("toy_pair_mean", True, description="mean over pairs"),
        Output("toy_pair_mean_weight", True, description="frame pairs: a weight, not a score", is_score=False),
    )
    aggregate_weight = "toy_pair_mean_weight"

    def sample_values(self, batch):
        v = self.check_batch(batch).to(torch.float64)
        per_pair = (v[:, 1:] - v[:, :-1]).abs().flatten(2).mean(2)  # [B, T-1]
        return {"toy_pair_mean": per_pair.mean(1), "toy_pair_mean_weight": torch.full((len(batch),), v.shape[1] - 1.0)}


def _clips(t, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (2, t, 5, 7, 3), generator=g, dtype=torch.uint8)


def test_compute_is_the_pair_weighted_mean_not_the_mean_of_clips():
    m = PairMean()
    short, long_ = _clips(3, 0), _clips(9, 1)  # 2 and 8 pairs per clip
    m.update(ClipBatch(videos=short))
    m.update(ClipBatch(videos=long_))
    out = m.compute()
    # Independent float64: every pair of every clip counts once.
    pairs = [np.abs(np.diff(c.numpy().astype(np.float64), axis=0)).reshape(c.shape[0] - 1, -1).mean(1)
             for c in [*short, *long_]]
    expected = np.concatenate(pairs).mean()
    plain = np.mean([p.mean() for p in pairs])
    assert abs(float(out["toy_pair_mean"]) - expected) < 1e-12
    assert abs(expected - plain) > 1e-3  # the two aggregations differ here, so the test can tell them apart
    assert float(out["toy_pair_mean_weight"]) == 2 * 2 + 2 * 8  # the weight's run value: the total


def test_a_clip_of_weight_zero_adds_nothing_even_when_its_value_is_nan():
    m = PairMean()
    m.update(ClipBatch(videos=_clips(4, 2)), values={"toy_pair_mean": torch.tensor([0.2, 0.4], dtype=torch.float64),
                                                     "toy_pair_mean_weight": torch.tensor([1.0, 3.0])})
    m.update(ClipBatch(videos=_clips(4, 3)), values={"toy_pair_mean": torch.tensor([float("nan"), 1.0]),
                                                     "toy_pair_mean_weight": torch.tensor([0.0, 0.0])})
    assert float(m.compute()["toy_pair_mean"]) == pytest.approx((0.2 * 1 + 0.4 * 3) / 4, abs=1e-15)
    zero = PairMean()
    zero.update(ClipBatch(videos=_clips(4, 3)), values={"toy_pair_mean": torch.tensor([1.0, 1.0]),
                                                        "toy_pair_mean_weight": torch.tensor([0.0, 0.0])})
    with pytest.raises(MetricInputError, match="total weight"):
        zero.compute()


def test_bad_weight_declarations_fail_when_the_class_is_defined():
    with pytest.raises(TypeError, match="not one of its outputs"):
        class _NoSuch(PerSampleMetric):
            name = "x"
            outputs = (Output("x", True),)
            aggregate_weight = "x_weight"
    with pytest.raises(TypeError, match="headline"):
        class _Headline(PerSampleMetric):
            name = "y"
            outputs = (Output("y", True, is_score=False), Output("y2", True))
            aggregate_weight = "y"
    with pytest.raises(TypeError, match="is_score=False"):
        class _Scored(PerSampleMetric):
            name = "z"
            outputs = (Output("z", True), Output("z_weight", True))
            aggregate_weight = "z_weight"


def test_weighted_bootstrap_with_equal_weights_is_the_plain_one():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    prompts = np.repeat(np.arange(10), 4)
    plain = clustered_bootstrap_mean(values, prompts)
    weighted = clustered_bootstrap_weighted_mean(values, np.full(40, 3.0), prompts)
    assert weighted.value == pytest.approx(plain.value, abs=1e-12)
    assert weighted.ci_low == pytest.approx(plain.ci_low, abs=1e-12)
    assert weighted.ci_high == pytest.approx(plain.ci_high, abs=1e-12)


def test_weighted_bootstrap_resamples_prompts_and_recomputes_the_ratio():
    rng = np.random.default_rng(1)
    values = rng.uniform(size=30)
    weights = rng.integers(1, 20, size=30).astype(float)
    prompts = np.repeat(np.arange(6), 5)
    est = clustered_bootstrap_weighted_mean(values, weights, prompts, n_boot=500, seed=3)
    assert est.value == pytest.approx(float((weights * values).sum() / weights.sum()), abs=1e-14)
    # Independent re-computation: the same draws (numpy's integers, seeded), one replicate at a time.
    draws = np.random.default_rng(3).integers(0, 6, size=(500, 6))
    reps = []
    for row in draws:
        idx = np.concatenate([np.flatnonzero(prompts == p) for p in row])
        reps.append((weights[idx] * values[idx]).sum() / weights[idx].sum())
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert est.ci_low == pytest.approx(lo, abs=1e-12) and est.ci_high == pytest.approx(hi, abs=1e-12)
    assert est.ci_low < est.value < est.ci_high and est.n == 30


def test_bootstrap_ratios_applies_the_statistic_to_every_replicate():
    num = np.array([[1.0, 2.0, 3.0], [4.0, 1.0, 0.0]])
    den = np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    est = bootstrap_ratios(num, den, lambda r: r[0] - 2 * r[1], n=3)
    assert est.value == pytest.approx(6 / 3 - 2 * 5 / 4)
    assert est.ci_low <= est.value <= est.ci_high


def _store_with(tmp_path, rows):
    store = Store(tmp_path / "r.duckdb")
    store.create_run({
        "run_id": "r1", "suite": "s", "suite_version": 1, "suite_hash": "h", "model": "m", "model_config": {"name": "m"},
        "config_hash": "c", "status": "running", "started_at": "2026-01-01 00:00:00", "git_sha": None, "env": {},
        "shard": None, "suite_config": {},
    })
    records = [SampleRecord(sid, prompt, prompt, seed, "t2v", "ok") for sid, prompt, seed, _ in rows]
    store.record_samples("r1", records, {sid: values for sid, _, _, values in rows})
    return store


def test_the_stored_run_value_is_weighted_and_the_weight_is_not_a_run_metric(tmp_path):
    rows = [(f"p{i}-s{s}", f"p{i}", s, {"toy_pair_mean": 0.1 * i + 0.01 * s, "toy_pair_mean_weight": float(1 + i + s)})
            for i in range(5) for s in range(2)]
    store = _store_with(tmp_path, rows)
    out = per_sample_statistics(store, "r1", [PairMean()])
    assert [r["metric"] for r in out] == ["toy_pair_mean"]  # the weight is stored per sample only
    v = np.array([r[3]["toy_pair_mean"] for r in rows])
    w = np.array([r[3]["toy_pair_mean_weight"] for r in rows])
    row = out[0]
    assert row["value"] == pytest.approx(float((v * w).sum() / w.sum()), abs=1e-12)
    assert row["ci_low"] < row["value"] < row["ci_high"] and row["n"] == 10
    assert row["details"]["aggregate_weight"] == "toy_pair_mean_weight"
    assert row["details"]["total_weight"] == pytest.approx(float(w.sum()))
    assert row["details"]["ci"].startswith("weighted; bootstrap over prompts")
    assert len(store.sample_values("r1").query("metric == 'toy_pair_mean_weight'")) == 10


def test_a_weight_output_says_it_is_not_a_score_and_keeps_it_through_pickling():
    import pickle

    weight = PairMean.output("toy_pair_mean_weight")
    assert weight.is_score is False and PairMean.output("toy_pair_mean").is_score is True
    back = pickle.loads(pickle.dumps(weight))
    assert back == "toy_pair_mean_weight" and back.is_score is False and back.description == weight.description

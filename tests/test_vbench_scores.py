"""VBench's normalization and Quality/Semantic/Total scores (scripts/constant.py, cal_final_score.py),
and the `vbench_scores` run rows: values, CIs that recompute the whole formula, subset labels."""

import numpy as np
import pandas as pd
import pytest

from vdmbench.metrics import build_metric, output_direction, output_metric
from vdmbench.metrics.base import Output, PerSampleMetric
from vdmbench.metrics.vbench_scores import (
    normalized,
    quality_score,
    semantic_score,
    total_score,
    vbench_scores,
)
from vdmbench.run.scoring import per_sample_statistics

# Typed from VBench's scripts/constant.py (independently of the module's table).
MINMAX = {
    "subject_consistency": (0.1462, 1.0), "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0), "motion_smoothness": (0.706, 0.9975), "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0), "imaging_quality": (0.0, 1.0), "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0), "human_action": (0.0, 1.0), "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0), "scene": (0.0, 0.8222), "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364), "overall_consistency": (0.0, 0.364),
}
QUALITY = ["subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
           "aesthetic_quality", "imaging_quality", "dynamic_degree"]
RAW = {"subject_consistency": 0.95, "background_consistency": 0.96, "temporal_flickering": 0.97,
       "motion_smoothness": 0.98, "dynamic_degree": 0.5, "aesthetic_quality": 0.6, "imaging_quality": 0.65,
       "object_class": 0.8, "multiple_objects": 0.4, "human_action": 0.9, "color": 0.85,
       "spatial_relationship": 0.5, "scene": 0.45, "appearance_style": 0.22, "temporal_style": 0.24,
       "overall_consistency": 0.26}


def test_normalization_by_hand():
    assert normalized("subject_consistency", 0.95) == pytest.approx((0.95 - 0.1462) / (1 - 0.1462), abs=1e-15)
    assert normalized("motion_smoothness", 0.98) == pytest.approx(0.274 / 0.2915, abs=1e-15)
    assert normalized("appearance_style", 0.2855) == pytest.approx(1.0, abs=1e-15)
    assert normalized("temporal_flickering", 0.6) < 0  # VBench does not clip
    with pytest.raises(KeyError, match="not a VBench dimension"):
        normalized("flicker", 0.9)


def test_quality_semantic_and_total_by_hand():
    n = {d: (RAW[d] - lo) / (hi - lo) for d, (lo, hi) in MINMAX.items()}
    q = (n["subject_consistency"] + n["background_consistency"] + n["temporal_flickering"] + n["motion_smoothness"]
         + n["aesthetic_quality"] + n["imaging_quality"] + 0.5 * n["dynamic_degree"]) / 6.5
    s = sum(n[d] for d in MINMAX if d not in QUALITY) / 9
    assert quality_score(RAW).value == pytest.approx(q, abs=1e-14) and quality_score(RAW).complete
    assert semantic_score(RAW).value == pytest.approx(s, abs=1e-14)
    assert total_score(q, s) == pytest.approx((4 * q + s) / 5, abs=1e-15)
    assert vbench_scores(RAW) == pytest.approx({"quality": q, "semantic": s, "total": (4 * q + s) / 5}, abs=1e-14)
    # On paper: 0.8038/0.8538 + 0.6985/0.7385 + 0.3407/0.3707 + 0.274/0.2915 + 0.6 + 0.65 + 0.5 * 0.5
    # = 0.94144 + 0.94584 + 0.91907 + 0.93997 + 1.5 = 5.24632, / 6.5 = 0.807126.
    assert q == pytest.approx(0.807126, abs=2e-6)


def test_a_subset_renormalizes_its_weights_and_says_what_is_missing():
    part = {"aesthetic_quality": 0.6, "dynamic_degree": 0.2}
    g = quality_score(part)
    assert g.value == pytest.approx((0.6 + 0.5 * 0.2) / 1.5, abs=1e-15)
    assert not g.complete and "subject_consistency" in g.missing
    assert semantic_score(part) is None and "total" not in vbench_scores(part)


def _toy(output, comparable=True, weighted=False):
    outs = (Output(output, True, description="toy"),)
    if weighted:
        outs += (Output(f"{output}_weight", True, description="weight", is_score=False),)
    cls = type(f"Toy_{output}", (PerSampleMetric,), {
        "name": output, "outputs": outs, "aggregate_weight": f"{output}_weight" if weighted else None,
        "comparable": property(lambda self: comparable),
        "sample_values": lambda self, batch: {},
    })
    return cls()


class _Store:
    def __init__(self, table):
        self.table = table

    def sample_values(self, run_id):
        return self.table


def _table(values_by_output, prompts=6, seeds=2, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for output, base in values_by_output.items():
        for p in range(prompts):
            for s in range(seeds):
                sid = f"p{p}-s{s}"
                v = base + rng.normal(0, 0.02)
                rows.append((sid, f"p{p}", s, output, v))
                if output == "subject_consistency":
                    rows.append((sid, f"p{p}", s, "subject_consistency_weight", float(1 + p + 3 * s)))
    return pd.DataFrame(rows, columns=["sample_id", "prompt_id", "seed", "metric", "value"])


def _rows(table, metrics):
    return {r["metric"]: r for r in per_sample_statistics(_Store(table), "r", metrics)}


def test_run_rows_recompute_the_formula_from_per_sample_values_with_a_ci():
    outputs = {"subject_consistency": 0.9, "background_consistency": 0.93, "flicker": 0.95,
               "motion_smoothness": 0.97, "aesthetic_quality": 0.5, "imaging_quality": 0.6, "dynamic_degree": 0.4}
    table = _table(outputs)
    metrics = [_toy("subject_consistency", weighted=True)] + [_toy(o) for o in outputs if o != "subject_consistency"]
    rows = _rows(table, metrics + [build_metric("vbench_scores")])
    # Independently: each dimension's run value (subject consistency weighted by its weight), then the formula.
    raw = {}
    for o in outputs:
        v = table[table.metric == o].set_index("sample_id").value
        if o == "subject_consistency":
            w = table[table.metric == "subject_consistency_weight"].set_index("sample_id").value[v.index]
            raw[o] = float((v * w).sum() / w.sum())
        else:
            raw["temporal_flickering" if o == "flicker" else o] = float(v.mean())
    n = {d: (raw[d] - MINMAX[d][0]) / (MINMAX[d][1] - MINMAX[d][0]) for d in raw}
    q = sum(n[d] * (0.5 if d == "dynamic_degree" else 1.0) for d in n) / 6.5
    row = rows["vbench_quality_score"]
    assert row["value"] == pytest.approx(q, abs=1e-12)
    assert rows["subject_consistency"]["value"] == pytest.approx(raw["subject_consistency"], abs=1e-12)
    assert row["ci_low"] < row["value"] < row["ci_high"]
    assert row["details"]["comparable"] is True and row["details"]["missing_dimensions"] == []
    assert row["details"]["dimensions"]["temporal_flickering"]["output"] == "flicker"
    assert "vbench_total_score" not in rows and "vbench_semantic_score" not in rows  # no Semantic dimension
    assert row["details"]["higher_is_better"] is True and row["n"] == 12


def test_the_ci_is_a_bootstrap_of_the_whole_formula_over_prompts():
    outputs = {"aesthetic_quality": 0.5, "dynamic_degree": 0.3}
    table = _table(outputs, prompts=5, seeds=1, seed=4)
    row = _rows(table, [_toy(o) for o in outputs] + [build_metric("vbench_scores")])["vbench_quality_score"]
    a = table[table.metric == "aesthetic_quality"].sort_values("prompt_id").value.to_numpy()
    d = table[table.metric == "dynamic_degree"].sort_values("prompt_id").value.to_numpy()
    draws = np.random.default_rng(0).integers(0, 5, size=(2000, 5))  # stats' seeded draws
    reps = [(a[i].mean() + 0.5 * d[i].mean()) / 1.5 for i in draws]
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert row["ci_low"] == pytest.approx(lo, abs=1e-12) and row["ci_high"] == pytest.approx(hi, abs=1e-12)


def test_a_subset_or_random_weights_are_labelled_not_comparable():
    table = _table({"aesthetic_quality": 0.5, "object_class": 0.7})
    rows = _rows(table, [_toy("aesthetic_quality", comparable=False), _toy("object_class"),
                         build_metric("vbench_scores")])
    q, t = rows["vbench_quality_score"], rows["vbench_total_score"]
    assert q["details"]["comparable"] is False and "subject_consistency" in q["details"]["not_comparable_because"]
    assert "random weights" in q["details"]["not_comparable_because"]
    assert t["details"]["comparable_with_vbench_leaderboard"] is False
    assert t["value"] == pytest.approx((4 * q["value"] + rows["vbench_semantic_score"]["value"]) / 5, abs=1e-12)


def test_temporal_flickering_is_preferred_over_flicker():
    table = _table({"flicker": 0.99, "temporal_flickering": 0.8})
    rows = _rows(table, [_toy("flicker"), _toy("temporal_flickering"), build_metric("vbench_scores")])
    dims = rows["vbench_quality_score"]["details"]["dimensions"]
    assert dims["temporal_flickering"]["output"] == "temporal_flickering"
    assert rows["vbench_quality_score"]["value"] == pytest.approx(
        (rows["temporal_flickering"]["value"] - 0.6293) / (1 - 0.6293), abs=1e-12)


def test_vbench_scores_is_a_declared_derived_metric():
    m = build_metric("vbench_scores")
    assert not m.per_sample and output_metric("vbench_total_score") == "vbench_scores"
    assert output_direction("vbench_quality_score") is True
    m.update(None)  # reads no clips
    with pytest.raises(ValueError, match="computed from the other metrics"):
        m.compute()
    assert m.derive(_table({"fvd_like": 1.0}), [_toy("fvd_like")]) == []

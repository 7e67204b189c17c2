"""The dashboard's logic without Streamlit: rank aggregation, paired deltas, Bradley-Terry, votes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests._old_schema import old_schema_db
from vdmbench.dashboard import arena, compare, ranking
from vdmbench.store.database import SCHEMA_VERSION, Store


def test_overall_rank_min_max_normalization_and_weights():
    wide = pd.DataFrame({"model": ["a", "b", "c"], "q": [1.0, 0.5, 0.0], "err": [10.0, 0.0, 5.0]})
    ways = {"q": True, "err": False}
    scores = ranking.normalized_scores(wide, ways)
    assert scores.q.tolist() == [1.0, 0.5, 0.0]
    assert scores.err.tolist() == [0.0, 1.0, 0.5]  # lower is better: the smallest error scores 1
    equal = ranking.overall_rank(wide, ways)
    assert equal.overall.tolist() == [0.5, 0.75, 0.25] and equal["rank"].tolist() == [2, 1, 3]
    only_q = ranking.overall_rank(wide, ways, {"q": 1.0, "err": 0.0})
    assert only_q["rank"].tolist() == [1, 2, 3]
    # A model without a value is scored on the metrics it has; a constant metric gives everyone 1.
    gap = pd.DataFrame({"model": ["a", "b"], "q": [1.0, np.nan], "err": [2.0, 2.0]})
    out = ranking.overall_rank(gap, ways)
    assert out.overall.tolist() == [1.0, 1.0]
    assert ranking.best_rows(wide, ways) == {"q": [0], "err": [1]}
    assert ranking.column_label("err", ways, ["err"]) == "err ↓ *"


def test_paired_delta_significance_follows_the_effect():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20)
    same = compare.paired_delta(base, base + rng.normal(0, 1e-3, 20))
    assert same.p_value > 0.05 and same.ci_low < 0 < same.ci_high
    shifted = compare.paired_delta(base, base + 0.5 + rng.normal(0, 0.1, 20))
    assert shifted.p_value < 0.01 and 0.4 < shifted.delta < 0.6 and shifted.ci_low > 0
    assert np.isnan(compare.paired_delta(base[:1], base[:1] + 1).p_value)  # one pair: no CI


def test_metric_deltas_holm_adjusted_verdicts_and_set_level():
    rng = np.random.default_rng(0)
    rows = []
    for run, shift in (("base", 0.0), ("cand", -0.5)):
        for i in range(12):
            noise = rng.normal(0, 0.05)
            rows += [{"run_id": run, "prompt_id": f"p{i}", "seed": 0, "metric": "q", "value": i + shift + noise},
                     {"run_id": run, "prompt_id": f"p{i}", "seed": 0, "metric": "same", "value": float(i)}]
    values = pd.DataFrame(rows)
    run_metrics = pd.DataFrame([
        {"run_id": "base", "metric": "q", "value": 5.5, "ci_low": 5.0, "ci_high": 6.0, "n": 12},
        {"run_id": "cand", "metric": "q", "value": 5.0, "ci_low": 4.5, "ci_high": 5.5, "n": 12},
        {"run_id": "base", "metric": "same", "value": 5.5, "ci_low": 5.0, "ci_high": 6.0, "n": 12},
        {"run_id": "cand", "metric": "same", "value": 5.5, "ci_low": 5.0, "ci_high": 6.0, "n": 12},
        {"run_id": "base", "metric": "fvd", "value": 100.0, "ci_low": 95.0, "ci_high": 105.0, "n": 12},
        {"run_id": "cand", "metric": "fvd", "value": 150.0, "ci_low": 145.0, "ci_high": 155.0, "n": 12},
    ])
    out = compare.metric_deltas(values, run_metrics, ["base", "cand"], {"q": True, "same": True, "fvd": False})
    out = out.set_index("metric")
    assert out.loc["q", "verdict"] == "worse" and out.loc["q", "delta"] == pytest.approx(-0.5, abs=0.05)
    assert out.loc["q", "p_value"] >= out.loc["q", "p_raw"]  # Holm never lowers a p-value
    assert out.loc["same", "verdict"] == "no significant change"
    assert out.loc["fvd", "test"] == "from run CIs" and out.loc["fvd", "verdict"] == "worse"
    assert out.loc["fvd", "delta"] == pytest.approx(50.0) and out.loc["fvd", "ci_low"] > 0


def test_bradley_terry_recovers_the_order_with_cis():
    rng = np.random.default_rng(1)
    strength = {"weak": -1.0, "mid": 0.0, "strong": 1.0}
    rows = []
    names = list(strength)
    for _ in range(300):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        rows.append({"model_a": a, "model_b": b, "winner": "a" if rng.random() < p else "b"})
    rows += [{"model_a": "mid", "model_b": "weak", "winner": "tie"}]
    ratings = arena.bradley_terry(pd.DataFrame(rows), n_boot=100)
    assert ratings.model.tolist() == ["strong", "mid", "weak"]
    assert (ratings.ci_low < ratings.rating).all() and (ratings.rating < ratings.ci_high).all()
    assert abs(ratings.rating.mean() - 1000) < 1e-6
    assert ratings.votes.sum() == 2 * len(rows) and ratings.set_index("model").ties["mid"] == 1
    # An unbeaten model still gets a finite rating (the ridge penalty).
    unbeaten = arena.bradley_terry(pd.DataFrame([{"model_a": "x", "model_b": "y", "winner": "a"}] * 5), n_boot=20)
    assert np.isfinite(unbeaten.rating).all() and unbeaten.model.iloc[0] == "x"


def test_metric_correlations_are_oriented():
    ratings = pd.DataFrame({"model": ["a", "b", "c", "d"], "rating": [1100.0, 1050.0, 950.0, 900.0]})
    wide = pd.DataFrame({"model": ["a", "b", "c", "d"], "q": [4.0, 3.0, 2.0, 1.0], "err": [1.0, 2.0, 3.0, 4.0]})
    corr = arena.metric_correlations(ratings, wide, {"q": True, "err": False}, ["q", "err"]).set_index("metric")
    assert corr.loc["q", "spearman rho"] == pytest.approx(1.0)
    assert corr.loc["err", "spearman rho"] == pytest.approx(-1.0)
    assert corr.loc["err", "oriented rho"] == pytest.approx(1.0)  # lower error, better rating: agreement
    few = arena.metric_correlations(ratings.head(2), wide, {"q": True}, ["q"])
    assert np.isnan(few["spearman rho"].iloc[0]) and few.models.iloc[0] == 2


def test_vote_on_an_older_schema_is_refused_and_never_migrates_the_file(tmp_path):
    import hashlib

    from vdmbench.core.errors import StoreError

    db = tmp_path / "old.duckdb"
    old_schema_db(db, 2).close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert arena.votes(Store(db, read_only=True), "s").empty  # readable
    pair = arena.Pair("s", "p", "a prompt", 0, "r1", "p-s0", "m1", "r2", "p-s0", "m2")
    with pytest.raises(StoreError, match="schema 2.*never migrates"):
        arena.record_vote(db, pair, "tie", "me")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # not migrated, not touched
    assert Store(db, read_only=True).schema_version() == 2
    current = tmp_path / "current.duckdb"
    Store(current)
    arena.record_vote(current, pair, "tie", "me")
    got = arena.votes(Store(current, read_only=True), "s")
    assert got[["model_a", "model_b", "winner", "voter"]].values.tolist() == [["m1", "m2", "tie", "me"]]
    assert Store(current, read_only=True).schema_version() == SCHEMA_VERSION
    with pytest.raises(ValueError):
        arena.record_vote(current, pair, "c")


def test_draw_pair_takes_two_models_of_one_prompt_and_seed():
    samples = pd.DataFrame({
        "run_id": ["r1", "r1", "r2", "r3"], "sample_id": ["p-s0", "q-s0", "p-s0", "p-s0"],
        "prompt_id": ["p", "q", "p", "p"], "prompt": ["P", "Q", "P", "P"], "seed": [0, 0, 0, 0],
        "status": ["ok", "ok", "ok", "failed"], "path": None, "preview_path": None,
    })
    runs = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "model": ["m1", "m2", "m3"]})
    cands = arena.candidates(samples, runs)
    assert set(cands.sample_id) == {"p-s0"} and set(cands.model) == {"m1", "m2"}  # q: one model; r3 failed
    rng = np.random.default_rng(0)
    sides = {arena.draw_pair(cands, "s", rng).model_a for _ in range(20)}
    assert sides == {"m1", "m2"}  # random order


def test_drilldown_shows_an_adapters_notes_as_rows():
    from vdmbench.dashboard.pages.drilldown import _notes

    assert _notes({"unknown_words": ["crimson", "blob"], "filter": "ok"}) == {"unknown words": "crimson, blob", "filter": "ok"}
    assert _notes(None) == {} and _notes(float("nan")) == {} and _notes([1]) == {}

"""Calibration of judge votes against human arena votes: pairwise accuracy recounted by hand, rank
correlations of +1 / -1 for a judge that orders the models like / against the people, the
dashboard's Bradley-Terry fit as the rating, and CIs that bracket the value."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vdmbench.core.errors import MetricInputError
from vdmbench.core.vote_agreement import calibration, match_votes, win_rates
from vdmbench.dashboard.arena import bradley_terry

MODELS = ["m0", "m1", "m2", "m3"]  # m3 is the best
PROMPTS = [f"p{i}" for i in range(10)]


def votes(winner_of, rng, swap_prob=0.5):
    """One vote per (prompt, pair of models): winner_of(prompt, x, y) names a model or 'tie'; the
    left/right order is random, as the arena shows it."""
    rows = []
    for p, (x, y) in itertools.product(PROMPTS, itertools.combinations(MODELS, 2)):
        a, b = (y, x) if rng.random() < swap_prob else (x, y)
        w = winner_of(p, x, y)
        rows.append({"prompt_id": p, "seed": 0, "model_a": a, "model_b": b,
                     "winner": "tie" if w == "tie" else ("a" if w == a else "b")})
    return pd.DataFrame(rows)


def stronger(p, x, y):
    return max(x, y)


def human_winner(p, x, y):  # people mostly prefer the stronger model; on two prompts m2 beats m3
    if {x, y} == {"m2", "m3"} and p in ("p0", "p1"):
        return "m2"
    if {x, y} == {"m0", "m1"} and p == "p2":
        return "tie"
    return max(x, y)


def test_accuracy_is_the_share_of_human_winners_the_judge_picked(tmp_path):
    rng = np.random.default_rng(0)
    human = votes(human_winner, rng)

    def judge_winner(p, x, y):  # the truth, with ties on m0-m1 for three prompts
        return "tie" if {x, y} == {"m0", "m1"} and p in ("p3", "p4", "p5") else max(x, y)

    judge = votes(judge_winner, rng)
    result = calibration(human, judge, n_boot=300)
    # By hand: 60 human votes, 1 tie -> 59 decided; the judge misses p0, p1 (m2-m3) and its 3 ties.
    assert result["matched_votes"] == 60 and result["human_decided"] == 59
    assert result["accuracy"] == pytest.approx(54 / 59)
    assert result["accuracy_decisive"] == pytest.approx(54 / 56)
    assert result["judge_tie_rate"] == pytest.approx(3 / 60)
    lo, hi = result["accuracy_ci"]
    assert lo <= result["accuracy"] <= hi and hi - lo > 0
    assert result["spearman"] == pytest.approx(1.0) and result["kendall"] == pytest.approx(1.0)
    assert result["models"] == 4
    # The vectorized bootstrap of win-rate correlations equals refitting each replicate.
    fast = calibration(human, judge, n_boot=40, seed=3)
    slow = calibration(human, judge, n_boot=40, seed=3, rate=lambda v: win_rates(v))
    assert fast["spearman_ci"] == pytest.approx(slow["spearman_ci"]) and fast["kendall_ci"] == pytest.approx(slow["kendall_ci"])
    assert fast["accuracy_ci"] == slow["accuracy_ci"]


def test_a_judge_that_orders_models_backwards_correlates_minus_one():
    rng = np.random.default_rng(1)
    human = votes(stronger, rng)
    judge = votes(lambda p, x, y: min(x, y), rng)
    result = calibration(human, judge, n_boot=200)
    assert result["accuracy"] == 0.0 and result["spearman"] == pytest.approx(-1.0)
    assert result["spearman_ci"] == [pytest.approx(-1.0), pytest.approx(-1.0)]
    bt = calibration(human, votes(stronger, rng), n_boot=10,
                     rate=lambda v: bradley_terry(v, n_boot=1).set_index("model").rating)
    assert bt["spearman"] == pytest.approx(1.0) and bt["accuracy"] == 1.0


def test_votes_match_whichever_side_each_model_was_shown_on():
    rng = np.random.default_rng(2)
    human = votes(stronger, rng, swap_prob=0.0)
    judge = votes(stronger, rng, swap_prob=1.0)  # every pair shown the other way round
    m = match_votes(human, judge)
    assert len(m) == 60 and (m.human == m.judge).all()
    rates = win_rates(human)
    assert rates.to_dict() == pytest.approx({"m0": 0.0, "m1": 1 / 3, "m2": 2 / 3, "m3": 1.0})
    other = judge.assign(prompt_id="elsewhere")
    with pytest.raises(MetricInputError, match="no human vote is on a pair the judge voted on"):
        calibration(human, other)

"""How far a judge's pairwise votes agree with people's arena votes on the same clips.

Both come as vote tables with the arena's columns (prompt_id, seed, model_a, model_b, winner in
a | b | tie): the human ones from the store's `arena_votes`, the judge's from
judge_pairwise.compare_runs. A vote is matched by (prompt_id, seed, the two models), whichever model
was shown on the left; a pair with several human votes counts each of them.

- accuracy: over the human votes with a winner, the fraction where the judge picked the same model
  (a judge tie counts as a miss); accuracy_decisive: the same over the pairs the judge also decided;
  judge_tie_rate: the fraction of judge ties among the matched votes.
- rank correlation: Spearman's rho (and Kendall's tau) between the models' ratings from the human
  votes and from the judge's votes, over the models both rate (three or more). Ratings by default are
  win rates, (wins + ties / 2) / games; pass `rate=` for another (e.g. the dashboard's Bradley-Terry
  fit: `lambda v: bradley_terry(v, n_boot=1).set_index("model").rating`).
CIs: percentile bootstrap over prompts (all votes of a drawn prompt together), seeded.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from vdmbench.core.errors import MetricInputError

Rate = Callable[[pd.DataFrame], pd.Series]


def win_rates(votes: pd.DataFrame) -> pd.Series:
    """Per model: (wins + ties / 2) / games."""
    score_a = votes.winner.map({"a": 1.0, "b": 0.0, "tie": 0.5})
    scores = pd.concat([pd.Series(score_a.to_numpy(), index=votes.model_a.to_numpy()),
                        pd.Series(1.0 - score_a.to_numpy(), index=votes.model_b.to_numpy())])
    return scores.groupby(level=0).mean()


def _winner_model(votes: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(votes.winner == "a", votes.model_a,
                              np.where(votes.winner == "b", votes.model_b, "tie")), index=votes.index)


def match_votes(human: pd.DataFrame, judge: pd.DataFrame) -> pd.DataFrame:
    """One row per human vote whose pair the judge voted on: prompt_id, seed, the two models
    (sorted), and the winner each side named (a model, or "tie")."""
    def keyed(v: pd.DataFrame, who: str) -> pd.DataFrame:
        v = v[v.winner.isin(["a", "b", "tie"])]
        lo = np.minimum(v.model_a.astype(str), v.model_b.astype(str))
        hi = np.maximum(v.model_a.astype(str), v.model_b.astype(str))
        return pd.DataFrame({"prompt_id": v.prompt_id.astype(str).to_numpy(), "seed": v.seed.astype(int).to_numpy(),
                             "model_x": lo, "model_y": hi, who: _winner_model(v).to_numpy()})

    j = keyed(judge, "judge").drop_duplicates(["prompt_id", "seed", "model_x", "model_y"], keep="last")
    return keyed(human, "human").merge(j, on=["prompt_id", "seed", "model_x", "model_y"], how="inner")


def _agreement(m: pd.DataFrame) -> tuple[float, float, float]:
    decided = m[m.human != "tie"]
    both = decided[decided.judge != "tie"]
    acc = float((decided.human == decided.judge).mean()) if len(decided) else float("nan")
    acc_d = float((both.human == both.judge).mean()) if len(both) else float("nan")
    ties = float((m.judge == "tie").mean()) if len(m) else float("nan")
    return acc, acc_d, ties


def _as_votes(m: pd.DataFrame, who: str) -> pd.DataFrame:
    winner = np.where(m[who] == m.model_x, "a", np.where(m[who] == m.model_y, "b", "tie"))
    return pd.DataFrame({"model_a": m.model_x.to_numpy(), "model_b": m.model_y.to_numpy(), "winner": winner})


def _correlations(m: pd.DataFrame, rate: Rate) -> tuple[float, float, int]:
    h, j = rate(_as_votes(m, "human")), rate(_as_votes(m, "judge"))
    common = sorted(set(h.index) & set(j.index))
    if len(common) < 3:
        return float("nan"), float("nan"), len(common)
    x, y = h.loc[common].to_numpy(float), j.loc[common].to_numpy(float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant rating ranks nothing
        return float("nan"), float("nan"), len(common)
    return float(spearmanr(x, y).statistic), float(kendalltau(x, y).statistic), len(common)


def _weighted_agreement(m: pd.DataFrame, w: np.ndarray) -> np.ndarray:
    decided = (m.human != "tie").to_numpy(np.float64)
    agree = (m.human == m.judge).to_numpy(np.float64) * decided
    both = decided * (m.judge != "tie").to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(w @ agree) / (w @ decided), (w @ agree) / (w @ both)], axis=1)


def _weighted_rank_correlations(m: pd.DataFrame, w: np.ndarray) -> np.ndarray:
    """Spearman and Kendall between human and judge win rates, per replicate of row weights."""
    from scipy.stats import rankdata

    models = sorted(set(m.model_x) | set(m.model_y))
    col = {name: i for i, name in enumerate(models)}
    x, y = m.model_x.map(col).to_numpy(), m.model_y.map(col).to_numpy()
    rows = np.arange(len(m))
    games = np.zeros((len(m), len(models)))
    games[rows, x] = games[rows, y] = 1.0
    out = np.full((w.shape[0], 2), np.nan)
    rates = []
    for who in ("human", "judge"):
        score = np.zeros((len(m), len(models)))
        won = m[who].to_numpy()
        score[rows, x] = np.where(won == m.model_x, 1.0, np.where(won == "tie", 0.5, 0.0))
        score[rows, y] = 1.0 - score[rows, x]
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append((w @ score) / (w @ games))
    h, j = rates
    ok = np.isfinite(h).all(axis=1) & np.isfinite(j).all(axis=1) & (np.ptp(h, axis=1) > 0) & (np.ptp(j, axis=1) > 0)
    if len(models) < 3 or not ok.any():
        return out
    rh, rj = rankdata(h[ok], axis=1), rankdata(j[ok], axis=1)
    rh -= rh.mean(axis=1, keepdims=True)
    rj -= rj.mean(axis=1, keepdims=True)
    out[ok, 0] = (rh * rj).sum(axis=1) / np.sqrt((rh ** 2).sum(axis=1) * (rj ** 2).sum(axis=1))
    out[ok, 1] = [kendalltau(a, b).statistic for a, b in zip(h[ok], j[ok])]
    return out


def calibration(human: pd.DataFrame, judge: pd.DataFrame, *, rate: Rate = win_rates, n_boot: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Agreement and rank correlation of judge votes with human votes, with bootstrap CIs over
    prompts (see the module docstring)."""
    m = match_votes(human, judge)
    if m.empty:
        raise MetricInputError("calibration: no human vote is on a pair the judge voted on (match by prompt, "
                               "seed and the two models); judge the runs people voted on")
    acc, acc_d, ties = _agreement(m)
    rho, tau, n_models = _correlations(m, rate)
    prompts, cluster = np.unique(m.prompt_id.to_numpy(), return_inverse=True)
    rng = np.random.default_rng(seed)
    reps = np.full((n_boot, 4), np.nan)
    if len(prompts) >= 2 and n_boot > 0:
        # Each replicate draws prompts with replacement: row weights = how often its prompt was drawn.
        draws = rng.integers(0, len(prompts), size=(n_boot, len(prompts)))
        weights = np.stack([np.bincount(d, minlength=len(prompts)) for d in draws])[:, cluster].astype(np.float64)
        reps[:, :2] = _weighted_agreement(m, weights)
        if rate is win_rates:
            reps[:, 2:] = _weighted_rank_correlations(m, weights)
        else:  # a caller's rating: refitted per replicate
            for b in range(n_boot):
                sample = m.iloc[np.repeat(np.arange(len(m)), weights[b].astype(int))]
                reps[b, 2:] = _correlations(sample, rate)[:2]
    alpha = (1 - confidence) / 2

    def ci(col: int) -> list[float | None]:
        vals = reps[:, col][np.isfinite(reps[:, col])]
        if len(vals) < max(10, n_boot // 2):  # too few valid replicates for an honest interval
            return [None, None]
        lo, hi = np.quantile(vals, [alpha, 1 - alpha])
        return [float(lo), float(hi)]

    def value(x: float) -> float | None:
        return x if np.isfinite(x) else None

    return {
        "matched_votes": int(len(m)), "human_decided": int((m.human != "tie").sum()), "prompts": int(len(prompts)),
        "accuracy": value(acc), "accuracy_ci": ci(0),
        "accuracy_decisive": value(acc_d), "accuracy_decisive_ci": ci(1),
        "judge_tie_rate": value(ties),
        "models": n_models, "spearman": value(rho), "spearman_ci": ci(2), "kendall": value(tau), "kendall_ci": ci(3),
        "ci": f"percentile bootstrap over prompts, {confidence:.0%}, {n_boot} replicates, seed {seed}",
    }


METRICS: list[type] = []  # a comparison of vote tables, not a metric of one run

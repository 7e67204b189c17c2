"""Arena: blind pairwise human votes between clips of the same prompt and seed.

Votes go to the `arena_votes` table (schema 2), the only write the dashboard makes, through its
own short-lived connection, and only into a file already at this version's schema (a vote never
migrates a file). Each vote is first written to a pending folder beside the database, then
stored; one that meets a busy file stays queued there and is retried (flush), never lost. Ratings are a Bradley-Terry model fitted by Newton's method on the
log-likelihood with a small ridge penalty (so a model that never lost still gets a finite rating);
a tie counts as half a win for each side. Ratings are shown on the Elo scale:
1000 + 400 / ln(10) * strength (centered on the mean model).

CIs (default `ci="laplace"`): the ridge penalty is a Gaussian prior N(0, 1/ridge) on each strength,
so the fit is a posterior mode, and the interval is the normal (Laplace) approximation of that
posterior: covariance = inverse of the negative Hessian of the penalized log-likelihood at the
mode, mapped through the centering (ratings are relative to the mean model). A model with one vote
thus gets a wide interval (little information beyond the prior), never a zero-width one pinned at
1000, which is what resampling a handful of votes gives (every resample holds the same votes).
`ci="bootstrap"` resamples the votes instead (for comparison; degenerate with few votes).
Below MIN_VOTES votes a model's rating is flagged: its interval is mostly the prior's width.

Pairs: two clips with the same sha256 (byte-identical files, e.g. two runs of a deterministic
model, or one cached generation reused) are never offered: a vote between them says nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from vdmbench.core.atomic import write_text
from vdmbench.core.errors import StoreError
from vdmbench.core.stats import clustered_bootstrap_mean
from vdmbench.store import SCHEMA_VERSION, Store, dashboard_reads

WINNERS = ("a", "b", "tie")
ELO_SCALE = 400.0 / np.log(10.0)
MIN_VOTES = 10  # per model: fewer, and the page warns that its rating is mostly the prior


@dataclass(frozen=True)
class Pair:
    """Two clips of one prompt and seed from two models' runs; 'a' is shown on the left."""

    suite: str
    prompt_id: str
    prompt: str
    seed: int
    run_a: str
    sample_a: str
    model_a: str
    run_b: str
    sample_b: str
    model_b: str


def candidates(samples: pd.DataFrame, runs: pd.DataFrame, hashes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Successful samples of the given runs (one per model and prompt/seed) whose (prompt, seed)
    has clips from two or more models that are not byte-identical. `hashes` (run_id, sample_id,
    sha256) tells identical files apart; a clip without a hash counts as unlike every other."""
    ok = samples[samples.status == "ok"].merge(runs[["run_id", "model"]], on="run_id")
    ok = ok.drop_duplicates(["prompt_id", "seed", "model"]).reset_index(drop=True)
    if hashes is not None and not hashes.empty and "sha256" not in ok:
        ok = ok.merge(hashes[["run_id", "sample_id", "sha256"]], on=["run_id", "sample_id"], how="left")
    if "sha256" not in ok:
        ok["sha256"] = None
    # A missing hash stands for itself only (never equal to another clip's).
    ok["clip_id"] = [h if isinstance(h, str) and h else f"{r}/{s}" for h, r, s in zip(ok.sha256, ok.run_id, ok.sample_id)]
    distinct = ok.groupby(["prompt_id", "seed"])["clip_id"].transform("nunique")
    return ok[distinct >= 2].reset_index(drop=True)


def draw_pair(cands: pd.DataFrame, suite: str, rng: np.random.Generator) -> Pair | None:
    """A uniformly random (prompt, seed), then a uniformly random pair of its models whose clips
    differ (sha256), in random order."""
    if cands.empty:
        return None
    keys = cands[["prompt_id", "seed"]].drop_duplicates().reset_index(drop=True)
    key = keys.iloc[int(rng.integers(len(keys)))]
    group = cands[(cands.prompt_id == key.prompt_id) & (cands.seed == key.seed)].drop_duplicates("model")
    clips = list(group["clip_id"]) if "clip_id" in group else list(range(len(group)))
    pairs = [(i, j) for i in range(len(group)) for j in range(len(group)) if i != j and clips[i] != clips[j]]
    i, j = pairs[int(rng.integers(len(pairs)))]
    a, b = group.iloc[int(i)], group.iloc[int(j)]
    return Pair(suite, str(a.prompt_id), str(a.prompt), int(a.seed), str(a.run_id), str(a.sample_id),
                str(a.model), str(b.run_id), str(b.sample_id), str(b.model))


VOTE_BUSY_TIMEOUT = 2.0  # seconds a vote waits for a busy file before it is queued


def record_vote(db_path: str | Path, pair: Pair, winner: str, voter: str | None = None, *,
                vote_id: str | None = None, busy_timeout: float = VOTE_BUSY_TIMEOUT) -> str:
    """Store one vote; returns its id. StoreError (one line) when the file is busy for longer than
    `busy_timeout` or is not at this version's schema (then nothing is written: no migration)."""
    if winner not in WINNERS:
        raise ValueError(f"winner must be one of {WINNERS}, got {winner!r}")
    vote_id = vote_id or uuid.uuid4().hex
    version = dashboard_reads.schema_version(db_path, busy_timeout=busy_timeout)
    if version != SCHEMA_VERSION:
        raise StoreError(f"{db_path}: vote not stored: the file has schema {version}, this vdmbench writes "
                         f"{SCHEMA_VERSION}, and the dashboard never migrates a file")
    store = Store(db_path, busy_timeout=busy_timeout)  # at the current schema: opening migrates nothing
    store.record_vote(vote_id=vote_id, suite=pair.suite, prompt_id=pair.prompt_id, seed=pair.seed,
                      run_a=pair.run_a, sample_a=pair.sample_a, model_a=pair.model_a, run_b=pair.run_b,
                      sample_b=pair.sample_b, model_b=pair.model_b, winner=winner, voter=voter or None)
    return vote_id


def pending_folder(db_path: str | Path) -> Path:
    """Where votes wait while the database is busy: beside it, one JSON file per vote, so a
    queued vote survives a closed browser tab or a restarted app."""
    p = Path(db_path)
    return p.with_name(p.name + ".pending-votes")


@dataclass
class PendingVote:
    """A vote not yet in the database, with its id, so a retry stores it exactly once."""

    pair: Pair
    winner: str
    voter: str | None
    vote_id: str


def queue_vote(db_path: str | Path, pair: Pair, winner: str, voter: str | None = None) -> PendingVote:
    """Write the vote to the pending folder first (durable), before trying the database."""
    if winner not in WINNERS:
        raise ValueError(f"winner must be one of {WINNERS}, got {winner!r}")
    vote = PendingVote(pair, winner, voter or None, uuid.uuid4().hex)
    name = f"{time.time_ns():020d}-{vote.vote_id}.json"
    write_text(pending_folder(db_path) / name, json.dumps(asdict(vote)), fsync=True)
    return vote


def pending(db_path: str | Path) -> list[tuple[Path, PendingVote]]:
    """Queued votes, oldest first (an unreadable file is left for a person to look at)."""
    folder = pending_folder(db_path)
    out = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            raw = json.loads(f.read_text())
            out.append((f, PendingVote(Pair(**raw["pair"]), raw["winner"], raw["voter"], raw["vote_id"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def flush(db_path: str | Path, *, busy_timeout: float = VOTE_BUSY_TIMEOUT) -> tuple[int, int, str | None]:
    """Store the queued votes in order, each once (one already stored is just dropped from the
    queue). Returns (stored, still waiting, the error that stopped it or None); a busy file stops
    the flush and the rest wait for the next one."""
    stored = 0
    queue = pending(db_path)
    for i, (f, v) in enumerate(queue):
        try:
            if not dashboard_reads.has_vote(Store(db_path, read_only=True, busy_timeout=busy_timeout), v.vote_id):
                record_vote(db_path, v.pair, v.winner, v.voter, vote_id=v.vote_id, busy_timeout=busy_timeout)
                stored += 1
        except StoreError as e:
            return stored, len(queue) - i, str(e).splitlines()[0]
        f.unlink(missing_ok=True)
    return stored, 0, None


def votes(store: Store, suite: str) -> pd.DataFrame:
    """All votes on a suite; empty when the database predates the arena table."""
    if not store.has_table("arena_votes"):
        return pd.DataFrame(columns=["model_a", "model_b", "winner", "created_at"])
    return store.votes(suite)


def _fit(models: list[str], a: np.ndarray, b: np.ndarray, score_a: np.ndarray, ridge: float) -> np.ndarray:
    """Penalized maximum-likelihood BT strengths (natural-log scale, mean 0)."""
    return _fit_with_hessian(models, a, b, score_a, ridge)[0]


def _fit_with_hessian(models: list[str], a: np.ndarray, b: np.ndarray, score_a: np.ndarray,
                      ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(strengths with mean 0, Hessian of the penalized log-likelihood at the mode)."""
    k = len(models)
    wins = np.zeros((k, k))
    games = np.zeros((k, k))
    np.add.at(wins, (a, b), score_a)
    np.add.at(wins, (b, a), 1.0 - score_a)
    np.add.at(games, (a, b), 1.0)
    np.add.at(games, (b, a), 1.0)
    theta = np.zeros(k)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        grad = (wins - games * p).sum(axis=1) - ridge * theta
        w = games * p * (1.0 - p)
        hess = w - np.diag(w.sum(axis=1)) - ridge * np.eye(k)
        step = np.linalg.solve(hess, grad)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    w = games * p * (1.0 - p)
    hess = w - np.diag(w.sum(axis=1)) - ridge * np.eye(k)
    return theta - theta.mean(), hess


def laplace_sd(hess: np.ndarray) -> np.ndarray:
    """Posterior standard deviation of each centered strength: sqrt(diag(C S C^T)) with S the
    inverse of the negative Hessian and C = I - 1/k (ratings are relative to the mean model)."""
    k = hess.shape[0]
    cov = np.linalg.inv(-hess)
    center = np.eye(k) - np.full((k, k), 1.0 / k)
    return np.sqrt(np.clip(np.diag(center @ cov @ center.T), 0.0, None))


def bradley_terry(vote_rows: pd.DataFrame, *, n_boot: int = 200, confidence: float = 0.95,
                  ridge: float = 0.1, seed: int = 0, ci: str = "laplace") -> pd.DataFrame:
    """Ratings per model (Elo scale) with CIs (module docstring: `ci` is "laplace", the default,
    or "bootstrap" with `n_boot` resamples of the votes), votes and win counts, best first."""
    if ci not in ("laplace", "bootstrap"):
        raise ValueError(f"ci must be 'laplace' or 'bootstrap', got {ci!r}")
    cols = ["model", "rating", "ci_low", "ci_high", "votes", "wins", "ties"]
    if vote_rows.empty:
        return pd.DataFrame(columns=cols)
    models = sorted(set(vote_rows.model_a) | set(vote_rows.model_b))
    index = {m: i for i, m in enumerate(models)}
    a = vote_rows.model_a.map(index).to_numpy()
    b = vote_rows.model_b.map(index).to_numpy()
    score_a = vote_rows.winner.map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(dtype=float)
    theta, hess = _fit_with_hessian(models, a, b, score_a, ridge)
    alpha = (1 - confidence) / 2
    if ci == "laplace":
        from scipy.stats import norm

        half = float(norm.ppf(1 - alpha)) * laplace_sd(hess)
        lo, hi = theta - half, theta + half
    else:
        rng = np.random.default_rng(seed)
        boot = np.empty((n_boot, len(models)))
        for i in range(n_boot):
            pick = rng.integers(0, len(a), size=len(a))
            boot[i] = _fit(models, a[pick], b[pick], score_a[pick], ridge)
        lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    counts = pd.concat([vote_rows.model_a, vote_rows.model_b]).value_counts()
    wins = pd.concat([vote_rows.model_a[vote_rows.winner == "a"], vote_rows.model_b[vote_rows.winner == "b"]]).value_counts()
    ties = pd.concat([vote_rows.model_a[vote_rows.winner == "tie"], vote_rows.model_b[vote_rows.winner == "tie"]]).value_counts()
    out = pd.DataFrame({
        "model": models,
        "rating": 1000 + ELO_SCALE * theta,
        "ci_low": 1000 + ELO_SCALE * lo,
        "ci_high": 1000 + ELO_SCALE * hi,
        "votes": [int(counts.get(m, 0)) for m in models],
        "wins": [int(wins.get(m, 0)) for m in models],
        "ties": [int(ties.get(m, 0)) for m in models],
    })
    return out.sort_values("rating", ascending=False).reset_index(drop=True)


def metric_correlations(ratings: pd.DataFrame, wide: pd.DataFrame, metric_directions: Mapping[str, bool],
                        metrics: list[str]) -> pd.DataFrame:
    """Spearman rank correlation of each metric with the human ratings, across models.

    `oriented rho` flips the sign of lower-is-better metrics, so positive always means the metric
    agrees with the humans. Needs three or more models with both a rating and a value.
    """
    from scipy.stats import spearmanr

    rows = []
    merged = ratings[["model", "rating"]].merge(wide, on="model")
    for metric in metrics:
        part = merged[["rating", metric]].apply(pd.to_numeric, errors="coerce").dropna() if metric in merged else pd.DataFrame()
        rho = p = float("nan")
        n = len(part)
        if n >= 3 and part[metric].nunique() > 1 and part.rating.nunique() > 1:
            res = spearmanr(part[metric], part.rating)
            rho, p = float(res.statistic), float(res.pvalue)
        direction = metric_directions.get(metric)
        sign = float("nan") if direction is None else 1.0 if direction else -1.0
        rows.append({"metric": metric, "spearman rho": rho, "oriented rho": rho * sign, "p_value": p, "models": n})
    return pd.DataFrame(rows, columns=["metric", "spearman rho", "oriented rho", "p_value", "models"])


def metric_vote_agreement(vote_clips: pd.DataFrame, values: pd.DataFrame, metric_directions: Mapping[str, bool],
                          *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per per-sample metric: how often it prefers the clip the person preferred.

    Over the human votes with a winner (ties left out) where both clips have a value: the metric
    picks the clip with the better value in its own direction; equal values are a metric tie and
    left out too. accuracy = agreeing votes / votes used; CI: percentile bootstrap over those
    votes (seeded). 0.5 is chance. `vote_clips`: run_a, sample_a, run_b, sample_b, winner."""
    cols = ["metric", "vote accuracy", "accuracy ci_low", "accuracy ci_high", "votes used", "metric ties"]
    decided = vote_clips[vote_clips.winner.isin(["a", "b"])] if not vote_clips.empty else vote_clips
    if decided.empty or values.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for metric, part in values.groupby("metric", sort=True):
        direction = metric_directions.get(str(metric))
        if direction is None:
            continue
        lookup = part.set_index(["run_id", "sample_id"]).value
        lookup = lookup[~lookup.index.duplicated()]
        va = lookup.reindex(pd.MultiIndex.from_arrays([decided.run_a, decided.sample_a])).to_numpy(dtype=float)
        vb = lookup.reindex(pd.MultiIndex.from_arrays([decided.run_b, decided.sample_b])).to_numpy(dtype=float)
        both = np.isfinite(va) & np.isfinite(vb)
        if not both.any():
            continue
        ties = both & (va == vb)
        used = both & ~ties
        pick_a = (va > vb) if direction else (va < vb)
        agree = (pick_a == (decided.winner.to_numpy() == "a"))[used].astype(np.float64)
        acc = lo = hi = float("nan")
        if len(agree):
            acc = float(agree.mean())
            if len(agree) >= 2 and n_boot > 0:  # each vote its own resampling unit
                est = clustered_bootstrap_mean(agree, np.arange(len(agree)), n_boot=n_boot, confidence=confidence,
                                               seed=seed)
                lo, hi = est.ci_low, est.ci_high
        rows.append({"metric": metric, "vote accuracy": acc, "accuracy ci_low": lo, "accuracy ci_high": hi,
                     "votes used": int(used.sum()), "metric ties": int(ties.sum())})
    return pd.DataFrame(rows, columns=cols)


def judge_agreement(human: pd.DataFrame, judges: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (judge, criterion) of `judges` (the judge_votes table): its agreement with the human
    votes on the same clip pairs, vdmbench.core.vote_agreement.calibration (pairwise
    accuracy and Spearman/Kendall between the models' win rates, CIs by bootstrap over prompts).
    A judge with no pair in common with the people gets a row saying so."""
    cols = ["judge", "criterion", "matched votes", "accuracy", "accuracy ci_low", "accuracy ci_high",
            "spearman", "spearman ci_low", "spearman ci_high", "kendall", "models", "note"]
    if human.empty or judges.empty:
        return pd.DataFrame(columns=cols)
    from vdmbench.core.errors import MetricInputError
    from vdmbench.core.vote_agreement import calibration

    rows = []
    for (judge, criterion), part in judges.groupby(["judge", "criterion"], sort=True):
        row: dict = {"judge": judge, "criterion": criterion, "note": ""}
        try:
            c = calibration(human, part, n_boot=n_boot, seed=seed)
        except MetricInputError:
            rows.append(row | {"matched votes": 0, "note": "no pair in common with the human votes"})
            continue
        acc_ci = c["accuracy_ci"] or [None, None]
        rho_ci = c["spearman_ci"] or [None, None]
        rows.append(row | {"matched votes": c["matched_votes"], "accuracy": c["accuracy"],
                           "accuracy ci_low": acc_ci[0], "accuracy ci_high": acc_ci[1], "spearman": c["spearman"],
                           "spearman ci_low": rho_ci[0], "spearman ci_high": rho_ci[1], "kendall": c["kendall"],
                           "models": c["models"]})
    return pd.DataFrame(rows, columns=cols)

"""Arena: blind pairwise human votes between clips of the same prompt and seed.

Votes go to the `arena_votes` table (schema 2), the only write the dashboard makes, through its
own short-lived connection, and only into a file already at this version's schema (a vote never
migrates a file). Each vote is first written to a pending folder beside the database, then
stored; one that meets a busy file stays queued there and is retried (flush), never lost. Ratings are a Bradley-Terry model fitted by Newton's method on the
log-likelihood with a small ridge penalty (so a model that never lost still gets a finite rating);
a tie counts as half a win for each side. CIs come from resampling the votes with replacement.
Ratings are shown on the Elo scale: 1000 + 400 / ln(10) * strength (centered on the mean model).
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
from vdmbench.store import SCHEMA_VERSION, Store, dashboard_reads

WINNERS = ("a", "b", "tie")
ELO_SCALE = 400.0 / np.log(10.0)


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


def candidates(samples: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Successful samples of the given runs whose (prompt, seed) has clips from two or more models."""
    ok = samples[samples.status == "ok"].merge(runs[["run_id", "model"]], on="run_id")
    n_models = ok.groupby(["prompt_id", "seed"]).model.transform("nunique")
    return ok[n_models >= 2].reset_index(drop=True)


def draw_pair(cands: pd.DataFrame, suite: str, rng: np.random.Generator) -> Pair | None:
    """A uniformly random (prompt, seed), two different models at random, in random order."""
    if cands.empty:
        return None
    keys = cands[["prompt_id", "seed"]].drop_duplicates().reset_index(drop=True)
    key = keys.iloc[int(rng.integers(len(keys)))]
    group = cands[(cands.prompt_id == key.prompt_id) & (cands.seed == key.seed)].drop_duplicates("model")
    i, j = rng.choice(len(group), size=2, replace=False)
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
    return theta - theta.mean()


def bradley_terry(vote_rows: pd.DataFrame, *, n_boot: int = 200, confidence: float = 0.95,
                  ridge: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Ratings per model (Elo scale) with bootstrap CIs, votes and win counts, best first."""
    cols = ["model", "rating", "ci_low", "ci_high", "votes", "wins", "ties"]
    if vote_rows.empty:
        return pd.DataFrame(columns=cols)
    models = sorted(set(vote_rows.model_a) | set(vote_rows.model_b))
    index = {m: i for i, m in enumerate(models)}
    a = vote_rows.model_a.map(index).to_numpy()
    b = vote_rows.model_b.map(index).to_numpy()
    score_a = vote_rows.winner.map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(dtype=float)
    theta = _fit(models, a, b, score_a, ridge)
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(models)))
    for i in range(n_boot):
        pick = rng.integers(0, len(a), size=len(a))
        boot[i] = _fit(models, a[pick], b[pick], score_a[pick], ridge)
    alpha = (1 - confidence) / 2
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

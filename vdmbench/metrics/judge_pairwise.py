"""Pairwise comparison by a VLM judge: two clips of the same prompt and seed from two runs, asked
which is better on a named criterion, asked twice with the positions swapped (a verdict that flips
with the position is a tie, so a judge that always prefers the first clip yields only ties).

It compares runs that are already stored, so it is a function over two or more runs' samples, not
a metric of one run (a run cannot see another model's clips while it scores its own):

    votes = compare_runs(store, [run_a, run_b], judge, criterion="visual quality")

`votes` has the columns of the arena's human votes (model_a, model_b, winner in a | b | tie, plus
prompt_id, seed, sample_a, sample_b and the raw replies), so the dashboard's Bradley-Terry fit
(`vdmbench.dashboard.arena.bradley_terry`) rates models from judge votes exactly as from human
ones; that fit lives above this layer and is called by the command that calls this function.
Verdicts with a failed call have winner None and are left out of a fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pandas as pd
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.core.video import read_video
from vdmbench.judges import Judge
from vdmbench.store.database import Store

VOTE_COLUMNS = ["prompt_id", "prompt", "seed", "model_a", "model_b", "run_a", "run_b", "sample_a", "sample_b",
                "winner", "criterion", "forward", "backward"]


@dataclass(frozen=True)
class ClipPair:
    """Two clips of one prompt and seed; `a` is the first run's."""

    prompt_id: str
    prompt: str
    seed: int
    model_a: str
    run_a: str
    sample_a: str
    frames_a: torch.Tensor  # uint8 [T, H, W, 3]
    model_b: str
    run_b: str
    sample_b: str
    frames_b: torch.Tensor


def judge_votes(judge: Judge, pairs: Sequence[ClipPair], criterion: str) -> pd.DataFrame:
    """One vote row per pair (see the module docstring); both orders of each pair are asked."""
    verdicts = judge.choose_batch([(p.frames_a, p.frames_b, criterion, p.prompt) for p in pairs])
    rows = [{
        "prompt_id": p.prompt_id, "prompt": p.prompt, "seed": p.seed, "model_a": p.model_a, "model_b": p.model_b,
        "run_a": p.run_a, "run_b": p.run_b, "sample_a": p.sample_a, "sample_b": p.sample_b,
        "winner": v.winner, "criterion": criterion, "forward": v.forward.raw or v.forward.error,
        "backward": v.backward.raw or v.backward.error,
    } for p, v in zip(pairs, verdicts)]
    return pd.DataFrame(rows, columns=VOTE_COLUMNS)


def stored_pairs(store: Store, run_a: str, run_b: str) -> Iterator[ClipPair]:
    """The clips of every (prompt, seed) both runs generated successfully, read from their files."""
    ra, rb = store.get_run(run_a), store.get_run(run_b)
    if ra.suite != rb.suite:
        raise ConfigError(f"runs {ra.run_id[:8]} ({ra.suite}) and {rb.run_id[:8]} ({rb.suite}) are of different "
                          "suites; compare runs of one suite")
    root = Path(store.path).parent  # sample paths are stored relative to the database's folder
    b_by_key = {(s.prompt_id, s.seed): s for s in store.samples(rb.run_id, ok_only=True)}
    for sa in store.samples(ra.run_id, ok_only=True, order="prompt"):
        sb = b_by_key.get((sa.prompt_id, sa.seed))
        if sb is None or not sa.path or not sb.path:
            continue
        va, vb = read_video(root / sa.path), read_video(root / sb.path)
        yield ClipPair(sa.prompt_id, sa.prompt, sa.seed, ra.model, ra.run_id, sa.sample_id, va.frames,
                       rb.model, rb.run_id, sb.sample_id, vb.frames)


def compare_runs(store: Store, run_ids: Sequence[str], judge: Judge, criterion: str, *,
                 chunk: int = 16) -> pd.DataFrame:
    """Judge votes between every two of the runs, over the (prompt, seed)s they share; clips are
    read `chunk` pairs at a time, so memory stays bounded however large the suite."""
    if len(run_ids) < 2:
        raise ConfigError("judge_pairwise: give at least two runs to compare")
    if not criterion.strip():
        raise ConfigError("judge_pairwise: name the criterion (e.g. 'visual quality', 'prompt adherence')")
    parts = []
    for a, b in combinations(run_ids, 2):
        batch: list[ClipPair] = []
        for pair in stored_pairs(store, a, b):
            batch.append(pair)
            if len(batch) == chunk:
                parts.append(judge_votes(judge, batch, criterion))
                batch = []
        if batch:
            parts.append(judge_votes(judge, batch, criterion))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=VOTE_COLUMNS)


METRICS: list[type] = []  # a comparison of runs, not a metric of one run (see the module docstring)

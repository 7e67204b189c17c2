"""Arena: blind A/B votes between two models' clips of one prompt and seed; BT ratings."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import streamlit as st

from vdmbench.core.errors import StoreError
from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard import arena, cells, data, ranking
from vdmbench.dashboard.pages import leaderboard
from vdmbench.dashboard.pages.common import Context, show_video
from vdmbench.store import SCHEMA_VERSION

_PAIR = "arena_pair"
_RNG = "arena_rng"
_LAST = "arena_last"
_FLUSHED = "arena_flushed"


def _next_pair(cands: pd.DataFrame, suite: str) -> None:
    # One generator per browser session, so two people voting at once see independent pairs.
    rng = st.session_state.setdefault(_RNG, np.random.default_rng())
    pair = arena.draw_pair(cands, suite, rng)
    st.session_state[_PAIR] = asdict(pair) if pair else None


def _vote(db_path: str, winner: str | None, cands: pd.DataFrame, suite: str) -> None:
    pair = st.session_state.get(_PAIR)
    if pair and winner:
        picked = {"a": pair["model_a"], "b": pair["model_b"]}.get(winner, "neither (tie)")
        reveal = f"{picked}. A was {pair['model_a']}, B was {pair['model_b']}."
        try:
            arena.queue_vote(db_path, arena.Pair(**pair), winner, st.session_state.get("arena_voter") or None)
        except OSError as e:  # no queue folder possible (read-only folder): straight to the database
            try:
                arena.record_vote(db_path, arena.Pair(**pair), winner, st.session_state.get("arena_voter") or None)
            except StoreError as err:
                st.session_state[_LAST] = f"Vote NOT stored ({err}; the queue folder failed too: {e})."
                _next_pair(cands, suite)
                return
            st.session_state[_LAST] = f"Vote stored: {reveal}"
            _next_pair(cands, suite)
            return
        _, waiting, error = arena.flush(db_path)
        st.session_state[_FLUSHED] = True  # this rerun need not try the queue again
        st.session_state[_LAST] = (f"Vote stored: {reveal}" if not waiting else
                                   f"Vote queued ({waiting} waiting; retried on your next action): {reveal} "
                                   f"Reason: {error}")
    else:
        st.session_state[_LAST] = "Skipped."
    _next_pair(cands, suite)


def _retry_queue(db_path: str) -> int:
    """Store what the queue holds; returns how many votes it stored now."""
    if st.session_state.pop(_FLUSHED, False) or not arena.pending(db_path):
        return 0
    stored, waiting, error = arena.flush(db_path)
    if waiting:
        st.warning(f"{waiting} vote(s) queued, not yet stored ({error}); retried on the next action.", icon="⏳")
    elif stored:
        st.success(f"{stored} queued vote(s) stored.")
    return stored


def render(ctx: Context) -> None:
    st.header(f"Arena · {ctx.suite} v{ctx.version}")
    st.caption("Two clips of the same prompt and seed from two different models, in random order. "
               "Pick the better one; the models are revealed after the vote.")
    if _retry_queue(ctx.db_path):
        # The sidebar keyed the cached reads before this flush wrote the file: re-key them, so this
        # render's tables include the votes just stored.
        ctx = replace(ctx, token=data.db_token(ctx.db_path))
    runs = ctx.latest_runs()
    cands = arena.candidates(ctx.load("samples_of", tuple(runs.run_id)), runs,
                             ctx.load("sample_hashes", tuple(runs.run_id)))
    if cands.empty:
        st.info("The Arena needs clips of the same prompt and seed from at least two models of this suite "
                "that are not byte-identical (identical files are never paired).")
    elif (version := ctx.load("schema_version")) < SCHEMA_VERSION:
        st.info(f"This file is at schema {version} (this vdmbench writes {SCHEMA_VERSION}). Its results are shown, "
                "but votes are not taken: a vote never migrates a file. Keep a copy, then upgrade it by running "
                "any writing vdmbench command on it (e.g. a run with db=...), to vote.")
    else:
        pair = st.session_state.get(_PAIR)
        if not pair or pair["suite"] != ctx.suite or pair["run_a"] not in set(runs.run_id) or pair["run_b"] not in set(runs.run_id):
            _next_pair(cands, ctx.suite)
            pair = st.session_state[_PAIR]
        last = st.session_state.get(_LAST)
        if last:
            (st.success if last.startswith(("Vote stored", "Skipped")) else st.warning)(last)
        st.markdown(f"**Prompt:** {pair['prompt']}  \n*(prompt {pair['prompt_id']}, seed {pair['seed']})*")
        paths = cands.set_index(["run_id", "sample_id"])
        for col, side in zip(st.columns(2), ("a", "b")):
            with col:
                st.markdown(f"### Clip {side.upper()}")
                row = paths.loc[(pair[f"run_{side}"], pair[f"sample_{side}"])]
                show_video(ctx.db_path, row.preview_path, row.path, f"arena-{side}")
        st.text_input("Your name (optional, stored with the vote)", key="arena_voter", persist_state="session")
        buttons = st.columns(4)
        for col, (label, winner) in zip(buttons, [("A is better", "a"), ("B is better", "b"),
                                                  ("Tie", "tie"), ("Skip", None)]):
            col.button(label, key=f"arena_vote_{winner or 'skip'}", on_click=_vote,
                       args=(ctx.db_path, winner, cands, ctx.suite), width="stretch")

    st.subheader("Human ratings (Bradley-Terry) next to the automatic metrics")
    votes = ctx.load("votes", ctx.suite)
    if votes.empty:
        st.info("No votes on this suite yet.")
        return
    ratings = ctx.load("ratings", ctx.suite)
    wide, ways, metrics, flagged, _ = leaderboard.load(ctx)
    table = ratings.merge(wide[["model", *metrics]], on="model", how="left")
    table.insert(2, "rating 95% CI", [f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(table.ci_low, table.ci_high)])
    table = table.drop(columns=["ci_low", "ci_high"]).rename(
        columns={m: ranking.column_label(m, ways, flagged) for m in metrics})
    st.dataframe(table.style.format({"rating": "{:.0f}"} | {ranking.column_label(m, ways, flagged): fmt for m in metrics}),
                 hide_index=True, key="arena_ratings", width="stretch")
    st.caption(f"{len(votes)} votes. Rating on the Elo scale (1000 = average model); 95% CI from the "
               "posterior of the Bradley-Terry fit (its ridge penalty as a Gaussian prior, Laplace "
               "approximation), so a model with few votes gets a wide interval; a tie counts half a win "
               "for each side.")
    few = [f"{m} ({n})" for m, n in zip(ratings.model, ratings.votes) if n < arena.MIN_VOTES]
    if few:
        st.warning(f"Fewer than {arena.MIN_VOTES} votes: {', '.join(few)}. These ratings are mostly the prior "
                   "(see their intervals); do not rank on them yet.")
    st.subheader("Do the metrics agree with the humans?")
    corr = arena.metric_correlations(ratings, wide, ways, metrics)
    agree = ctx.load("vote_agreement", ctx.suite)
    corr = corr.merge(agree, on="metric", how="left")
    corr.insert(1, "vote accuracy 95% CI", [_interval(lo, hi, 2) for lo, hi in
                                            zip(corr["accuracy ci_low"], corr["accuracy ci_high"])])
    corr = corr.drop(columns=["accuracy ci_low", "accuracy ci_high"])
    corr.insert(1, "vote accuracy", corr.pop("vote accuracy"))
    # Text cells, as on the Leaderboard: a missing value reads "–" (Streamlit draws a null as "None").
    corr = corr.assign(**{
        "vote accuracy": [cells.number_cell(v, 2) for v in corr["vote accuracy"]],
        **{c: [cells.number_cell(v, 4) for v in corr[c]] for c in ("spearman rho", "oriented rho", "p_value")},
        **{c: [cells.count_cell(v) for v in corr[c]] for c in ("models", "votes used", "metric ties")},
    })
    st.dataframe(corr,
                 hide_index=True, key="arena_correlations", width="stretch")
    st.caption("Per vote: **vote accuracy** is how often the metric prefers the clip the person preferred (the "
               "better value in the metric's direction), over the votes with a winner where both clips have a "
               "value and the values differ (human ties and metric ties left out; 0.5 = chance); 95% CI: "
               "bootstrap over those votes. Across models: Spearman rank correlation between each metric and "
               "the ratings; 'oriented' flips lower-is-better metrics so +1 means full agreement (3+ models).")
    judges = ctx.load("judge_agreement", ctx.suite)
    if judges.empty:
        st.caption("No VLM judge votes on this suite (`vdmbench judge compare` stores them; schema 5).")
        return
    st.markdown("**VLM judges against the human votes** (same clip pairs)")
    shown = pd.DataFrame({
        "judge": judges.judge, "criterion": judges.criterion, "matched votes": judges["matched votes"],
        "pairwise accuracy": [_value_ci(v, lo, hi) for v, lo, hi in
                              zip(judges.accuracy, judges["accuracy ci_low"], judges["accuracy ci_high"])],
        "Spearman (models)": [_value_ci(v, lo, hi) for v, lo, hi in
                              zip(judges.spearman, judges["spearman ci_low"], judges["spearman ci_high"])],
        "Kendall": [_value_ci(v, None, None) for v in judges.kendall], "models": judges.models, "note": judges.note,
    })
    st.dataframe(shown, hide_index=True, key="judge_calibration", width="stretch")
    st.caption("Pairwise accuracy: the share of human votes with a winner on which the judge named the same clip "
               "(a judge tie is a miss). Spearman: between the models' win rates from the people and from the "
               "judge (3+ models). 95% CIs: bootstrap over prompts (vdmbench.core.vote_agreement).")


def _interval(lo: float | None, hi: float | None, decimals: int) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "–"
    return f"[{lo:.{decimals}f}, {hi:.{decimals}f}]"


def _value_ci(v: float | None, lo: float | None, hi: float | None) -> str:
    if v is None or pd.isna(v):
        return "–"
    ci = _interval(lo, hi, 2)
    return f"{v:.2f}" + (f" {ci}" if ci != "–" else "")

"""Arena: blind A/B votes between two models' clips of one prompt and seed; BT ratings."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import streamlit as st

from vdmbench.core.errors import StoreError
from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard import arena, ranking
from vdmbench.dashboard.pages import leaderboard
from vdmbench.dashboard.pages.common import Context, show_video

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


def _retry_queue(db_path: str) -> None:
    if st.session_state.pop(_FLUSHED, False) or not arena.pending(db_path):
        return
    stored, waiting, error = arena.flush(db_path)
    if waiting:
        st.warning(f"{waiting} vote(s) queued, not yet stored ({error}); retried on the next action.", icon="⏳")
    elif stored:
        st.success(f"{stored} queued vote(s) stored.")


def render(ctx: Context) -> None:
    st.header(f"Arena · {ctx.suite} v{ctx.version}")
    st.caption("Two clips of the same prompt and seed from two different models, in random order. "
               "Pick the better one; the models are revealed after the vote.")
    _retry_queue(ctx.db_path)
    runs = ctx.latest_runs()
    cands = arena.candidates(ctx.load("samples_of", tuple(runs.run_id)), runs)
    if cands.empty:
        st.info("The Arena needs clips of the same prompt and seed from at least two models of this suite.")
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
        st.text_input("Your name (optional, stored with the vote)", key="arena_voter")
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
    st.caption(f"{len(votes)} votes. Rating on the Elo scale (1000 = average model); CI from 200 bootstrap "
               "resamples of the votes; a tie counts half a win for each side.")
    st.subheader("Do the metrics agree with the humans?")
    corr = arena.metric_correlations(ratings, wide, ways, metrics)
    st.dataframe(corr.style.format({"spearman rho": fmt, "oriented rho": fmt, "p_value": fmt}),
                 hide_index=True, key="arena_correlations", width="stretch")
    st.caption("Spearman rank correlation across models between each metric and the ratings; "
               "'oriented' flips lower-is-better metrics so +1 means full agreement. Needs 3+ rated models.")

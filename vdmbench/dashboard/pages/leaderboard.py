"""Leaderboard: models x metrics of the latest run per model, with CIs and an overall rank."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vdmbench.core.formatting import NOT_COMPARABLE
from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard import ranking
from vdmbench.dashboard.pages.common import Context

RANK_HELP = """
**Overall rank.** Each metric with a known direction is min-max normalized over the models shown,
so the best model scores 1 and the worst 0 (`(v - min) / (max - min)`, or `(max - v) / (max - min)`
when lower is better; all 1 when the models tie). The overall score is the weighted mean
`sum(w_m * s_m) / sum(w_m)` over the metrics a model has, with the weights set here. Rank 1 is
the highest overall score. The score depends on the models shown: filters recompute it.
"""


def load(ctx: Context) -> tuple[pd.DataFrame, dict[str, bool], list[str], list[str]]:
    """(wide table, directions, metrics, flagged) of the latest run per model in the selection."""
    runs = ctx.load("latest_runs", ctx.suite, ctx.version, ctx.since, ctx.until)
    long = ctx.load("run_metrics", tuple(runs.run_id))
    ways = ranking.directions(long)
    flagged = ranking.not_comparable(long)
    if ctx.tags:
        # Only per-sample metrics can be restricted to the tagged samples.
        long = ctx.load("tag_metrics", tuple(runs.run_id), ctx.tags)
    wide = ranking.wide_table(long, runs)
    wide = wide.merge(runs[["run_id", "samples", "failed"]], on="run_id", how="left")
    metrics = sorted(long.metric.unique()) if not long.empty else []
    return wide, {m: d for m, d in ways.items() if m in metrics}, metrics, flagged


def render(ctx: Context) -> None:
    st.header(f"Leaderboard · {ctx.suite} v{ctx.version}")
    wide, ways, metrics, flagged = load(ctx)
    if wide.empty:
        st.info("No finished runs match these filters.")
        return
    with st.expander("Overall rank: weights and formula"):
        st.markdown(RANK_HELP)
        ranked_metrics = [m for m in metrics if m in ways]
        cols = st.columns(min(4, max(1, len(ranked_metrics))))
        weights = {}
        for i, m in enumerate(ranked_metrics):
            weights[m] = cols[i % len(cols)].number_input(
                ranking.column_label(m, ways), min_value=0.0, max_value=100.0, value=1.0, step=0.5, key=f"weight-{m}")
    ranked = ranking.overall_rank(wide, ways, weights)

    sort_by = st.selectbox("Sort by", ["overall rank", *metrics], key="sort_by")
    if sort_by == "overall rank":
        ranked = ranked.sort_values(["rank", "model"], na_position="last")
    else:
        ranked = ranked.sort_values(sort_by, ascending=not ways.get(str(sort_by), True), na_position="last")
    ranked = ranked.reset_index(drop=True)
    table, labels = display_table(ranked, metrics, ways, flagged)

    styler = table.style.format({labels[m]: fmt for m in metrics} | {"overall": "{:.3f}"})
    for m, rows in ranking.best_rows(ranked, ways).items():
        styler = styler.apply(_highlight(rows), subset=[labels[m]], axis=0)
    # The keyed container gives the table a stable CSS class (st-key-leaderboard-table) for browsers.
    with st.container(key="leaderboard-table"):
        st.dataframe(styler, hide_index=True, key="leaderboard", width="stretch")

    st.caption("↑ higher is better, ↓ lower is better; the best value of each metric is highlighted; "
               "CI: 95% bootstrap over prompts. Click a column header to sort by it.")
    if flagged:
        st.warning(f"* {', '.join(flagged)}: {NOT_COMPARABLE} (random-weight feature extractor).")
    if ctx.tags:
        st.caption(f"Filtered to samples tagged {', '.join(ctx.tags)}: values and CIs recomputed from "
                   "per-sample values; set-level metrics (FVD, KVD) cannot be split by tag and are left out.")


def display_table(ranked: pd.DataFrame, metrics: list[str], ways: dict[str, bool],
                  flagged: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table as shown: rank, model, overall, per metric value ('name ↑') and CI, run info."""
    labels = {m: ranking.column_label(m, ways, flagged) for m in metrics}
    table = pd.DataFrame({"rank": ranked["rank"], "model": ranked.model, "overall": ranked.overall})
    for m in metrics:
        table[labels[m]] = ranked[m] if m in ranked else float("nan")
        table[f"{m} 95% CI"] = ranked.get(f"{m} CI", "")
    table["samples"] = ranked.samples
    table["failed"] = ranked.failed
    table["run"] = ranked.run_id
    table["finished"] = ranked.finished_at
    return table, labels


def _highlight(rows: list[int]):
    def style(col: pd.Series) -> list[str]:
        return ["background-color: #c8f7c5; font-weight: bold" if i in rows else "" for i in range(len(col))]

    return style

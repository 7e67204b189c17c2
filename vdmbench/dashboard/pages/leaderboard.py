"""Leaderboard: models x metrics of the latest run per model among runs with the same settings,
one cell per metric (value ± CI), coverage, and an overall score with rank bands."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from vdmbench.core.formatting import NOT_COMPARABLE
from vdmbench.dashboard import cells, groups, metric_facts, model_card, ranking, url_state
from vdmbench.dashboard.pages.common import Context, seed, url_extra, view_link

OVERALL = "overall score"

RANK_HELP = """
**Overall score.** Each counted metric is min-max normalized over the models shown, so the best
model scores 1 and the worst 0 (`(v - min) / (max - min)`, or `(max - v) / (max - min)` when lower
is better; all 1 when the models tie). The overall score is the weighted mean
`sum(w_m * s_m) / sum(w_m)` over the metrics a model has, times its **coverage** (ok samples /
planned samples): a failed or missing sample counts as the worst model shown on every metric, so
a failure can never help a model.

**Counted by default:** one column per measurement. Parts and duplicates of another column
(e.g. `flicker_mean_abs_diff` is `flicker` on another scale), derived summaries, and metrics
marked `*` (not comparable with published numbers) start at weight 0; set a weight to count them.

**Rank band.** Each metric's 95% CI is put through the same normalization, giving an interval for
the overall score. A model's band runs from 1 + the number of models surely better (their
interval entirely above its own) to the number not surely worse: models whose intervals overlap
share a band (`1–2`) instead of a strict order.
"""


def load(ctx: Context) -> tuple[pd.DataFrame, dict[str, bool], list[str], list[str], dict[str, bool]]:
    """(wide table, directions, metrics, flagged, derived) of the latest run per model with the
    selected settings."""
    runs = ctx.latest_runs()
    long = ctx.load("run_metrics", tuple(runs.run_id))
    ways = ranking.directions(long)
    flagged = ranking.not_comparable(long)
    derived = dict(zip(long.metric, long.derived)) if "derived" in long else {}
    if ctx.tags:
        # Only per-sample metrics can be restricted to the tagged samples.
        long = ctx.load("tag_metrics", tuple(runs.run_id), ctx.tags)
        # Coverage (and so the failure policy) over the tagged prompts only, like the values.
        runs = groups.tag_coverage(runs, ctx.load("run_settings", ctx.suite, ctx.version),
                                   ctx.load("sample_tags", tuple(runs.run_id)), ctx.tags)
    wide = ranking.wide_table(long, runs)
    extra = [c for c in ("samples", "failed", "planned", "ok", "coverage", "prompts") if c in runs]
    wide = wide.merge(runs[["run_id", *extra]], on="run_id", how="left")
    metrics = ordered_metrics(sorted(long.metric.unique()) if not long.empty else [])
    return wide, {m: d for m, d in ways.items() if m in metrics}, metrics, flagged, derived


def ordered_metrics(metrics: list[str]) -> list[str]:
    """Each parent followed by what is folded under it."""
    present = set(metrics)
    out: list[str] = []
    for m in metrics:
        parent = metric_facts.parent_of(m)
        if parent in present:
            continue
        out.append(m)
        out += [c for c in metrics if metric_facts.parent_of(c) == m]
    return out


def default_weight(metric: str, derived: dict[str, bool], flagged: list[str]) -> float:
    return 0.0 if metric_facts.excluded_by_default(metric, derived, set(flagged)) else 1.0


def render(ctx: Context) -> None:
    st.header(f"Leaderboard · {ctx.suite} v{ctx.version}")
    if ctx.settings_label and not ctx.standard:
        st.info(f"Non-standard settings: {ctx.settings_label}. These runs are ranked only among themselves.")
    wide, ways, metrics, flagged, derived = load(ctx)
    if wide.empty:
        st.info("No finished runs match these filters.")
        return
    ranked_metrics = [m for m in metrics if m in ways]
    with st.expander("Overall score: weights, failure policy and rank bands"):
        st.markdown(RANK_HELP)
        cols = st.columns(min(4, max(1, len(ranked_metrics))))
        weights = {}
        linked = url_state.decode_weights(_start_param("weights"))
        for i, m in enumerate(ranked_metrics):
            why = metric_facts.excluded_by_default(m, derived, set(flagged))
            seed(f"weight-{m}", "weights", partial(_linked_weight, linked, m))
            # A value from the link is already in the session state: no second default for it.
            if f"weight-{m}" not in st.session_state:
                st.session_state[f"weight-{m}"] = default_weight(m, derived, flagged)
            weights[m] = cols[i % len(cols)].number_input(
                ranking.column_label(m, ways, flagged), min_value=0.0, max_value=100.0,
                step=0.5, key=f"weight-{m}", persist_state="session", help=f"weight 0 by default: {why}" if why else None)
    ranked = ranking.overall_rank(wide, ways, weights)
    defaults = {m: default_weight(m, derived, flagged) for m in ranked_metrics}

    show_parts = st.toggle("Show parts and duplicates of each metric", value=False, key="show_parts", persist_state="session")
    shown = [m for m in metrics if show_parts or metric_facts.parent_of(m) not in metrics]
    options = [OVERALL, *shown]
    seed("sort_by", "sort", lambda t: OVERALL if t == "overall" else t if t in options else None)
    if st.session_state.get("sort_by") not in (None, *options):
        st.session_state["sort_by"] = OVERALL  # a part hidden again, or another suite's metric
    sort_by = st.selectbox("Sort by (each in its own direction: best first; or click a column's header)", options,
                           key="sort_by", persist_state="session",
                           format_func=lambda m: m if m == OVERALL else ranking.column_label(m, ways, flagged))
    url_extra(weights=url_state.encode_weights(weights, defaults) or None,
              sort=None if sort_by == OVERALL else str(sort_by))
    ranked = sort_rows(ranked, str(sort_by), ways)
    table, labels = display_table(ranked, shown, ways, flagged)
    table = add_row_links(ctx, table, ranked)

    styler = table.style
    for m, rows in ranking.best_rows(ranked, {k: v for k, v in ways.items() if k in shown}).items():
        styler = styler.apply(_highlight(rows), subset=[labels[m]], axis=0)
    # One sort control: a header click selects the column (column selection turns the grid's own
    # header sorting off) and the callback makes it the "Sort by" choice, in the metric's direction.
    # The table's key follows the sort, so the selected (highlighted) column is always the sort.
    sort_column = "overall" if sort_by == OVERALL else labels.get(str(sort_by), "overall")
    key = table_key(str(sort_by), int(st.session_state.get(_CLICKS, 0)))
    column_to_sort = {"overall": OVERALL} | {label: m for m, label in labels.items()}
    # The keyed container gives the table a stable CSS class (st-key-leaderboard-table) for browsers.
    with st.container(key="leaderboard-table"):
        st.dataframe(styler, hide_index=True, key=key, width="stretch",
                     column_config=column_config(ranked, shown, labels),
                     on_select=lambda: sort_from_header(key, column_to_sort), selection_mode="single-column",
                     selection_default={"selection": {"columns": [sort_column]}})

    st.caption("Cells: mean ± half the 95% bootstrap CI over prompts (clipped to the metric's range); "
               "↑ higher is better, ↓ lower is better; the best value of each metric is highlighted. "
               "Coverage: ok / planned samples. Rank: models whose overall-score intervals overlap share a band.")
    if flagged:
        st.warning(f"* {', '.join(flagged)}: {NOT_COMPARABLE} (random-weight feature extractor); "
                   "left out of the overall score unless given a weight.")
    if ctx.tags:
        st.caption(f"Filtered to samples tagged {', '.join(ctx.tags)}: values and CIs recomputed from "
                   "per-sample values; set-level metrics (FVD, KVD) cannot be split by tag and are left out. "
                   "Coverage (and so the overall score) counts the samples of the tagged prompts only.")
    model_cards(ctx, ranked)


def _linked_weight(linked: dict[str, float], metric: str, _text: str) -> float | None:
    return linked.get(metric)


def add_row_links(ctx: Context, table: pd.DataFrame, ranked: pd.DataFrame) -> pd.DataFrame:
    """Per row, links (URL state) to Compare (the row's run against the leader's) and Drill-down."""
    ids = [str(r) for r in ranked.run_id]
    leader = ids[0] if ids else ""
    table = table.copy()
    # The leader's own row compares it with the runner-up (baseline first: the leader).
    others = [r if r != leader else (ids[1] if len(ids) > 1 else None) for r in ids]
    table["compare"] = [view_link(ctx, "Compare", runs=url_state.encode_list([leader] + ([o] if o else [])))
                        for o in others]
    table["drill-down"] = [view_link(ctx, "Drill-down", run=r) for r in ranked.run_id.astype(str)]
    return table


def _start_param(name: str) -> str | None:
    from vdmbench.dashboard.pages.common import url_start

    return url_start().get(name)


_CLICKS = "_header_clicks"  # session key: header clicks so far (each gives the table a fresh key)


def table_key(sort_by: str, clicks: int = 0) -> str:
    """The table's widget key: a new one after every header click, so the table is drawn again with
    its selection on the sort column (a click on a non-metric column would otherwise stay selected)."""
    return f"leaderboard-{sort_by}-{clicks}"


def sort_from_header(key: str, column_to_sort: dict[str, str]) -> None:
    """on_select of the table: the clicked header becomes the sort (a non-metric column, or a
    click that clears the selection, leaves the sort as it was)."""
    state: Any = st.session_state.get(key)
    columns = list(state["selection"]["columns"]) if state else []
    if columns and columns[0] in column_to_sort:
        st.session_state["sort_by"] = column_to_sort[columns[0]]
    st.session_state[_CLICKS] = int(st.session_state.get(_CLICKS, 0)) + 1


def model_cards(ctx: Context, ranked: pd.DataFrame) -> None:
    """One card per row: adapter, redacted config, generation settings, environment, and links
    that open the model's run in Compare (against the leader) and in the Drill-down."""
    st.subheader("Model cards")
    models = list(ranked.model)
    seed("card", "card", lambda m: m if m in models else None)
    model = st.selectbox("Model", models, key="card", persist_state="session")
    url_extra(card=str(model) if model else None)
    row = ranked[ranked.model == model].iloc[0]
    card = ctx.load("model_card", str(row.run_id))
    leader = str(ranked.run_id.iloc[0])
    versus = [leader, card.run_id] if leader != card.run_id else [card.run_id]
    st.markdown(f"**{card.model}** · adapter `{card.adapter}` · run `{card.run_id}`"
                + (f" · git `{card.git_sha[:10]}`" if card.git_sha else ""))
    st.markdown(f"Generation: {model_card.size_text(card.generation)}")
    st.markdown(f"[Compare with the leader]({view_link(ctx, 'Compare', runs=url_state.encode_list(versus))}) · "
                f"[Drill-down]({view_link(ctx, 'Drill-down', run=card.run_id)})")
    left, right = st.columns(2)
    with left:
        st.caption("Model config (secret-named values redacted)")
        st.code(json.dumps(card.config, indent=2, sort_keys=True, default=str), language="json")
    with right:
        st.caption("Environment of the run")
        st.table(pd.DataFrame({"": list(card.environment), "value": [str(v) for v in card.environment.values()]})
                 .set_index(""))
        if card.packages:
            st.caption("packages: " + ", ".join(f"{k} {v}" for k, v in sorted(card.packages.items())))


def sort_rows(ranked: pd.DataFrame, sort_by: str, ways: dict[str, bool]) -> pd.DataFrame:
    if sort_by == OVERALL or sort_by not in ranked:
        out = ranked.sort_values(["overall", "model"], ascending=[False, True], na_position="last")
    else:
        out = ranked.sort_values([sort_by, "model"], ascending=[not ways.get(sort_by, True), True],
                                 na_position="last")
    return out.reset_index(drop=True)


def display_table(ranked: pd.DataFrame, metrics: list[str], ways: dict[str, bool],
                  flagged: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table as shown: rank band, model, overall, coverage, one text cell per metric."""
    labels = {m: _label(m, ways, flagged) for m in metrics}
    table = pd.DataFrame({"rank": ranked["rank_band"], "model": ranked.model,
                          "overall": ranked.overall.round(3)})
    table["coverage"] = [f"{int(o)}/{int(p)}" if pd.notna(o) and pd.notna(p) and p else "–"
                         for o, p in zip(ranked.get("ok", ranked.model), ranked.get("planned", ranked.model))]
    for m in metrics:
        v = ranked[m] if m in ranked else pd.Series(float("nan"), index=ranked.index)
        lo = ranked.get(f"{m} lo", pd.Series(float("nan"), index=ranked.index))
        hi = ranked.get(f"{m} hi", pd.Series(float("nan"), index=ranked.index))
        clipped = [cells.clip_ci(m, a, b) for a, b in zip(lo, hi)]
        decimals = cells.decimals_for(v, [(b - a) / 2 for a, b in clipped])
        table[labels[m]] = [cells.value_cell(x, a, b, decimals) for x, (a, b) in zip(v, clipped)]
    table["prompts"] = ranked.get("prompts", pd.Series(pd.NA, index=ranked.index))
    table["run"] = ranked.run_id
    table["finished"] = ranked.finished_at
    return table, labels


def _label(metric: str, ways: dict[str, bool], flagged: list[str]) -> str:
    label = ranking.column_label(metric, ways, flagged)
    return f"↳ {label}" if metric_facts.parent_of(metric) else label


def column_config(ranked: pd.DataFrame, metrics: list[str], labels: dict[str, str]) -> dict:
    """Pinned rank/model columns; each metric column says what its cell holds and the n behind it."""
    conf: dict = {
        "rank": st.column_config.TextColumn("rank", pinned=True, help="rank band (overlapping intervals share one)"),
        "model": st.column_config.TextColumn("model", pinned=True),
        "overall": st.column_config.NumberColumn("overall", format="%.3f",
                                                 help="weighted mean of normalized scores x coverage"),
        "coverage": st.column_config.TextColumn("coverage", help="ok samples / planned samples"),
        "prompts": st.column_config.NumberColumn("prompts", help="prompts with an ok sample: the CI's bootstrap units"),
        "compare": st.column_config.LinkColumn("compare", display_text="vs leader",
                                               help="open Compare: this run against the leader's"),
        "drill-down": st.column_config.LinkColumn("drill-down", display_text="samples",
                                                  help="open the Drill-down on this run"),
    }
    for m in metrics:
        n = ranked.get(f"{m} n", pd.Series(dtype=float)).dropna()
        n_text = "" if n.empty else (f"n = {int(n.min())} samples" if n.min() == n.max()
                                     else f"n = {int(n.min())}-{int(n.max())} samples")
        r = metric_facts.value_range(m)
        parent = metric_facts.parent_of(m)
        parts = [f"mean ± half the 95% CI; {n_text}" if n_text else "mean ± half the 95% CI"]
        if r is not None:
            parts.append(f"range [{r[0]:g}, {r[1]:g}]")
        if parent:
            parts.append(f"folded under {parent}")
        conf[labels[m]] = st.column_config.TextColumn(labels[m], help="; ".join(parts))
    return conf


def _highlight(rows: list[int]):
    def style(col: pd.Series) -> list[str]:
        return ["background-color: #c8f7c5; font-weight: bold" if i in rows else "" for i in range(len(col))]

    return style

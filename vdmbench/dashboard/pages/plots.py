"""Plots: means with CIs, per-sample distributions, the per-dimension view (table and radar of
models x tags), and each metric over time per model."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from vdmbench.dashboard import cells, charts, ranking
from vdmbench.dashboard.pages.common import Context, seed, url_extra


def render(ctx: Context) -> None:
    st.header(f"Plots · {ctx.suite} v{ctx.version}")
    runs = ctx.latest_runs()
    if runs.empty:
        st.info("No finished runs match these filters.")
        return
    long = ctx.load("run_metrics", tuple(runs.run_id))
    ways = ranking.directions(long)
    metrics = sorted(long.metric.unique())
    if not metrics:
        st.info("These runs have no metrics.")
        return
    seed("plot_metric", "metric", lambda m: m if m in metrics else None)
    if st.session_state.get("plot_metric") not in (None, *metrics):
        del st.session_state["plot_metric"]  # another suite's metric
    metric = st.selectbox("Metric", metrics, key="plot_metric", persist_state="session", format_func=lambda m: ranking.column_label(m, ways))
    url_extra(metric=str(metric))
    model_of = dict(zip(runs.run_id, runs.model))
    values = ctx.load("sample_values", tuple(runs.run_id), ctx.tags)
    values = values[values.metric == metric].assign(model=lambda d: d.run_id.map(model_of))

    st.subheader("Mean and 95% CI per model")
    wide = ranking.wide_table(long, runs)
    means = charts.means_with_cis(wide, metric)
    log = charts.needs_log_scale(means.value)
    show_chart("means", means, metric, log)
    if log:
        st.caption(f"Log scale: the values span more than {charts.LOG_SPAN:g}x.")

    st.subheader("Distribution over samples (latest run per model)")
    if values.empty:
        st.caption(f"{metric} is a set-level metric: there is one value per run, no distribution.")
    else:
        show_chart("distribution", values[["model", "value"]], metric)

    st.subheader("Per tag / dimension")
    per_tag = ctx.load("dimension_scores", tuple(runs.run_id), metric).assign(
        model=lambda d: d.run_id.map(model_of))
    if per_tag.empty:
        st.caption(f"No per-sample values of {metric} on tagged samples: set-level metrics (FVD, KVD) have one "
                   "value per run, and prompts without `tags` have no dimension." if values.empty else
                   "No tagged samples (prompts have no `tags` in the suite).")
    else:
        dimension_view(per_tag, metric, ways.get(metric))

    st.subheader("Metric vs metric (one point per model)")
    scatter_view(ctx, wide, metrics, ways)

    ladder_view(ctx, runs, model_of)

    st.subheader("Over time (every finished run with these settings: the regression history)")
    hist = ctx.load("history", ctx.suite, ctx.version, ctx.since, ctx.until)
    if ctx.settings is not None:  # a cut-down run is not a point of the full suite's history
        settings = ctx.load("run_settings", ctx.suite, ctx.version)
        hist = hist[hist.run_id.isin(set(settings.run_id[settings.suite_hash == ctx.settings]))]
    hist = hist[hist.metric == metric]
    show_chart("history", hist, metric)


# Model names slanted and never cut short (Vega-Lite truncates axis labels at 180 px by default).
MODEL_AXIS = alt.Axis(labelAngle=-30, labelLimit=400)


def show_chart(kind: str, data: pd.DataFrame, *params: object) -> None:
    """Draw one chart from its cached Vega-Lite spec: building an Altair chart and validating it
    costs ~50 ms a chart on every rerun, which only a change of the data or the parameters needs."""
    st.vega_lite_chart(chart_spec(kind, data, *params), width="stretch")


@st.cache_data(max_entries=256, show_spinner=False)
def chart_spec(kind: str, data: pd.DataFrame, *params: object) -> dict:
    builders = {"means": means_chart, "distribution": distribution_chart, "history": history_chart,
                "tags": tag_chart, "radar": radar_chart, "scatter": scatter_chart, "ladder": ladder_chart}
    with alt.data_transformers.disable_max_rows():  # the data is already one page's worth
        return builders[kind](data, *params).to_dict()  # type: ignore[operator]


def dimension_view(per_tag: pd.DataFrame, metric: str, higher_is_better: bool | None) -> None:
    """Models x dimensions with CIs (table, grouped bars, radar), and one button per dimension
    that filters the whole board to it (the sidebar's tag filter)."""
    show_chart("tags", per_tag, metric)
    values = charts.dimension_table(per_tag)
    half = per_tag.assign(half=(per_tag.ci_high - per_tag.ci_low) / 2)
    decimals = cells.decimals_for(values.to_numpy().ravel(), list(half.half.dropna()))
    by = per_tag.set_index(["model", "tag"])
    shown = pd.DataFrame({tag: [cells.value_cell(by.value.get((m, tag)), by.ci_low.get((m, tag)),
                                                 by.ci_high.get((m, tag)), decimals)
                                if (m, tag) in by.index else "–" for m in values.index]
                          for tag in values.columns}, index=values.index)
    shown.index.name = "model"
    st.dataframe(shown, key="dimension_table", width="stretch")
    st.caption("Each cell: the mean over the model's samples with that tag ± half its 95% CI (bootstrap over "
               "prompts). Click a dimension below to filter the whole board to it.")
    buttons = st.columns(min(6, len(values.columns)))
    for i, tag in enumerate(values.columns):
        buttons[i % len(buttons)].button(str(tag), key=f"dimension-{tag}", on_click=filter_to_dimension,
                                         args=(str(tag),), help=f"Leaderboard of the samples tagged {tag}")
    radar = charts.radar_points(values, higher_is_better)
    if radar.empty:
        st.caption("The radar needs three or more tags.")
    else:
        show_chart("radar", radar, metric)
        st.caption("Radar: per tag, 1 (the rim) = the best model shown, 0 (the center) = the worst.")


def filter_to_dimension(tag: str) -> None:
    """Button callback: the sidebar's tag filter becomes this one dimension, on the leaderboard."""
    st.session_state["tags"] = [tag]
    st.session_state["page"] = "Leaderboard"


HUMAN = "human rating (arena)"


def scatter_view(ctx: Context, wide: pd.DataFrame, metrics: list[str], ways: dict[str, bool]) -> None:
    """Any two metrics against each other across models, with both CIs; the arena's human rating
    is one more axis when the suite has votes."""
    ratings = ctx.load("ratings", ctx.suite) if not ctx.load("votes", ctx.suite).empty else pd.DataFrame()
    table = wide
    axes = list(metrics)
    if not ratings.empty:
        table = wide.merge(ratings[["model", "rating", "ci_low", "ci_high"]].rename(
            columns={"rating": HUMAN, "ci_low": f"{HUMAN} lo", "ci_high": f"{HUMAN} hi"}), on="model", how="left")
        axes = [HUMAN, *metrics]
    if len(axes) < 2:
        st.caption("A scatter needs two metrics (or one metric and arena votes).")
        return
    left, right = st.columns(2)
    x = left.selectbox("x", axes, index=0, key="scatter_x", persist_state="session")
    y = right.selectbox("y", axes, index=1, key="scatter_y", persist_state="session")
    points = charts.scatter_points(table, str(x), str(y))
    if points.empty:
        st.caption("No model has both values.")
        return
    show_chart("scatter", points, str(x), str(y))
    rho = charts.spearman(points.x, points.y)
    st.caption(f"{len(points)} models; Spearman rho = {rho:.2f}" if rho == rho else f"{len(points)} models "
               "(Spearman rho needs three or more distinct values)")


def scatter_chart(points: pd.DataFrame, x: str, y: str) -> alt.LayerChart:
    base = alt.Chart(points).encode(
        x=alt.X("x:Q", title=x, scale=alt.Scale(zero=False)), y=alt.Y("y:Q", title=y, scale=alt.Scale(zero=False)))
    dots = base.mark_point(filled=True, size=80).encode(
        color="model:N", tooltip=["model", alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g")])
    xerr = base.mark_rule().encode(x="x_lo:Q", x2="x_hi:Q", color="model:N")
    yerr = base.mark_rule().encode(y="y_lo:Q", y2="y_hi:Q", color="model:N")
    names = base.mark_text(dy=-10).encode(text="model:N")
    return (xerr + yerr + dots + names).properties(height=360)


def ladder_view(ctx: Context, runs: pd.DataFrame, model_of: dict[str, str]) -> None:
    """Sample-efficiency ladder (issue #18) of set-level metrics: value vs n, one line per model."""
    points = charts.ladder_points(ctx.load("run_metric_details", tuple(runs.run_id)), model_of)
    if points.empty:
        return  # runs from before the ladder: nothing to draw, nothing to explain
    st.subheader("Sample-efficiency ladder (set-level metrics)")
    names = sorted(points.metric.unique())
    which = st.selectbox("Set-level metric", names, key="ladder_metric", persist_state="session")
    part = points[points.metric == which]
    show_chart("ladder", part, str(which))
    unsettled = sorted(set(part.model[part.settled == False]))  # noqa: E712 - None means unknown
    rule = next((r for r in part.rule if r), "")
    st.caption(f"The metric on nested subsets of n samples (log2 axis), with its 95% CI band where the rung "
               f"has one. {rule}".strip())
    if unsettled:
        st.warning(f"Not settled (the value still moves with more samples): {', '.join(unsettled)}. "
                   "Marked ✕ on the chart.")


def ladder_chart(points: pd.DataFrame, metric: str) -> alt.LayerChart:
    data = points.assign(state=points.settled.map({True: "settled", False: "not settled"}).fillna("unknown"))
    x = alt.X("n:Q", title="samples (n)", scale=alt.Scale(type="log", base=2))
    base = alt.Chart(data).encode(x=x, color="model:N")
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title=metric, scale=alt.Scale(zero=False)),
                                              y2="ci_high:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        tooltip=["model", "n", alt.Tooltip("value:Q", format=".4g"), "state"])
    last = data.sort_values("n").groupby("run_id").tail(1)
    marks = alt.Chart(last[last.state == "not settled"]).mark_point(shape="cross", size=160, filled=True).encode(
        x=x, y="value:Q", color="model:N", tooltip=["model", "state"])
    return (line + band + marks).properties(height=320)  # the line first: the legend shows its colours


def means_chart(means: pd.DataFrame, metric: str, log: bool) -> alt.LayerChart:
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = alt.Chart(means).encode(x=alt.X("model:N", title="model", sort="-y", axis=MODEL_AXIS))
    bars = base.mark_bar().encode(y=alt.Y("value:Q", title=metric, scale=scale),
                                  tooltip=["model", alt.Tooltip("value:Q", format=".4g"),
                                           alt.Tooltip("ci_low:Q", format=".4g"), alt.Tooltip("ci_high:Q", format=".4g")])
    err = base.mark_errorbar().encode(y=alt.Y("ci_low:Q", title=metric, scale=scale), y2="ci_high:Q")
    return (bars + err).properties(height=300)


def radar_chart(points: pd.DataFrame, metric: str) -> alt.LayerChart:
    axis = alt.Axis(labels=False, ticks=False, grid=False, domain=False, title=None)
    square = alt.Scale(domain=[-1.25, 1.25])
    lines = alt.Chart(points).mark_line(point=True).encode(
        x=alt.X("x:Q", scale=square, axis=axis), y=alt.Y("y:Q", scale=square, axis=axis),
        order="order:O", color="model:N",
        tooltip=["model", "tag", alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("score:Q", format=".2f")])
    tags = points[points.order < points.order.max()].drop_duplicates("tag").assign(
        lx=lambda d: 1.12 * d.ux, ly=lambda d: 1.12 * d.uy)
    labels = alt.Chart(tags).mark_text().encode(
        x=alt.X("lx:Q", scale=square, axis=axis), y=alt.Y("ly:Q", scale=square, axis=axis), text="tag:N")
    return (lines + labels).properties(height=360, width=360, title=f"{metric} per tag")


def distribution_chart(values: pd.DataFrame, metric: str) -> alt.Chart:
    return alt.Chart(values[["model", "value"]]).mark_boxplot(extent="min-max").encode(
        x=alt.X("model:N", title="model", axis=MODEL_AXIS),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)), color=alt.Color("model:N", legend=None),
    ).properties(height=300)


def tag_chart(per_tag: pd.DataFrame, metric: str) -> alt.LayerChart:
    base = alt.Chart(per_tag).encode(x=alt.X("tag:N", title="tag / dimension"), xOffset="model:N")
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=f"mean {metric}"), color="model:N",
        tooltip=["model", "tag", alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("ci_low:Q", format=".4g"),
                 alt.Tooltip("ci_high:Q", format=".4g"), "samples", "prompts"])
    err = base.mark_errorbar().encode(y=alt.Y("ci_low:Q", title=f"mean {metric}"), y2="ci_high:Q")
    return (bars + err).properties(height=300)


def history_chart(hist: pd.DataFrame, metric: str) -> alt.LayerChart:
    data = hist[["model", "finished_at", "value", "ci_low", "ci_high", "run_id", "git_sha"]].copy()
    data["git_sha"] = data.git_sha.fillna("").str[:10]
    base = alt.Chart(data).encode(x=alt.X("finished_at:T", title="finished"), color="model:N")
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        tooltip=["model", "run_id", "git_sha", alt.Tooltip("value:Q", format=".4g")],
    )
    bars = base.mark_errorbar().encode(y=alt.Y("ci_low:Q", title=metric), y2="ci_high:Q")
    return (bars + line).properties(height=300)

"""Plots: means with CIs, per-sample distributions, the per-dimension view (table and radar of
models x tags), and each metric over time per model."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from vdmbench.dashboard import cells, charts, ranking
from vdmbench.dashboard.pages.common import Context


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
    metric = st.selectbox("Metric", metrics, key="plot_metric", format_func=lambda m: ranking.column_label(m, ways))
    model_of = dict(zip(runs.run_id, runs.model))
    values = ctx.load("sample_values", tuple(runs.run_id), ctx.tags)
    values = values[values.metric == metric].assign(model=lambda d: d.run_id.map(model_of))

    st.subheader("Mean and 95% CI per model")
    wide = ranking.wide_table(long, runs)
    means = charts.means_with_cis(wide, metric)
    log = charts.needs_log_scale(means.value)
    st.altair_chart(means_chart(means, metric, log), width="stretch")
    if log:
        st.caption(f"Log scale: the values span more than {charts.LOG_SPAN:g}x.")

    st.subheader("Distribution over samples (latest run per model)")
    if values.empty:
        st.caption(f"{metric} is a set-level metric: there is one value per run, no distribution.")
    else:
        st.altair_chart(distribution_chart(values, metric), width="stretch")

    st.subheader("Per tag / dimension")
    tags = ctx.load("sample_tags", tuple(runs.run_id))
    per_tag = tag_means(values, tags)
    if per_tag.empty:
        st.caption("No tagged samples (prompts have no `tags` in the suite).")
    else:
        st.altair_chart(tag_chart(per_tag, metric), width="stretch")
        table = charts.dimension_table(per_tag)
        decimals = cells.decimals_for(table.to_numpy().ravel())
        st.dataframe(table.style.format(lambda v: cells.value_cell(v, None, None, decimals)),
                     key="dimension_table", width="stretch")
        radar = charts.radar_points(table, ways.get(metric))
        if radar.empty:
            st.caption("The radar needs three or more tags.")
        else:
            st.altair_chart(radar_chart(radar, metric), width="stretch")
            st.caption("Radar: per tag, 1 (the rim) = the best model shown, 0 (the center) = the worst.")

    st.subheader("Over time (every finished run with these settings: the regression history)")
    hist = ctx.load("history", ctx.suite, ctx.version, ctx.since, ctx.until)
    if ctx.settings is not None:  # a cut-down run is not a point of the full suite's history
        settings = ctx.load("run_settings", ctx.suite, ctx.version)
        hist = hist[hist.run_id.isin(set(settings.run_id[settings.suite_hash == ctx.settings]))]
    hist = hist[hist.metric == metric]
    st.altair_chart(history_chart(hist, metric), width="stretch")


def means_chart(means: pd.DataFrame, metric: str, log: bool) -> alt.LayerChart:
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = alt.Chart(means).encode(x=alt.X("model:N", title="model", sort="-y"))
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
        x=alt.X("model:N", title="model"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", legend=None),
    ).properties(height=300)


def tag_means(values: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """Mean metric value per (model, tag) over the samples carrying the tag."""
    if values.empty or tags.empty:
        return pd.DataFrame(columns=["model", "tag", "value", "samples"])
    joined = values.merge(tags, on=["run_id", "sample_id"])
    return joined.groupby(["model", "tag"], as_index=False).agg(value=("value", "mean"), samples=("value", "size"))


def tag_chart(per_tag: pd.DataFrame, metric: str) -> alt.Chart:
    return alt.Chart(per_tag).mark_bar().encode(
        x=alt.X("tag:N", title="tag"), xOffset="model:N", y=alt.Y("value:Q", title=f"mean {metric}"),
        color="model:N", tooltip=["model", "tag", alt.Tooltip("value:Q", format=".4g"), "samples"],
    ).properties(height=300)


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

"""Drill-down: one sample of one run: metric values, video, generation time, error."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard.pages.common import Context, run_label, show_video


def render(ctx: Context) -> None:
    st.header("Drill-down")
    runs = ctx.load("all_runs")
    runs = runs[runs.suite == ctx.suite]
    if runs.empty:
        st.info("No runs of this suite.")
        return
    labels = {r.run_id: run_label(r) + (f" · shard {r.shard}" if r.shard else "") for r in runs.itertuples()}
    run_id = st.selectbox("Run", list(labels), format_func=lambda r: labels[r], key="drill_run")
    samples = ctx.load("samples", run_id)
    if samples.empty:
        st.info("This run has no samples yet.")
        return
    by_id = samples.set_index("sample_id")
    n_failed = int((samples.status != "ok").sum())
    st.caption(f"{len(samples)} samples: {len(samples) - n_failed} ok, {n_failed} failed.")
    sample_id = st.selectbox(
        "Sample", list(samples.sample_id), key="drill_sample",
        format_func=lambda s: f"{s} · {by_id.status[s]} · {by_id.prompt[s][:60]}",
    )
    s = by_id.loc[sample_id]
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{s.prompt}**")
        facts = {"prompt id": s.prompt_id, "seed": int(s.seed), "task": s.task, "status": s.status,
                 "generation time": f"{fmt(s.gen_seconds, 3)} s" if pd.notna(s.gen_seconds) else "–",
                 "tags": ", ".join(_tags(s.tags)) or "–", "file": s.path if isinstance(s.path, str) and s.path else "–"}
        facts.update(_notes(s.notes))  # what the adapter said about this clip (e.g. unknown words)
        st.table(pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]}).set_index(""))
        if s.status != "ok":
            st.error(f"failed: {s.error or 'no error recorded'}")
        metrics = ctx.load("sample_metric_values", run_id, sample_id)
        if metrics.empty:
            st.caption("No metric values for this sample.")
        else:
            st.dataframe(metrics.style.format({"value": fmt}), hide_index=True, key="drill_metrics")
    with right:
        show_video(ctx.db_path, s.preview_path, s.path, "drilldown")


def _tags(tags: object) -> list[str]:
    """samples.tags as the store gives it (a tuple of str) -> a list; anything else: none."""
    return [str(t) for t in tags] if isinstance(tags, (list, tuple)) else []


def _notes(notes: object) -> dict[str, str]:
    """samples.notes as table rows: {"unknown_words": ["x", "y"]} -> {"unknown words": "x, y"}."""
    if not isinstance(notes, dict):
        return {}
    return {str(k).replace("_", " "): ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in notes.items()}

"""Drill-down: one sample of one run: metric values, video, generation time, error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard import cells, media
from vdmbench.dashboard.pages.common import Context, run_label, seed, show_video, url_extra


def render(ctx: Context) -> None:
    st.header("Drill-down")
    runs = ctx.load("all_runs")
    runs = runs[runs.suite == ctx.suite]
    if runs.empty:
        st.info("No runs of this suite.")
        return
    labels = {r.run_id: run_label(r) + (f" · shard {r.shard}" if r.shard else "") for r in runs.itertuples()}
    seed("drill_run", "run", lambda r: r if r in labels else None)
    run_id = st.selectbox("Run", list(labels), format_func=lambda r: labels[r], key="drill_run", persist_state="session")
    url_extra(run=str(run_id))
    samples = ctx.load("samples", run_id)
    if samples.empty:
        st.info("This run has no samples yet.")
        return
    by_id = samples.set_index("sample_id")
    n_failed = int((samples.status != "ok").sum())
    st.caption(f"{len(samples)} samples: {len(samples) - n_failed} ok, {n_failed} failed.")
    seed("drill_sample", "sample", lambda x: x if x in by_id.index else None)
    if st.session_state.get("drill_sample") not in (None, *by_id.index):
        del st.session_state["drill_sample"]  # a sample of the run shown before
    sample_id = st.selectbox(
        "Sample", list(samples.sample_id), key="drill_sample", persist_state="session",
        format_func=lambda s: f"{s} · {by_id.status[s]} · {by_id.prompt[s][:60]}",
    )
    url_extra(sample=str(sample_id))
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
            decimals = cells.metric_decimals(ctx.load("run_metrics", (run_id,)))
            st.dataframe(metric_cells(metrics, decimals), hide_index=True, key="drill_metrics")
    with right:
        show_video(ctx.db_path, s.preview_path, s.path, "drilldown")
        lossless = media.resolve(ctx.db_path, s.path)
        if lossless is not None and lossless.is_file():
            st.download_button("Download the lossless clip", lossless.read_bytes(), file_name=lossless.name,
                               mime="video/mp4" if lossless.suffix == ".mp4" else "application/octet-stream",
                               key="drill_download", help="the stored file the metrics read (bit-exact)")
    if lossless is not None and lossless.is_file():
        show_filmstrip(lossless)


def show_filmstrip(path: Path) -> None:
    """Evenly spaced frames of the lossless clip, scaled up by a whole factor with nearest-
    neighbour pixels (PNG, so what is shown is the stored pixels, only larger)."""
    try:
        strip, caption = filmstrip(str(path), path.stat().st_mtime_ns)
    except Exception as e:  # a clip the decoder cannot read: say so, keep the page
        st.caption(f"filmstrip unavailable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    with st.container(key="filmstrip"):
        st.image(strip, output_format="PNG", width=int(strip.shape[1]), caption=caption)


@st.cache_data(max_entries=64, show_spinner=False)
def filmstrip(path: str, mtime_ns: int) -> tuple[np.ndarray, str]:
    """The strip and its caption, decoded once per file version (`mtime_ns` is only the key)."""
    frames, picked, total = media.filmstrip_frames(Path(path))
    if not frames:
        raise ValueError("the clip has no frames")
    strip = media.filmstrip(frames, k=len(frames))
    factor = media.strip_factor(frames, k=len(frames))
    h, w = frames[0].shape[:2]
    return strip, (f"frames {', '.join(map(str, picked))} of {total} · {w}x{h} shown x{factor} "
                   "(nearest neighbour)")


def metric_cells(metrics: pd.DataFrame, decimals: dict[str, int]) -> pd.DataFrame:
    """(metric, value) with each value at its metric's fixed decimals, as on the Leaderboard
    ("0.0000" beside "1.0000", not "0"); a metric the run has no row for: three significant digits."""
    return metrics.assign(value=[
        cells.number_cell(v, decimals[m] if m in decimals else cells.decimals_for([v]))
        for m, v in zip(metrics.metric, metrics.value)])


def _tags(tags: object) -> list[str]:
    """samples.tags as the store gives it (a tuple of str) -> a list; anything else: none."""
    return [str(t) for t in tags] if isinstance(tags, (list, tuple)) else []


def _notes(notes: object) -> dict[str, str]:
    """samples.notes as table rows: {"unknown_words": ["x", "y"]} -> {"unknown words": "x, y"}."""
    if not isinstance(notes, dict):
        return {}
    return {str(k).replace("_", " "): ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in notes.items()}

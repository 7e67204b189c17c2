"""Compare: two or more runs of one suite, deltas with paired CIs, per-prompt table, videos."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from vdmbench.core.formatting import NOT_COMPARABLE
from vdmbench.core.formatting import format_number as fmt
from vdmbench.dashboard import cells, compare, groups, ranking, url_state
from vdmbench.dashboard.pages.common import Context, run_label, seed, show_video, url_extra


def render(ctx: Context) -> None:
    st.header(f"Compare runs · {ctx.suite} v{ctx.version}")
    runs = ctx.load("runs", ctx.suite, ctx.version, ctx.since, ctx.until)
    if len(runs) < 2:
        st.info("Comparing needs two or more finished runs of this suite version.")
        return
    labels = {r.run_id: run_label(r) for r in runs.itertuples()}
    seed("compare_runs", "runs", lambda t: [r for r in url_state.decode_list(t) if r in labels] or None)
    # Another suite's runs (the suite changed): keep the ones still offered, not an error.
    if "compare_runs" in st.session_state:
        kept = [r for r in st.session_state["compare_runs"] if r in labels]
        if kept != st.session_state["compare_runs"]:
            st.session_state["compare_runs"] = kept or default_runs(ctx, runs)
    if "compare_runs" not in st.session_state:
        st.session_state["compare_runs"] = default_runs(ctx, runs)
    picked = st.multiselect("Runs (the first is the baseline)", list(labels), format_func=lambda r: labels[r],
                            key="compare_runs", persist_state="session")
    url_extra(runs=url_state.encode_list(picked) or None)
    if len(picked) < 2:
        st.info("Pick two or more runs.")
        return
    short = {r: f"{runs.set_index('run_id').model[r]} ({r[-6:]})" for r in picked}
    values = ctx.load("sample_values", tuple(picked), ())
    long = ctx.load("run_metrics", tuple(picked))
    ways = ranking.directions(long)
    flagged = ranking.not_comparable(long)
    _sample_counts(runs, picked, short)
    _settings_note(ctx.load("run_settings", ctx.suite, ctx.version), picked, short)

    st.subheader("Metrics")
    # Cached per file version and selection: 4000 prompt-resampling replicates per metric.
    deltas = ctx.load("metric_deltas", tuple(picked))
    if deltas.empty:
        st.info("These runs have no metrics.")
        return
    tests_per_run = deltas.groupby("run").p_raw.transform(lambda p: int(p.notna().sum()))
    decimals = cells.metric_decimals(long)
    shown = delta_table(deltas, short, ways, flagged, decimals, tests_per_run)
    styled = style_deltas(shown, list(deltas.metric), decimals)
    st.dataframe(styled, hide_index=True, key="compare_deltas", width="stretch", column_config=DELTA_COLUMNS)
    st.caption(f"Baseline: {short[picked[0]]}. Delta = run - baseline, paired over samples with the same prompt "
               "and seed; 95% CI and two-sided p from the release gate's paired bootstrap over prompts (each "
               "drawn prompt brings all its seeds: the unit of the leaderboard's CIs too); set-level metrics: "
               "from each run's CI; Holm-adjusted across metrics; significant at p < 0.05. '< x': below the "
               f"smallest p that {compare.N_BOOT} bootstrap replicates can resolve. CIs are clipped to what the "
               "metric's range allows.")
    if flagged:
        st.warning(f"* {', '.join(flagged)}: {NOT_COMPARABLE} (random-weight feature extractor).")

    st.subheader("Per prompt")
    metrics = sorted(values.metric.unique())
    if not metrics:
        st.info("No per-sample values to compare.")
        return
    metric = st.selectbox("Metric", metrics, key="compare_metric", persist_state="session", format_func=lambda m: ranking.column_label(m, ways))
    table = compare.per_prompt(values, picked, short, metric)
    st.dataframe(table.style.format({c: fmt for c in table.columns if c not in ("prompt_id", "seed", "prompt")}),
                 hide_index=True, key="compare_prompts", width="stretch")
    diff_note = "second - first run" if len(picked) == 2 else "max - min over the runs"
    st.caption(f"Sorted by the largest absolute difference ({diff_note}).")

    st.subheader("Watch side by side")
    keys = list(zip(table.prompt_id, table.seed))
    if not keys:
        return
    key = st.selectbox("Prompt and seed", keys, key="compare_watch", persist_state="session",
                       format_func=lambda k: f"{k[0]} · seed {k[1]}")
    samples = ctx.load("samples_of", tuple(picked))
    here = samples[(samples.prompt_id == key[0]) & (samples.seed == key[1])].set_index("run_id")
    if len(here):
        st.markdown(f"**{here.prompt.iloc[0]}**")
    for col, run_id in zip(st.columns(len(picked)), picked):
        with col:
            st.markdown(f"**{short[run_id]}**")
            if run_id not in here.index:
                st.warning("no sample for this prompt and seed in this run")
                continue
            s = here.loc[run_id]
            v = values[(values.run_id == run_id) & (values.prompt_id == key[0]) & (values.seed == key[1])
                       & (values.metric == metric)].value
            show_video(ctx.db_path, s.preview_path, s.path, f"compare-{run_id}",
                       caption=f"{metric} = {fmt(v.iloc[0]) if len(v) else '–'}" + (f" · failed: {s.error}" if s.status != "ok" else ""))


def default_runs(ctx: Context, runs: pd.DataFrame) -> list[str]:
    """Like for like by default: the two newest runs (of two models) with the settings shown, the
    older as the baseline; any two newest runs when the group has fewer than two."""
    same = list(ctx.latest_runs().run_id[:2])
    return same[::-1] if len(same) == 2 else list(runs.run_id[:2][::-1])


# Widths in pixels, the verdict right after the metric: the whole table (about 930 px) fits beside the
# sidebar in a 1400 px window.
DELTA_COLUMNS = {
    "run": st.column_config.Column("run", width=145),
    "metric": st.column_config.Column("metric", width=155),
    "verdict": st.column_config.Column("verdict", width=135),
    "baseline": st.column_config.Column("baseline", width=58),
    "value": st.column_config.Column("value", width=58),
    "delta": st.column_config.Column("delta", width=58),
    "delta 95% CI": st.column_config.Column("delta 95% CI", width=105),
    "p (Holm)": st.column_config.Column("p (Holm)", width=66, help="Holm-adjusted across metrics"),
    "n": st.column_config.Column("n", width=36, help="matched samples"),
    "test": st.column_config.Column("test", width=110),
}


def delta_table(deltas: pd.DataFrame, short: dict[str, str], ways: dict[str, bool], flagged: list[str],
                decimals: dict[str, int], tests_per_run: pd.Series) -> pd.DataFrame:
    """The deltas as shown: verdict second (it is what one reads first), CIs at the metric's decimals."""
    return pd.DataFrame({
        "run": deltas.run.map(short), "metric": deltas.metric.map(lambda m: ranking.column_label(m, ways, flagged)),
        "verdict": deltas.verdict, "baseline": deltas.baseline, "value": deltas.value, "delta": deltas.delta,
        "delta 95% CI": [delta_ci_text(m, lo, hi, decimals.get(m)) for m, lo, hi in
                         zip(deltas.metric, deltas.ci_low, deltas.ci_high)],
        "p (Holm)": [cells.p_cell(p, raw, compare.N_BOOT, int(k))
                     for p, raw, k in zip(deltas.p_value, deltas.p_raw, tests_per_run)],
        "n": deltas.n, "test": deltas.test,
    })


def style_deltas(shown: pd.DataFrame, metrics: list[str], decimals: dict[str, int]) -> Any:
    """Numbers stay numbers (sortable); each row is printed at its metric's fixed decimals, as on
    the Leaderboard (not 4 significant digits)."""
    styled = shown.style.map(_verdict_color, subset=["verdict"])
    numeric = ["baseline", "value", "delta"]
    for d in sorted({decimals.get(m, cells.MAX_DECIMALS) for m in metrics}):
        rows = [i for i, m in zip(shown.index, metrics) if decimals.get(m, cells.MAX_DECIMALS) == d]
        styled = styled.format(partial(_fixed, decimals=d), subset=pd.IndexSlice[rows, numeric])
    return styled


def _fixed(v: Any, decimals: int) -> str:
    return cells.number_cell(v, decimals)


def delta_ci_text(metric: str, lo: float, hi: float, decimals: int | None = None) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return ""
    lo, hi = cells.clip_delta_ci(metric, float(lo), float(hi))
    if decimals is None:
        return f"[{fmt(lo)}, {fmt(hi)}]"
    return f"[{lo:.{decimals}f}, {hi:.{decimals}f}]"


def _sample_counts(runs: pd.DataFrame, picked: list[str], short: dict[str, str]) -> None:
    """Say which runs lost samples: paired deltas use only the samples ok in both runs."""
    by_id = runs.set_index("run_id")
    lost = [f"{short[r]}: {int(by_id.failed[r])} of {int(by_id.samples[r])} failed"
            for r in picked if r in by_id.index and int(by_id.failed[r] or 0) > 0]
    if lost:
        st.warning("Failed samples (left out of the paired deltas): " + "; ".join(lost) + ".")


def _settings_note(settings: pd.DataFrame, picked: list[str], short: dict[str, str]) -> None:
    """Runs with different effective settings are not like for like: say how they differ."""
    config = dict(zip(settings.run_id, settings.suite_config))
    hashes = dict(zip(settings.run_id, settings.suite_hash))
    base = picked[0]
    differ = [r for r in picked[1:] if r in hashes and base in hashes and hashes[r] != hashes[base]]
    for r in differ:
        diff = "; ".join(groups.overrides(config[base], config[r], "baseline")) or "other settings"
        st.warning(f"{short[r]} ran with other settings than the baseline ({diff}): not like for like; "
                   "deltas pair only the prompts and seeds both have.")


def _verdict_color(v: str) -> str:
    return {"better": "color: #1a7f37; font-weight: bold", "worse": "color: #cf222e; font-weight: bold"}.get(v, "")

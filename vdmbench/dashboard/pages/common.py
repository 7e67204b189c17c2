"""What every page shares: the cached loader, the sidebar selection, videos with placeholders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from vdmbench.core.errors import StoreError
from vdmbench.dashboard import arena, charts, compare, data, groups, media, model_card, ranking, url_state
from vdmbench.store import dashboard_reads

VIDEO_WIDTH = 384  # pixels
FIRST_RUN_HINT = "vdmbench run suite=smoke model=reference-unet3d"

# Loaders the pages may call through the cache, by name (the cache key must be hashable).
_LOADERS: dict[str, Callable[..., Any]] = {
    "suites": data.suites, "runs": data.runs, "all_runs": data.all_runs, "latest_runs": data.latest_runs,
    "run_metrics": data.run_metrics, "sample_values": data.sample_values, "sample_tags": data.sample_tags,
    "tags": data.tags, "samples": data.samples, "samples_of": data.samples_of,
    "sample_metric_values": data.sample_metric_values, "history": data.history,
    "count_runs": data.count_runs, "votes": arena.votes, "run_settings": data.run_settings,
    "model_card": model_card.model_card, "metric_deltas": lambda store, run_ids: compare.metric_deltas(
        data.sample_values(store, run_ids), data.run_metrics(store, run_ids), list(run_ids),
        ranking.directions(data.run_metrics(store, run_ids))), "vote_agreement": lambda store, suite: _vote_agreement(store, suite),
    "judge_agreement": lambda store, suite: arena.judge_agreement(arena.votes(store, suite), store.judge_votes(suite)),
    "schema_version": lambda store: store.schema_version() if store.has_table("schema_version") else 0, "sample_hashes": lambda store, ids: dashboard_reads.sample_hashes(store, list(ids)), "run_metric_details": lambda store, ids: store.run_metric_table(ids),
    "dimension_scores": lambda store, run_ids, metric: charts.dimension_scores(
        data.sample_values(store, run_ids), data.sample_tags(store, run_ids), metric),
    # 200 bootstrap refits: computed once per file version, not on every rerun of the page
    "ratings": lambda store, suite: arena.bradley_terry(arena.votes(store, suite)),
    "tag_metrics": lambda store, run_ids, tags: ranking.recompute_from_samples(
        data.sample_values(store, run_ids, tags)),
}


def _vote_agreement(store: Any, suite: str) -> pd.DataFrame:
    """Each per-sample metric's agreement with the human votes, over the clips people voted on."""
    clips = dashboard_reads.vote_clips(store, suite)
    run_ids = sorted(set(clips.run_a) | set(clips.run_b))
    if not run_ids:
        return arena.metric_vote_agreement(clips, pd.DataFrame(), {})
    ways = ranking.directions(data.run_metrics(store, run_ids))
    return arena.metric_vote_agreement(clips, data.sample_values(store, run_ids), ways)


@st.cache_data(ttl=600, max_entries=512, show_spinner=False)
def _cached(name: str, db: str, token: tuple, args: tuple) -> Any:
    # `token` is only part of the key: it changes when the file is written, so new runs show up.
    store = data.open_store(db)
    return _LOADERS[name](store, *args)


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _unusable(db: str, token: tuple) -> str | None:
    return dashboard_reads.unusable_reason(db)


_LAST = "_last_loaded"  # session key: the last data each loader gave, shown while the file is busy
_BUSY_SHOWN = "_busy_banner_shown"


def _busy_banner() -> None:
    """Once per render; from then on this render uses the last data without waiting again."""
    if not st.session_state.get(_BUSY_SHOWN):
        st.warning("The database is busy (a run is writing to it): showing the data last read. "
                   "Reload in a moment for the newest.", icon="⏳")
        st.session_state[_BUSY_SHOWN] = True


_URL_START = "_url_start"  # session key: the URL this browser session opened with
_URL_USED = "_url_used"  # widget keys already given their value from that URL
_URL_EXTRA = "_url_extra"  # what the page shown adds to the URL (set while it renders)


def url_start() -> dict[str, str]:
    """The query parameters the session started with (a link's view), read once: from then on
    the widgets hold the state and the URL follows them."""
    if _URL_START not in st.session_state:
        st.session_state[_URL_START] = {k: st.query_params.get_all(k)[-1] for k in st.query_params}
    return st.session_state[_URL_START]


def seed(key: str, param: str, valid: Callable[[str], Any]) -> None:
    """Before the widget `key` is created: give it the value of the start URL's `param`, once per
    session, when `valid(text)` turns the text into an allowed value (None: ignore the link's value)."""
    used: set = st.session_state.setdefault(_URL_USED, set())
    if key in used:
        return
    used.add(key)
    text = url_start().get(param)
    if text is None:
        return
    value = valid(text)
    if value is not None:
        st.session_state[key] = value


def url_extra(**params: str | None) -> None:
    """The shown page's own part of the URL (runs, weights, sort, ...), published after it renders."""
    st.session_state.setdefault(_URL_EXTRA, {}).update(params)


def publish_url(page: str, ctx: Context | None) -> None:
    """Write the view into the URL (every rerun, so the address bar always reproduces the view);
    only when it changed, so an unchanged view does not touch the browser history."""
    params: dict[str, str | None] = {"page": page}
    if ctx is not None:
        task = st.session_state.get("task")
        params |= {"task": None if task in (None, "all") else str(task), "suite": ctx.suite,
                   "version": None if ctx.version is None else str(ctx.version),
                   "settings": url_state.short_hash(ctx.settings) or None,
                   "tags": url_state.encode_list(ctx.tags) or None}
    params |= st.session_state.pop(_URL_EXTRA, {})
    wanted = {k: v for k, v in params.items() if v not in (None, "")}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def view_link(ctx: Context, page: str, **params: str | None) -> str:
    """A link to another page of the same suite and settings (model cards use it)."""
    return url_state.link({"page": page, "suite": ctx.suite,
                           "version": None if ctx.version is None else str(ctx.version),
                           "settings": url_state.short_hash(ctx.settings) or None, **params})


def load_or_last(name: str, db: str, token: tuple, args: tuple) -> Any:
    """A loader's result; while another process holds the file for writing, the last result this
    session saw, under a banner (a busy file must not blank or break the page)."""
    last: dict = st.session_state.setdefault(_LAST, {})
    key = (name, db, args)
    if st.session_state.get(_BUSY_SHOWN) and key in last:
        return last[key]  # this render already found the file busy: do not wait again per table
    try:
        value = _cached(name, db, token, args)
    except StoreError as e:
        if "busy" not in str(e) or key not in last:
            raise
        _busy_banner()
        return last[key]
    last[key] = value
    return value


@dataclass(frozen=True)
class Context:
    """The sidebar's selection, handed to every page. `settings` is the suite_hash of the
    like-for-like group shown (groups.py); `settings_label` says how it differs from standard."""

    db_path: str
    token: tuple
    suite: str
    version: int | None
    since: datetime | None
    until: datetime | None
    tags: tuple[str, ...]
    settings: str | None = None
    settings_label: str = ""
    standard: bool = True

    def load(self, name: str, *args: Any) -> Any:
        return load_or_last(name, self.db_path, self.token, tuple(args))

    def latest_runs(self) -> pd.DataFrame:
        """The newest run per model among the runs with the selected settings."""
        return self.load("latest_runs", self.suite, self.version, self.since, self.until, self.settings)


def empty_db_message(db_path: str, detail: str = "") -> None:
    st.title("vdmbench leaderboard")
    st.info(
        f"No finished runs in `{db_path}` yet{detail}. Create the first one with\n\n"
        f"```\n{FIRST_RUN_HINT}\n```\n"
        "(any suite and model work: `vdmbench list suites`, `vdmbench list models`), "
        "or start the app on another database with `vdmbench leaderboard --db PATH`. "
        "Then reload this page."
    )


def sidebar(db_path: str) -> Context | None:
    """Suite/version/task/tag/date selection; None (after a message) when there is nothing to show."""
    st.session_state[_BUSY_SHOWN] = False
    if not Path(db_path).is_file():
        empty_db_message(db_path)
        return None
    token = data.db_token(db_path)
    try:
        reason = _unusable(db_path, token)
    except StoreError as e:  # busy beyond the check's wait: show what this session read last
        reason = None if st.session_state.get(_LAST) else str(e).splitlines()[0]
        if reason is None:
            _busy_banner()
    if reason:
        st.title("vdmbench leaderboard")
        st.error(reason)
        return None
    suites: pd.DataFrame = load_or_last("suites", db_path, token, ())
    if suites.empty:
        n = load_or_last("count_runs", db_path, token, ())
        empty_db_message(db_path, f" ({n} run(s) still in progress or interrupted)" if n else "")
        return None
    bar = st.sidebar
    tasks = sorted(t for t in suites.task.dropna().unique())
    seed("task", "task", lambda t: t if t in tasks else None)
    task = bar.selectbox("Task", ["all", *tasks], key="task")
    shown = suites if task == "all" else suites[suites.task == task]
    names = sorted(shown.suite.unique())
    seed("suite", "suite", lambda s: s if s in names else None)
    if st.session_state.get("suite") not in names:  # first visit, or another task: the newest suite
        st.session_state["suite"] = newest_suite(shown)
    suite = bar.selectbox("Suite", names, key="suite")
    versions = [int(v) for v in shown[shown.suite == suite].suite_version.dropna().sort_values(ascending=False)]
    seed("suite_version", "version", lambda v: int(v) if v.isdigit() and int(v) in versions else None)
    version = bar.selectbox("Suite version", versions, key="suite_version") if versions else None
    known_tags = load_or_last("tags", db_path, token, (suite, version))
    seed("tags", "tags", lambda t: [x for x in url_state.decode_list(t) if x in known_tags] or None)
    tags = tuple(bar.multiselect("Tags / dimensions (any of)", known_tags, key="tags"))
    row = shown[(shown.suite == suite) & (shown.suite_version == version)] if version is not None else shown[shown.suite == suite]
    since, until = _date_range(bar, row)
    settings = load_or_last("run_settings", db_path, token, (suite, version))
    finished = load_or_last("runs", db_path, token, (suite, version, since, until))
    table = groups.settings_groups(settings, finished)
    if table.empty:
        return Context(db_path, token, suite, version, since, until, tags)
    labels = dict(zip(table.suite_hash, table.label))
    seed(f"settings-{suite}-{version}", "settings", lambda h: url_state.match_hash(h, labels))
    picked = bar.selectbox("Settings (runs are ranked only with runs of the same settings)", list(labels),
                           format_func=lambda h: labels[h], key=f"settings-{suite}-{version}")
    standard = bool(table.set_index("suite_hash").standard[picked])
    return Context(db_path, token, suite, version, since, until, tags, picked, labels[picked], standard)


def newest_suite(suites: pd.DataFrame) -> str:
    """The suite with the most recently finished run (ties: alphabetical), the one a visitor most
    likely came to see, rather than the alphabetically first."""
    order = suites.assign(_last=pd.to_datetime(suites.last_finished)).sort_values(
        ["_last", "suite"], ascending=[False, True], na_position="last")
    return str(order.suite.iloc[0])


def _date_range(bar: Any, row: pd.DataFrame) -> tuple[datetime | None, datetime | None]:
    """The finished-between filter; the untouched full range means 'no filter' so new runs show."""
    first = pd.Timestamp(row.first_finished.min()).date() if len(row) else date.today()
    last = pd.Timestamp(row.last_finished.max()).date() if len(row) else date.today()
    picked = bar.date_input("Finished between", value=(first, last), key=f"dates-{first}-{last}")
    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        return None, None  # the user is halfway through picking a range
    lo, hi = picked
    since = None if lo <= first else datetime.combine(lo, time.min)
    until = None if hi >= last else datetime.combine(hi + timedelta(days=1), time.min)
    return since, until


def run_label(row: Any) -> str:
    when = pd.Timestamp(row.finished_at).strftime("%Y-%m-%d %H:%M") if pd.notna(row.finished_at) else row.status
    return f"{row.model} · {row.run_id} · {when}"


def show_video(db_path: str, preview_path: str | None, path: str | None, key: str, caption: str = "") -> None:
    """The clip, or a placeholder saying which file is missing (never an exception).

    `key` names the slot on the page (it becomes the video's alt text): two runs can share one
    cached clip (same bytes), and Streamlit refuses two identical autoplaying videos."""
    found = media.playable(db_path, preview_path, path)
    if found is None:
        missing = media.resolve(db_path, preview_path or path)
        st.warning(f"video file missing: `{missing or 'no file recorded'}`", icon="🎞️")
    else:
        try:
            # Looping and muted autoplay, so clips shown side by side play together; a fixed width
            # because generated clips are often tiny and would blow up to the column's width.
            # A whole multiple of the clip's own width: with CSS pixelated, every pixel an exact block.
            st.video(found.read_bytes(), format="video/mp4", loop=True, autoplay=True, muted=True,
                     width=media.display_width(found, VIDEO_WIDTH), alt=f"clip {key}")
        except OSError as e:  # deleted between the check and the read
            st.warning(f"video file unreadable: `{found}` ({e})", icon="🎞️")
    if caption:
        st.caption(caption)



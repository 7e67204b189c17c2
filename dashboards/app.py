"""vdmbench leaderboard (Streamlit).

Started by `vdmbench leaderboard [--db PATH]`, i.e. `streamlit run app.py -- --db PATH`. The page
code lives in `vdmbench.dashboard.pages` so it is importable (and testable) wherever the package
is installed; this file only reads the arguments and dispatches to the page picked in the sidebar.
"""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from vdmbench.core.errors import StoreError
from vdmbench.dashboard.pages import PAGES
from vdmbench.dashboard.pages.common import publish_url, seed, sidebar

DEFAULT_DB = "results/vdmbench.duckdb"


def db_from_argv(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=DEFAULT_DB)
    args, _ = parser.parse_known_args(argv)
    return args.db


st.set_page_config(page_title="vdmbench leaderboard", page_icon="🎬", layout="wide")
# Small clips (32x32 reference models) are shown far larger than they are: sharp pixels, not a blur.
st.html("<style>video, .st-key-filmstrip img { image-rendering: pixelated; }</style>")
# Tests (AppTest) put db_path into the session before the first run; a served app reads argv.
if "db_path" not in st.session_state:
    st.session_state["db_path"] = db_from_argv(sys.argv[1:])

# The URL holds the view (page, suite, settings, tags, runs, weights, ...): a link opens it, and
# every change is written back, so the address bar always reproduces what is shown.
seed("page", "page", lambda p: p if p in PAGES else None)
page = st.sidebar.radio("Page", list(PAGES), key="page")
ctx = None
try:
    ctx = sidebar(st.session_state["db_path"])
    if ctx is not None:
        PAGES[page](ctx)
        st.sidebar.caption(f"database: `{ctx.db_path}` (read-only)")
except StoreError as e:  # busy with nothing read yet, or damaged mid-session: one line, no traceback
    st.error(str(e).splitlines()[0])
publish_url(page, ctx)

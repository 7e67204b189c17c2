"""A real browser on the served app: `vdmbench leaderboard` serves it on localhost and headless
Chromium opens every page in one tab (`?page=...`): each page's main element is drawn, no exception
box is on it, and a screenshot is saved (to $VDMBENCH_SCREENSHOT_DIR when set). Then an Arena vote
is clicked while another process holds the database as a writer: the vote is queued, not lost,
and stored by the next click once the file is free.

Chromium is driven over the DevTools protocol with `websockets` (a Streamlit dependency), so no
chromedriver is needed; the server, browser and page checks are scripts/dashboard_screenshots.py's.
Skipped when no Chromium is installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scripts.dashboard_screenshots import Chromium, browser_path, open_page, serve
from tests.dashboard_db import fill

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # another writer holding the file
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""
CLICK = """(() => {{ const b = document.querySelector('.st-key-{key} button'); if (!b) return null; b.click(); return true; }})()"""
TEXT_HAS = """(() => {{ const t = document.body.innerText; return t.includes({text}) ? t : null; }})()"""


def _votes(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM arena_votes").fetchone()[0])
    finally:
        con.close()


@pytest.mark.skipif(browser_path() is None, reason="no Chromium installed (apt-get install -y chromium)")
def test_every_page_renders_in_chromium_and_a_vote_survives_a_held_database(tmp_path):
    pytest.importorskip("websockets")
    from vdmbench.dashboard.pages import PAGES

    results = tmp_path / "results"
    fill(results, [("toy-noise", "noise"), ("toy-square", "moving_square"), ("toy-flaky", "flaky")])
    db = results / "vdmbench.duckdb"
    shots = Path(os.environ.get("VDMBENCH_SCREENSHOT_DIR", tmp_path / "shots"))
    with serve(db, tmp_path) as url:
        browser = Chromium(Path(tempfile.mkdtemp(prefix="chrome-profile-", dir=tmp_path)))
        try:
            seen = {}
            for page in PAGES:  # every page the sidebar offers, new ones included
                found = open_page(browser, url, page)
                assert not found["exceptions"]
                assert page.split("-")[0] in found["header"], found["header"]
                time.sleep(0.5)  # canvases paint after the DOM
                out = browser.screenshot(shots / f"{page.lower()}.png")
                assert out.stat().st_size > 10_000  # a drawn page, not a blank one
                seen[page] = found
            # The main elements hold this database's content, not just any widget.
            cells = set(seen["Leaderboard"]["found"])
            assert {"toy-noise", "toy-square", "toy-flaky"} <= cells, cells
            assert "Leaderboard · dash v1" in seen["Leaderboard"]["text"]
            assert seen["Arena"]["found"] >= 2 and seen["Plots"]["found"] >= 3
            assert any("toy-" in c for c in seen["Compare"]["found"])

            # A vote while another writer holds the file: queued on disk, then stored once.
            assert _votes(db) == 0
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "60"], stdout=subprocess.PIPE, text=True)
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
                t0 = time.monotonic()
                assert browser.wait_for(CLICK.format(key="arena_vote_a"), 30, what="the 'A is better' button")
                browser.wait_for(TEXT_HAS.format(text='"Vote queued"'), 45, what="the queued-vote message")
                assert time.monotonic() - t0 < 30  # no 30 s freeze
                assert holder.poll() is None, "the holder let go too early: the busy vote was not tested"
                pending = list((results / "vdmbench.duckdb.pending-votes").glob("*.json"))
                assert len(pending) == 1  # the vote is on disk, not lost
            finally:
                holder.kill()
                holder.wait()
            assert browser.wait_for(CLICK.format(key="arena_vote_skip"), 30, what="the 'Skip' button")
            browser.wait_for(TEXT_HAS.format(text='"queued vote(s) stored"'), 45, what="the stored-vote message")
            assert _votes(db) == 1
            assert not list((results / "vdmbench.duckdb.pending-votes").glob("*.json"))
            after = open_page(browser, url, "Arena")  # a fresh page counts the stored vote in the ratings
            assert "1 votes" in after["text"], after["text"][-500:]
            browser.screenshot(shots / "arena-after-vote.png")
        finally:
            browser.close()

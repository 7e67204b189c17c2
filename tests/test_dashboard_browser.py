"""A real browser on the served app: `vdmbench leaderboard` serves it on localhost, headless Chromium
loads it, the leaderboard table is found in the page and a screenshot is saved.

Chromium is driven over the DevTools protocol with `websockets` (a Streamlit dependency), so no
chromedriver is needed. Skipped when no Chromium is installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dashboard_db import fill
from tests.fixtures import REPO

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000", "--hide-scrollbars"]

# The leaderboard table: a data grid inside the container keyed "leaderboard-table". The grid paints
# on a canvas but keeps an accessible copy of its cells (data-testid glide-cell-<col>-<row>).
FIND_TABLE = """(() => {
  const box = document.querySelector('.st-key-leaderboard-table [data-testid="stDataFrame"]');
  if (!box) return null;
  const cells = [...box.querySelectorAll('[data-testid^="glide-cell-"]')].map(e => e.textContent);
  if (cells.length === 0) return null;  // the grid has not filled in yet
  const r = box.getBoundingClientRect();
  return {width: r.width, height: r.height, cells: cells, text: document.body.innerText};
})()"""


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class DevTools:
    """Just enough of the Chrome DevTools protocol: send a command, wait for its answer."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30).__enter__()
        self.next_id = 0

    def call(self, method: str, timeout: float = 30, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:  # events in between are ignored
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.ws.__exit__(None, None, None)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the process and its children: `vdmbench leaderboard` runs streamlit as a child, and a
    plain terminate() of the parent left that server running after the test."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # started with start_new_session: its own process group
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the parent
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (apt-get install -y chromium)")
def test_browser_loads_the_leaderboard_and_takes_a_screenshot(tmp_path):
    pytest.importorskip("websockets")
    results = tmp_path / "results"
    fill(results, [("toy-noise", "noise"), ("toy-square", "moving_square")])
    port, debug_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "vdmbench.cli.commands", "leaderboard", "--db", str(results / "vdmbench.duckdb"),
         "--port", str(port), "--headless"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    profile = tempfile.mkdtemp(prefix="chrome-profile-", dir=tmp_path)
    browser = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        browser = subprocess.Popen(
            [_browser(), *CHROME_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={debug_port}",
             f"http://127.0.0.1:{port}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            pages = [t for t in json.loads(_wait_http(f"http://127.0.0.1:{debug_port}/json/list", 30))
                     if t.get("type") == "page" and str(port) in t.get("url", "")]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert pages, "Chromium did not open the app"
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            found, deadline = None, time.monotonic() + 60
            while found is None and time.monotonic() < deadline:
                found = tools.evaluate(FIND_TABLE)
                if found is None:
                    time.sleep(0.3)
            assert found is not None, "the leaderboard table never appeared"
            assert found["width"] > 200 and found["height"] > 50
            text = found["text"]
            assert "Leaderboard · dash v1" in text
            assert {"toy-noise", "toy-square"} <= set(found["cells"]), found["cells"]
            time.sleep(1.0)  # let the grid's canvas paint before the screenshot
            shot = tools.call("Page.captureScreenshot", format="png")
        finally:
            tools.close()
        out = Path(os.environ.get("VDMBENCH_SCREENSHOT_DIR", tmp_path)) / "leaderboard.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        assert out.stat().st_size > 10_000
        print(f"screenshot: {out}")
    finally:
        if browser is not None:
            _stop(browser)
        _stop(server)

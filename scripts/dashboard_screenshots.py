"""Screenshots of every dashboard page, on a demo database anyone can rebuild.

    python scripts/dashboard_screenshots.py                  # -> docs/img/dashboard-<page>.png
    python scripts/dashboard_screenshots.py --out /tmp/shots --keep /tmp/demo   # keep the database

1. Builds a results database of 6 models x 2 suites: the shipped `shapes-t2v` (tags color-*,
   shape-*, direction-*, motion-*) and `t2v-mini` (t2v-core's dimension tags: people, animals,
   camera, style, ...). Runs are written directly through `Store` (no generation, no metrics:
   a few seconds), with synthetic metric values that follow each model's quality, a failed sample,
   a model's older run (history), a cut-down try-out run (its own settings group), arena votes and
   FVD ladder details. Every sample has real clips: shapes-t2v's are the procedural ground truth
   of the prompt (vdmbench.data.shapes), degraded per model (noise, blur, flicker, frozen, wrong
   colours), written as the lossless file plus the H.264 preview the browser plays.
2. Serves the app (`vdmbench leaderboard --headless`) and drives headless Chromium over the
   DevTools protocol (no chromedriver; `websockets` comes with Streamlit): one tab, every page by
   `?page=...`, waits until the page's main element is there and Streamlit has stopped running,
   fails on an exception box, and saves one PNG per page.

Chromium flags: --headless --no-sandbox --disable-gpu --disable-background-networking and a fresh
--user-data-dir. Needs Chromium (Debian: apt-get install chromium) and the dashboard extra.
The browser test (tests/test_dashboard_browser.py) uses the same Server / Chromium / page checks.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = (1400, 1000)
MAX_PNG_BYTES = 300_000  # per screenshot in docs/img
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--mute-audio", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}"]

# --- the demo database ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    quality: float  # ~N(0, 1): drives every synthetic metric and the arena's win probability
    degrade: str  # how its clips differ from the ground truth
    adapter: str = "reference"


MODELS = (
    Model("unet3d-large", 1.3, "none"),
    Model("dit-small", 0.8, "noise"),
    Model("unet3d-base", 0.3, "blur"),
    Model("unet3d-undertrained", -0.4, "flicker"),
    Model("frozen-frame", -0.9, "frozen", adapter="callable"),
    Model("wrong-colors", -1.2, "colors", adapter="callable"),
)


def degrade(frames: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """A model's look: uint8 [T, H, W, 3] -> uint8, so the previews match the metric values."""
    x = frames.astype(np.float32)
    if how == "noise":
        x = x + rng.normal(0, 18, x.shape)
    elif how == "blur":  # a 3x3 box blur per frame
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        x = sum(p[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)) / 9
    elif how == "flicker":
        x = x * rng.uniform(0.6, 1.25, (x.shape[0], 1, 1, 1))
    elif how == "frozen":
        x = np.repeat(x[:1], x.shape[0], axis=0)
    elif how == "colors":
        x = x[..., ::-1]
    return np.clip(x, 0, 255).round().astype(np.uint8)


def _clip_files(root: Path, model: Model, sample_id: str, frames: np.ndarray, fps: float) -> tuple[str, str, str]:
    """Write the lossless clip and its preview; (path, preview_path, sha256), paths relative to root."""
    import torch

    from vdmbench.core.video import Video, write_preview, write_video

    video = Video(torch.from_numpy(np.ascontiguousarray(frames)), fps=fps)
    path = root / "videos" / model.name / f"{sample_id}.mp4"
    preview = root / "previews" / model.name / f"{sample_id}.mp4"
    for p in (path, preview):
        p.parent.mkdir(parents=True, exist_ok=True)
    write_video(video, path)
    write_preview(video, preview)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return str(path.relative_to(root)), str(preview.relative_to(root)), digest


def _ground_truth(suite_name: str, text: str, seed: int, params: dict) -> np.ndarray:
    """shapes-t2v: the prompt's own procedural clip (8 x 32 x 32); t2v-mini: a shapes scene drawn
    from the words the shapes domain knows (colours), at 48 x 80 and 12 frames (small on disk)."""
    from vdmbench.data.shapes import render_prompt

    if suite_name == "t2v-mini":
        clip = render_prompt(text, seed, 12, 48, 80, {"background": "stripes"})
    else:
        clip = render_prompt(text, seed, 8, 32, 32, params)
    return clip.frames.numpy()


def _shapes_values(model: Model, prompt_tags: Sequence[str], rng: np.random.Generator) -> dict[str, float]:
    q = model.quality
    hits = {part: float(rng.random() < min(0.97, max(0.05, 0.6 + 0.25 * q - (0.2 if "motion-diagonal" in prompt_tags
                                                                               and part == "direction" else 0))))
            for part in ("color", "shape", "direction")}
    if model.degrade == "colors":
        hits["color"] = 0.0
    if model.degrade == "frozen":
        hits["direction"] = float("motion-static" in prompt_tags)
    flicker_mad = max(0.2, 3.0 - 1.2 * q + rng.normal(0, 0.4)) if model.degrade != "frozen" else 0.0
    if model.degrade == "flicker":
        flicker_mad += 9.0
    motion = 0.0 if model.degrade == "frozen" or "motion-static" in prompt_tags else max(0.1, 1.9 + 0.2 * q +
                                                                                          rng.normal(0, 0.2))
    return {"shapes_adherence": float(np.mean(list(hits.values()))), "shapes_color": hits["color"],
            "shapes_shape": hits["shape"], "shapes_direction": hits["direction"],
            "flicker": (255 - flicker_mad) / 255, "flicker_mean_abs_diff": flicker_mad,
            "motion_mean": motion, "motion_top5": motion * 1.6}


def _mini_values(model: Model, prompt_tags: Sequence[str], rng: np.random.Generator) -> dict[str, float]:
    q = model.quality
    hard = 1.5 if {"count", "spatial", "multi-object"} & set(prompt_tags) else 0.0  # text alignment suffers
    fast = "motion-fast" in prompt_tags or "camera" in prompt_tags
    flicker_mad = max(0.3, 4.0 - 1.0 * q + (1.5 if fast else 0) + rng.normal(0, 0.5))
    motion = 0.0 if model.degrade == "frozen" else max(0.2, 3.0 + 0.3 * q + (2 if fast else 0) + rng.normal(0, 0.5))
    return {"flicker": (255 - flicker_mad) / 255, "flicker_mean_abs_diff": flicker_mad,
            "flow_warping_error": max(0.001, 0.03 - 0.006 * q + 0.01 * fast + rng.normal(0, 0.003)),
            "motion_mean": motion, "motion_top5": motion * 1.8,
            "clip_similarity": 30 + 1.5 * q - hard + rng.normal(0, 0.8),
            "clip_temporal_consistency": min(1.0, 0.95 + 0.01 * q + rng.normal(0, 0.005))}


HIGHER = {"shapes_adherence": True, "shapes_color": True, "shapes_shape": True, "shapes_direction": True,
          "flicker": True, "flicker_mean_abs_diff": False, "motion_mean": None, "motion_top5": None,
          "flow_warping_error": False, "clip_similarity": True, "clip_temporal_consistency": True}
PARENT = {"shapes_color": "shapes_adherence", "shapes_shape": "shapes_adherence",
          "shapes_direction": "shapes_adherence", "flicker_mean_abs_diff": "flicker", "motion_top5": "motion",
          "motion_mean": "motion", "clip_temporal_consistency": "clip_temporal"}


def _run_metric_rows(run_id: str, values: dict[str, list[float]], prompt_of: list[str],
                     rng: np.random.Generator) -> list[dict[str, Any]]:
    """Means with a bootstrap-over-prompts 95% CI, as the runner stores them."""
    from vdmbench.core.stats import clustered_bootstrap_mean

    rows = []
    for metric, xs in values.items():
        est = clustered_bootstrap_mean(np.asarray(xs, dtype=np.float64), np.asarray(prompt_of[:len(xs)]))
        details = {"metric": PARENT.get(metric, metric), "comparable": True, "higher_is_better": HIGHER[metric],
                   "per_sample": True, "ci": "bootstrap over prompts, 95%"}
        rows.append({"run_id": run_id, "metric": metric, "value": est.value, "ci_low": est.ci_low,
                     "ci_high": est.ci_high, "n": len(xs), "details": json.dumps(details)})
    return rows


def _fvd_row(run_id: str, model: Model, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """A set-level FVD on random I3D weights (not comparable), with the sample-size ladder at the
    sizes and by the rule the real FVD uses (vdmbench.core.ladder); the values are synthetic."""
    from vdmbench.core.ladder import RULE, judge_ladder, ladder_sizes

    final = float(60 * np.exp(-0.9 * model.quality) + rng.normal(0, 3))
    bias = final * (0.05 if model.quality > 0 else 0.8)  # small-sample bias, ~1/n; settles for good models
    ladder = []
    for k in ladder_sizes(n):
        v = final + bias * (n / k - 1)
        ladder.append({"n": k, "value": v, "ci_low": v * 0.9, "ci_high": v * 1.1})
    settled, _ = judge_ladder(ladder)
    details = {"metric": "fvd", "comparable": False, "higher_is_better": False, "per_sample": False,
               "features": "random-i3d", "ladder": ladder, "settled": settled, "ladder_rule": RULE}
    return {"run_id": run_id, "metric": "fvd", "value": final, "ci_low": final * 0.9, "ci_high": final * 1.1,
            "n": n, "details": json.dumps(details)}


def build_database(root: Path, seed: int = 0) -> tuple[Path, dict[tuple[str, str], str]]:
    """The demo database at root/vdmbench.duckdb (root must be empty or missing): its path and
    (suite, model) -> the model's current run id."""
    import pandas as pd
    import torch

    from vdmbench.config.suite import load_suite
    from vdmbench.store.database import Store
    from vdmbench.store.schema import TABLES

    torch.set_num_threads(1)  # only the video encoder's frame hand-off: no parallel work worth threads
    root.mkdir(parents=True, exist_ok=True)
    db = root / "vdmbench.duckdb"
    rng = np.random.default_rng(seed)
    tables: dict[str, list[dict[str, Any]]] = {t: [] for t in ("runs", "samples", "sample_metrics", "run_metrics")}
    start = datetime(2026, 11, 20, 9, 0)
    latest: dict[tuple[str, str], str] = {}
    samples_of: dict[str, list[dict[str, Any]]] = {}
    clips: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    for s_index, suite_name in enumerate(("shapes-t2v", "t2v-mini")):
        full = load_suite(suite_name)
        cut = full.to_dict() | {"prompts": full.to_dict()["prompts"][:4], "steps": 3}
        for m_index, model in enumerate(MODELS):
            # (run label, effective suite dict, hash, days after start): an older run, then the current one;
            # one model also tried a cut-down run last (steps=3, 4 prompts): its own settings group.
            variants = [("old", full.to_dict(), full.hash, 0), ("new", full.to_dict(), full.hash, 6)]
            if suite_name == "shapes-t2v" and model.name == "unet3d-base":
                variants.append(("quick", cut, "quick" + full.hash[5:], 8))
            if suite_name == "t2v-mini":
                variants = variants[1:]  # one run per model
            for label, config, suite_hash, day in variants:
                finished = start + timedelta(days=day, hours=s_index, minutes=7 * m_index)
                run_id = finished.strftime("%Y%m%d-%H%M%S") + "-" + hashlib.sha1(
                    f"{suite_name}{model.name}{label}".encode()).hexdigest()[:6]
                params = {"arch": model.name.split("-")[0], "steps": config.get("steps") or 25, "guidance": 3.0,
                          "num_frames": full.num_frames, "height": full.height, "width": full.width}
                model_config = {"name": model.name, "adapter": model.adapter, "params": params,
                                "description": f"demo model ({model.degrade} clips)"}
                tables["runs"].append({
                    "run_id": run_id, "suite": suite_name, "suite_version": full.version, "suite_hash": suite_hash,
                    "model": model.name, "model_config": json.dumps(model_config),
                    "config_hash": hashlib.sha256(json.dumps(model_config, sort_keys=True).encode()).hexdigest(),
                    "status": "finished", "started_at": finished - timedelta(minutes=4), "finished_at": finished,
                    "git_sha": hashlib.sha1(f"{label}{day}".encode()).hexdigest(), "shard": None,
                    "env": json.dumps({"python": "3.11", "device": "cpu", "cpu_count": 2, "torch_threads": 1,
                                       "packages": {"vdmbench": "0.1.0", "torch": torch.__version__}}),
                    "suite_config": json.dumps(config)})
                values: dict[str, list[float]] = {}
                prompt_of: list[str] = []
                rows = samples_of.setdefault(run_id, [])
                for prompt in config["prompts"]:
                    for s in prompt.get("seeds") or config["seeds"]:
                        sample_id = f"{prompt['id']}-s{s}"
                        failed = model.degrade == "flicker" and label == "new" and len(rows) in (3, 11)
                        row = {"run_id": run_id, "sample_id": sample_id, "prompt_id": prompt["id"],
                               "prompt": prompt["text"], "seed": s, "task": full.task, "gen_seconds":
                               float(rng.gamma(2.0, 0.4)), "status": "failed" if failed else "ok",
                               "error": "CUDA out of memory (demo failure)" if failed else None,
                               "cache_key": hashlib.sha256(f"{run_id}{sample_id}".encode()).hexdigest(),
                               "tags": json.dumps(prompt.get("tags", [])), "created_at": finished,
                               "path": None, "preview_path": None, "sha256": None}
                        rows.append(row)
                        tables["samples"].append(row)
                        if failed:
                            continue
                        key = (suite_name, model.name, sample_id)
                        if key not in clips:  # a model's runs share its clip of a prompt and seed
                            frames = degrade(_ground_truth(suite_name, prompt["text"], s, prompt.get("params", {})),
                                             model.degrade, rng)
                            clips[key] = _clip_files(root, model, f"{suite_name}/{sample_id}", frames, full.fps)
                        row["path"], row["preview_path"], row["sha256"] = clips[key]
                        make = _shapes_values if suite_name == "shapes-t2v" else _mini_values
                        drift = -0.15 if label == "old" else 0.0  # the newer run of a model is a little better
                        for metric, v in make(Model(model.name, model.quality + drift, model.degrade), prompt.get("tags", []),
                                              rng).items():
                            tables["sample_metrics"].append({"run_id": run_id, "sample_id": sample_id, "metric": metric,
                                                             "value": float(v)})
                            values.setdefault(metric, []).append(float(v))
                        prompt_of.append(prompt["id"])
                tables["run_metrics"] += _run_metric_rows(run_id, values, prompt_of, rng)
                if suite_name == "shapes-t2v":
                    tables["run_metrics"].append(_fvd_row(run_id, model, len(prompt_of), rng))
                if label == "new":
                    latest[(suite_name, model.name)] = run_id
    tables["arena_votes"] = _votes(latest, samples_of, rng, start + timedelta(days=7))
    if "judge_votes" in TABLES:
        tables["judge_votes"] = [{**v, "vote_id": "j" + v["vote_id"], "judge": "demo-vlm@v1",
                                  "criterion": "Which clip follows the prompt better?",
                                  "winner": v["winner"] if rng.random() < 0.8 else ("a" if v["winner"] == "b" else "b"),
                                  "forward": "A", "backward": "B"}
                                 for v in tables["arena_votes"] if v["winner"] != "tie"]
        for v in tables["judge_votes"]:
            v.pop("voter")
    frames = {t: pd.DataFrame(r) for t, r in tables.items() if r}
    Store(db).load_frames(frames)
    return db, latest


def _votes(latest: dict[tuple[str, str], str], samples_of: dict[str, list[dict[str, Any]]],
           rng: np.random.Generator, when: datetime, per_suite: int = 90) -> list[dict[str, Any]]:
    """Blind pairwise votes between the latest runs, won with Bradley-Terry odds of the qualities."""
    quality = {m.name: m.quality for m in MODELS}
    votes = []
    for suite_name in ("shapes-t2v", "t2v-mini"):
        runs = {model: run for (s, model), run in latest.items() if s == suite_name}
        for i in range(per_suite):
            a, b = rng.choice(sorted(runs), 2, replace=False)
            ok_a = {r["sample_id"]: r for r in samples_of[runs[a]] if r["status"] == "ok"}
            ok_b = {r["sample_id"]: r for r in samples_of[runs[b]] if r["status"] == "ok"}
            sample = str(rng.choice(sorted(set(ok_a) & set(ok_b))))
            p = 1 / (1 + np.exp(quality[b] - quality[a]))
            u = rng.random()
            winner = "tie" if abs(u - p) < 0.05 else ("a" if u < p else "b")
            votes.append({"vote_id": f"demo-{suite_name}-{i:03d}", "suite": suite_name,
                          "prompt_id": ok_a[sample]["prompt_id"], "seed": int(ok_a[sample]["seed"]),
                          "run_a": runs[a], "sample_a": sample, "model_a": a, "run_b": runs[b], "sample_b": sample,
                          "model_b": b, "winner": winner, "voter": "demo", "created_at": when + timedelta(minutes=i)})
    return votes


# --- serving and driving a browser ----------------------------------------------------------------


def browser_path() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bytes(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session and its children (`vdmbench leaderboard`
    runs streamlit as a child; a plain terminate() of the parent left that server running)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the parent
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serve(db: Path, cwd: Path) -> Iterator[str]:
    """`vdmbench leaderboard --db DB --headless` on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(cwd / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "vdmbench.cli.commands", "leaderboard", "--db", str(db), "--port", str(port),
             "--headless"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90)
            yield f"http://127.0.0.1:{port}/"
        finally:
            stop(server)


class Chromium:
    """Headless Chromium with one tab, driven over the DevTools protocol: navigate, evaluate, click,
    wait for a condition, capture the viewport."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        path = browser_path()
        if path is None:
            raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
        port = free_port()
        self.proc = subprocess.Popen(
            [path, *CHROME_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                pages = [t for t in json.loads(wait_http(f"http://127.0.0.1:{port}/json/list", 30))
                         if t.get("type") == "page"]
                if pages or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if not pages:
                raise RuntimeError("Chromium opened no tab")
            # entered as a context manager: websockets deprecates the bare connect()
            self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30).__enter__()
        except BaseException:
            stop(self.proc)
            raise
        self.next_id = 0
        self.resize(*VIEWPORT)

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:  # events in between are ignored
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 60, what: str = "the condition") -> Any:
        """The first non-null value of the expression, polled; RuntimeError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.3)

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.ws.__exit__(None, None, None)
        finally:
            stop(self.proc)


# What each page must show once it has rendered (a JS expression: null until then, else details).
# Streamlit marks its root element data-test-script-state="running" while the script runs and
# "notRunning" once it is done (its "Running..." status widget does not show in headless Chromium).
_READY = """(() => {{
  const app = document.querySelector('[data-test-script-state]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return null;
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const header = [...main.querySelectorAll('h1, h2')].map(e => e.textContent).join(' | ');
  if (!header.includes({title})) return null;
  const found = {check};
  if (!found) return null;
  return {{header: header, found: found, text: main.innerText,
          exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText)}};
}})()"""
_GRID_CELLS = """(() => {{ const box = document.querySelector('{box} [data-testid="stDataFrame"]');
  const cells = box ? [...box.querySelectorAll('[data-testid^="glide-cell-"]')].map(e => e.textContent) : [];
  return cells.length ? cells : null; }})()"""
_COUNT = "(() => {{ const n = main.querySelectorAll('{selector}').length; return n >= {n} ? n : null; }})()"
PAGE_CHECKS: dict[str, tuple[str, str]] = {  # page -> (header text, the main element's check)
    "Leaderboard": ("Leaderboard", _GRID_CELLS.format(box=".st-key-leaderboard-table")),
    "Compare": ("Compare", _GRID_CELLS.format(box="")),
    "Drill-down": ("Drill-down", _COUNT.format(selector="video, [data-testid=\"stDataFrame\"]", n=2)),
    "Plots": ("Plots", _COUNT.format(selector="[data-testid=\"stVegaLiteChart\"] canvas, "
                                              "[data-testid=\"stVegaLiteChart\"] svg", n=3)),
    "Arena": ("Arena", _COUNT.format(selector="video", n=2)),
}


def page_ready(page: str) -> str:
    title, check = PAGE_CHECKS.get(page, (page.split("-")[0], "true"))
    return _READY.format(title=json.dumps(title), check=check)


def open_page(browser: Chromium, base_url: str, page: str, timeout: float = 90, **params: str) -> dict[str, Any]:
    """Load `?page=...&...`, wait until the page's main element is drawn, raise on an exception box."""
    from urllib.parse import urlencode

    browser.navigate(base_url + "?" + urlencode({"page": page, **params}))
    time.sleep(0.5)  # let the old page go before polling the new one
    deadline = time.monotonic() + timeout
    last: str | None = None
    while True:  # ready, and the same text twice in a row (charts and grids fill in after the script)
        try:
            found: dict[str, Any] = browser.wait_for(page_ready(page), max(1.0, deadline - time.monotonic()),
                                                     what=f"the {page} page")
        except RuntimeError as e:  # say what the page showed instead
            text = browser.evaluate("document.body.innerText") or ""
            raise RuntimeError(f"{e}; the page shows: {' '.join(text.split())[:800]}") from None
        if found["text"] == last or time.monotonic() > deadline:
            break
        last = found["text"]
        time.sleep(0.7)
    if found["exceptions"]:
        raise AssertionError(f"{page}: exception on the page: {found['exceptions'][0][:500]}")
    return found


@dataclass(frozen=True)
class View:
    """One screenshot: docs/img/dashboard-<stem>.png of `page` opened with URL `params`, scrolled so
    that the element whose text starts with `scroll_to` is at the top, in a 1400 x `height` window."""

    stem: str
    page: str
    params: dict[str, str]
    scroll_to: str | None = None
    height: int = VIEWPORT[1]


def shots(latest: dict[tuple[str, str], str]) -> list[View]:
    """The screenshots of docs/dashboard.md. Compare and Drill-down open named runs (URL state);
    the per-dimension view is on t2v-mini (t2v-core's dimension tags)."""
    run = {model: latest[("shapes-t2v", model)] for (_, model) in latest}
    return [
        View("leaderboard", "Leaderboard", {"suite": "shapes-t2v"}),
        View("leaderboard-tag-filter", "Leaderboard", {"suite": "t2v-mini", "tags": "camera"}),
        View("compare", "Compare", {"suite": "shapes-t2v",
                                    "runs": ",".join(run[m] for m in ("unet3d-base", "unet3d-large", "dit-small"))}),
        View("drilldown", "Drill-down", {"suite": "shapes-t2v", "run": run["dit-small"],
                                         "sample": "orange-triangle-up-right-s0"}, height=1250),
        View("plots", "Plots", {"suite": "shapes-t2v", "metric": "shapes_adherence"}),
        View("plots-dimensions", "Plots", {"suite": "t2v-mini", "metric": "clip_similarity"}, "Per tag"),
        View("plots-radar", "Plots", {"suite": "t2v-mini", "metric": "clip_similarity"}, "Each cell"),
        View("plots-ladder", "Plots", {"suite": "shapes-t2v", "metric": "fvd"}, "Sample-efficiency ladder"),
        View("arena", "Arena", {"suite": "shapes-t2v"}),
    ]


SCROLL_TO = """(() => {{ const h = [...document.querySelectorAll('[data-testid="stMain"] :is(h1, h2, h3, p)')]
  .find(e => e.textContent.trim().startsWith({text})); if (!h) return null;
  h.scrollIntoView({{block: 'start'}}); return true; }})()"""


def capture(db: Path, out: Path, work: Path, views: Sequence[View], settle: float = 2.0) -> list[Path]:
    """Serve db, open each view in one headless tab and save out/dashboard-<stem>.png."""
    saved = []
    with serve(db, work) as url:
        browser = Chromium(Path(tempfile.mkdtemp(prefix="chrome-profile-", dir=work)))
        try:
            for view in views:
                browser.resize(VIEWPORT[0], view.height)
                open_page(browser, url, view.page, **view.params)
                if view.scroll_to:
                    browser.wait_for(SCROLL_TO.format(text=json.dumps(view.scroll_to)), 30,
                                     what=f"the text {view.scroll_to!r}")
                time.sleep(settle)  # canvases (data grid, charts) and video frames paint after the DOM
                saved.append(browser.screenshot(out / f"dashboard-{view.stem}.png"))
                size = saved[-1].stat().st_size
                print(f"{view.stem:24s} -> {saved[-1]} ({size / 1e3:.0f} KB)"
                      + ("  (over the docs' 300 KB budget: a shorter window?)" if size > MAX_PNG_BYTES else ""))
        finally:
            browser.close()
    return saved


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the PNGs go")
    parser.add_argument("--keep", type=Path, default=None, help="build the database here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vdmbench-shots-") as tmp:
        root = args.keep or Path(tmp) / "results"
        t0 = time.perf_counter()
        db, latest = build_database(root)
        print(f"demo database {db} in {time.perf_counter() - t0:.1f} s")
        capture(db, args.out, Path(tmp), shots(latest))


if __name__ == "__main__":
    main()

"""Dashboard render times on a large results database.

Fills a database with hundreds of runs and 10,000 samples (direct inserts through Store, no
generation), then renders each page with streamlit's AppTest and prints the time per page rerun
(one session per page, set up first: AppTest's own setup is not a page's cost): "cold" right
after clearing Streamlit's data cache (what the first visitor after a write sees), "warm" the
median of three reruns. The target is under 1 s per warm page. Torch (only used to
write the one preview clip) runs on one thread: `torch.set_num_threads(1)`.

    python benchmarks/bench_dashboard.py [--models 25] [--runs-per-model 10] [--prompts 20] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from vdmbench.store.database import Store

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
# Prompt tags in t2v-core's dimension families, so the per-dimension views have work to do.
DIMENSIONS = ["people", "animals", "camera", "motion-fast", "style"]


def fill(db: Path, models: int, runs_per_model: int, prompts: int, seeds: int, votes: int) -> dict[str, int]:
    """Write the synthetic runs; every sample points at one real preview clip."""
    import torch

    from vdmbench.core.video import Video, write_preview

    torch.set_num_threads(1)

    rng = np.random.default_rng(0)
    store = Store(db)
    preview = db.parent / "previews" / "clip.mp4"
    frames = torch.from_numpy(rng.integers(0, 255, size=(8, 32, 32, 3), dtype=np.uint8))
    write_preview(Video(frames, fps=8.0), preview)
    start = datetime(2026, 1, 1)
    run_rows, sample_rows, metric_rows, run_metric_rows = [], [], [], []
    quality = rng.normal(0, 1, models)
    def suite_config(n_prompts: int, steps: int | None = None) -> str:
        config = {"task": "t2v", "prompts": [{"id": f"p{p:03d}", "text": f"prompt number {p}"} for p in range(n_prompts)],
                  "seeds": list(range(seeds))}
        return json.dumps(config | ({"steps": steps} if steps else {}))

    standard, quick = suite_config(prompts), suite_config(2, steps=3)
    for m in range(models):
        # Every model's history of full runs; the first five also tried a quick run (two prompts,
        # steps=3) last, which the leaderboard must keep apart (its own settings group).
        variants = [(k, "h", standard, prompts) for k in range(runs_per_model)]
        variants += [(runs_per_model, "h-quick", quick, 2)] if m < 5 else []
        for k, suite_hash, config, n_prompts in variants:
            run_id = f"run-{m:03d}-{k:03d}"
            finished = start + timedelta(days=k, minutes=m)
            run_rows.append({"run_id": run_id, "suite": "bench", "suite_version": 1, "suite_hash": suite_hash,
                             "model": f"model-{m:02d}", "model_config": "{}", "config_hash": f"c{m}",
                             "status": "finished", "started_at": finished - timedelta(minutes=5),
                             "finished_at": finished, "git_sha": f"{k:040x}", "env": "{}", "shard": None,
                             "suite_config": config})
            drift = 0.01 * k
            values = {"flicker": [], "clip_score": [], "warp_error": []}
            for p in range(n_prompts):
                for s in range(seeds):
                    sid = f"p{p:03d}-s{s}"
                    failed = rng.random() < 0.01
                    sample_rows.append({
                        "run_id": run_id, "sample_id": sid, "prompt_id": f"p{p:03d}",
                        "prompt": f"prompt number {p} about {DIMENSIONS[p % 5]}", "seed": s, "task": "t2v",
                        "path": "videos/missing.mp4", "sha256": "0" * 64, "gen_seconds": float(rng.gamma(2, 1)),
                        "status": "failed" if failed else "ok", "error": "boom" if failed else None,
                        "cache_key": f"{run_id}-{sid}", "preview_path": "previews/clip.mp4",
                        "tags": json.dumps([DIMENSIONS[p % 5], DIMENSIONS[(p + 1) % 5]]), "created_at": finished,
                    })
                    if failed:
                        continue
                    v = {"flicker": 0.95 + 0.01 * quality[m] + drift * 0.1 + rng.normal(0, 0.01),
                         "clip_score": 25 + 2 * quality[m] + rng.normal(0, 1),
                         "warp_error": 0.02 - 0.002 * quality[m] + abs(rng.normal(0, 0.002))}
                    for name, x in v.items():
                        metric_rows.append({"run_id": run_id, "sample_id": sid, "metric": name, "value": float(x)})
                        values[name].append(x)
            for name, xs in values.items():
                mean = float(np.mean(xs))
                run_metric_rows.append({
                    "run_id": run_id, "metric": name, "value": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.01,
                    "n": len(xs), "details": json.dumps({"higher_is_better": name != "warp_error", "per_sample": True,
                                                         "comparable": True})})
            fvd = float(300 - 40 * quality[m] + rng.normal(0, 5))
            ladder = [{"n": k, "value": fvd * (1 + 2 / k), "ci_low": None, "ci_high": None} for k in (8, 16, 32)]
            run_metric_rows.append({
                "run_id": run_id, "metric": "fvd", "value": fvd, "ci_low": None, "ci_high": None, "n": prompts * seeds,
                "details": json.dumps({"higher_is_better": False, "per_sample": False, "comparable": False,
                                       "ladder": ladder, "settled": True, "ladder_rule": "synthetic"})})
    vote_rows = []
    latest = [f"run-{m:03d}-{runs_per_model - 1:03d}" for m in range(models)]
    for i in range(votes):
        a, b = rng.choice(models, 2, replace=False)
        p = 1 / (1 + np.exp(quality[b] - quality[a]))
        vote_rows.append({"vote_id": f"v{i}", "suite": "bench", "prompt_id": "p000", "seed": 0,
                          "run_a": latest[a], "sample_a": "p000-s0", "model_a": f"model-{a:02d}",
                          "run_b": latest[b], "sample_b": "p000-s0", "model_b": f"model-{b:02d}",
                          "winner": "a" if rng.random() < p else "b", "voter": None, "created_at": start})
    tables = {"runs": run_rows, "samples": sample_rows, "sample_metrics": metric_rows,
              "run_metrics": run_metric_rows, "arena_votes": vote_rows}
    from vdmbench.store.schema import TABLES

    if "judge_votes" in TABLES:  # a judge's verdicts on the same pairs (the calibration view)
        tables["judge_votes"] = [{k: v for k, v in vote.items() if k != "voter"} | {
            "vote_id": f"j{i}", "judge": "bench-judge", "criterion": "overall", "forward": "A", "backward": "B"}
            for i, vote in enumerate(vote_rows)]
    store.load_frames({table: pd.DataFrame(rows) for table, rows in tables.items()})
    return {t: len(r) for t, r in tables.items()}


def session(db: Path, page: str, **state):
    """A browser session on a page, already run once: AppTest's own setup (it scans every installed
    package for Streamlit components, ~1 s here, once per AppTest) is not a page's cost."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["db_path"] = str(db)
    at.session_state["page"] = page
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return at


def render(at) -> float:
    """Seconds for one rerun of the page (what a user's click or reload costs)."""
    t0 = time.perf_counter()
    at.run()
    took = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{at.exception[0].value}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=25)
    parser.add_argument("--runs-per-model", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--votes", type=int, default=500)
    args = parser.parse_args()
    import streamlit as st

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vdmbench.duckdb"
        t0 = time.perf_counter()
        counts = fill(db, args.models, args.runs_per_model, args.prompts, args.seeds, args.votes)
        print(f"filled {db.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s: "
              + ", ".join(f"{n} {t}" for t, n in counts.items()))
        session(db, "Leaderboard")  # imports (streamlit, altair, pandas) are not a page's cost
        from vdmbench.dashboard.pages import PAGES

        cases = [(page, {}) for page in PAGES]  # every page the sidebar offers
        cases.insert(1, ("Leaderboard, tag filter", {"tags": ["people", "camera"]}))
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'page':26s} {'cold (s)':>9s} {'warm (s)':>9s}   target: warm < 1 s")
        worst = worst_warm = 0.0
        for name, state in cases:
            page = name.split(",")[0]
            at = session(db, page, **state)
            st.cache_data.clear()
            cold = render(at)
            warm = statistics.median(render(at) for _ in range(3))
            worst = max(worst, cold, warm)
            worst_warm = max(worst_warm, warm)
            print(f"{name:26s} {cold:9.2f} {warm:9.2f}   {'ok' if warm < 1 else 'SLOW'}")
        print(f"slowest render: {worst:.2f} s; slowest warm render: {worst_warm:.2f} s")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

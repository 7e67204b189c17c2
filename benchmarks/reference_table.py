"""The reference-model table, measured with `vdmbench run` (prints Markdown; README material).

    python benchmarks/reference_table.py --results /tmp/reftable            # run everything, then print
    python benchmarks/reference_table.py --results /tmp/reftable --print-only

Runs each (suite, model) pair below through the real CLI into one results folder (cached samples
are not regenerated, so an interrupted table resumes), then reads the run metrics from its
DuckDB file. `--seeds 0` halves the work (one seed per prompt).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

MODELS = ["shapes-ground-truth", "reference-unet3d", "reference-unet3d-undertrained",
          "reference-temporal-attention", "reference-temporal-attention-undertrained",
          "reference-cascade", "reference-random"]
PLAN = {
    "shapes-t2v": MODELS,
    "shapes-prediction": MODELS[:5] + ["baseline-repeat-last"],
    "shapes-interpolation": MODELS[:5] + ["baseline-repeat-last", "baseline-linear-blend"],
    "shapes-editing": MODELS[:5],
}
COLUMNS = {
    "shapes-t2v": ["shapes_color", "shapes_shape", "shapes_direction", "shapes_adherence", "fvd", "flicker",
                   "motion_mean"],
    "shapes-prediction": ["psnr", "ssim", "shapes_adherence"],
    "shapes-interpolation": ["psnr", "ssim", "shapes_adherence"],
    "shapes-editing": ["edit_score", "edit_adherence", "edit_preservation_psnr"],
}


def run(suite: str, model: str, results: Path, seeds: str | None, threads: int) -> int:
    cmd = ["vdmbench", "run", f"suite={suite}", f"model={model}", f"results_dir={results}", "progress=false"]
    if seeds:
        cmd.append(f"suite.seeds=[{seeds}]")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode


def table(db: Path) -> str:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.sql(
        "SELECT r.suite, r.model, m.metric, m.value, m.n, r.started_at FROM runs r "
        "JOIN run_metrics m USING (run_id) WHERE r.status = 'finished' ORDER BY r.started_at"
    ).fetchall()
    gen = dict(con.sql(
        "SELECT r.suite || '|' || r.model, avg(s.gen_seconds) FROM runs r JOIN samples s USING (run_id) "
        "WHERE s.gen_seconds IS NOT NULL GROUP BY 1").fetchall())
    latest: dict[tuple[str, str], dict[str, float]] = {}
    for suite, model, metric, value, n, _ in rows:  # the latest run of each pair wins
        latest.setdefault((suite, model), {})[metric] = value
        latest[(suite, model)]["clips"] = n
    out = []
    for suite, models in PLAN.items():
        cols = COLUMNS[suite]
        have = [m for m in models if (suite, m) in latest]
        if not have:
            continue
        cols = [c for c in cols if any(c in latest[(suite, m)] for m in have)]
        out.append(f"\n### {suite}\n")
        out.append("| model | " + " | ".join(cols) + " | s/clip | clips |")
        out.append("|---|" + "---|" * (len(cols) + 2))
        for m in have:
            v = latest[(suite, m)]
            cells = [f"{v[c]:.3f}" if c in v else "" for c in cols]
            g = gen.get(f"{suite}|{m}")
            cells += [f"{g:.2f}" if g is not None else "", str(int(v.get("clips", 0)))]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True)
    p.add_argument("--seeds", default=None, help="e.g. 0 (one seed per prompt)")
    p.add_argument("--suites", nargs="+", default=list(PLAN))
    p.add_argument("--models", nargs="+", default=None, help="only these models")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--print-only", action="store_true")
    args = p.parse_args(argv)
    results = Path(args.results)
    if not args.print_only:
        for suite in args.suites:
            for model in PLAN[suite]:
                if args.models and model not in args.models:
                    continue
                if run(suite, model, results, args.seeds, args.threads):
                    print(f"! {suite} {model} failed", file=sys.stderr)
    print(table(results / "vdmbench.duckdb"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibration of `vdmbench gate`: false-alarm rate and detection rate on real models.

    python benchmarks/bench_gate_calibration.py                       # reference models, smoke suite
    python benchmarks/bench_gate_calibration.py --trials 20 --set steps=10 --out calib.json
    python benchmarks/bench_gate_calibration.py --model M --worse W --suite S --policy P

False alarms: the same checkpoint (`--model`) against itself with different seeds. Run w uses
the suite's seeds shifted to the w-th window of fresh seeds, so no two runs share a clip; trial k
gates run k (baseline) against run k+1 (candidate), forced across the seed difference and paired
by seed position. Any metric judged a regression in a trial is a false alarm of that trial.
Target: <= 5% of trials.

Detection: `--worse` (the undertrained checkpoint) on the same seeds as baseline run k: the gate
must fail. Target: >= 95% of trials.

Chained baselines (run k is the candidate of trial k-1 and the baseline of trial k) need T + 1
runs of the model instead of 2T; every trial is still two independent runs. `--design pairs`
uses fresh runs for every trial. Clips are cached by (model config, request), so a repeated
invocation only re-scores. Prints the figures; `--out` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from vdmbench.adapters import load_model_config
from vdmbench.config.suite import load_suite, parse_suite
from vdmbench.gate.baseline import RunData, from_store
from vdmbench.gate.compare import GateResult, compare_runs
from vdmbench.gate.policy import Policy, load_policy
from vdmbench.run.runner import Runner, RunOptions


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n (sensible at 0/n and n/n, unlike the normal one)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def suite_window(suite: dict[str, Any], window: int) -> dict[str, Any]:
    """The suite with its seeds replaced by the `window`-th block of as many fresh seeds."""
    n = len(suite["seeds"])
    return {**suite, "seeds": list(range(window * n, (window + 1) * n))}


def run_once(suite: dict[str, Any], model: dict[str, Any], results_dir: Path, device: str) -> RunData:
    options = RunOptions(results_dir=results_dir, progress=False, preview=False, device=device, resume=False)
    runner = Runner(parse_suite(suite, source=f"suite {suite['name']}"), model, options)
    summary = runner.run()
    return from_store(runner.store, summary.run_id)


def regressions(result: GateResult) -> list[str]:
    return [m.metric for m in result.metrics if m.verdict == "regression"]


def calibrate(
    suite: dict[str, Any],
    model: dict[str, Any],
    worse: dict[str, Any] | None,
    policy: Policy,
    *,
    trials: int,
    results_dir: Path,
    design: str = "chain",
    device: str = "cpu",
    log=print,
) -> dict[str, Any]:
    """Run the trials and return the figures (see the module docstring)."""
    t0 = time.perf_counter()
    runs: dict[int, RunData] = {}

    def good(window: int) -> RunData:
        if window not in runs:
            runs[window] = run_once(suite_window(suite, window), model, results_dir, device)
        return runs[window]

    false_alarms, detected, rows = 0, 0, []
    per_metric_fa: dict[str, int] = {}
    inconclusive_null = 0
    for k in range(trials):
        base_w, cand_w = (k, k + 1) if design == "chain" else (2 * k, 2 * k + 1)
        base = good(base_w)
        null = compare_runs(base, good(cand_w), policy, force=True)
        fa = regressions(null)
        false_alarms += bool(fa)
        inconclusive_null += sum(m.verdict == "inconclusive" for m in null.metrics)
        for m in fa:
            per_metric_fa[m] = per_metric_fa.get(m, 0) + 1
        row: dict[str, Any] = {"trial": k, "baseline_seeds": suite_window(suite, base_w)["seeds"],
                               "null_verdicts": {m.metric: m.verdict for m in null.metrics}}
        if worse is not None:
            bad = run_once(suite_window(suite, base_w), worse, results_dir, device)
            alt = compare_runs(base, bad, policy)
            hit = bool([m for m in alt.metrics if m.verdict in policy.fail_on])
            detected += hit
            row["worse_verdicts"] = {m.metric: m.verdict for m in alt.metrics}
            row["worse_delta"] = {m.metric: m.delta for m in alt.metrics}
        rows.append(row)
        log(f"trial {k + 1}/{trials}: false alarm {'YES ' + ','.join(fa) if fa else 'no'}"
            + (f"; worse model {'detected' if row.get('worse_verdicts') and hit else 'MISSED'}" if worse else "")
            + f"  ({time.perf_counter() - t0:.0f} s)")
    out: dict[str, Any] = {
        "suite": suite["name"], "model": model["name"], "worse": worse["name"] if worse else None,
        "policy": policy.name, "alpha": policy.alpha, "correction": policy.correction, "design": design,
        "trials": trials, "samples_per_run": len(suite["prompts"]) * len(suite["seeds"]),
        "false_alarms": false_alarms, "false_alarm_rate": false_alarms / trials,
        "false_alarm_rate_ci95": wilson(false_alarms, trials), "false_alarms_by_metric": per_metric_fa,
        "inconclusive_verdicts_same_model": inconclusive_null,
        "seconds": round(time.perf_counter() - t0, 1), "trials_detail": rows,
    }
    if worse is not None:
        out.update(detected=detected, detection_rate=detected / trials, detection_rate_ci95=wilson(detected, trials))
    return out


def _apply_sets(suite: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        suite = {**suite, key.removeprefix("suite."): yaml.safe_load(value)}
    return suite


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="smoke", help="suite name or YAML path (default: smoke)")
    p.add_argument("--model", default="reference-unet3d", help="model name or adapter YAML path")
    p.add_argument("--worse", default="reference-unet3d-undertrained", help="known-worse model ('' to skip)")
    p.add_argument("--policy", default=None, help="gate policy name or file (default: the suite's own)")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--design", choices=["chain", "pairs"], default="chain")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="suite override, e.g. steps=10")
    p.add_argument("--results-dir", type=Path, default=Path("results/gate-calibration"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="write the figures as JSON")
    args = p.parse_args(argv)

    suite = _apply_sets(load_suite(args.suite).to_dict(), args.set)
    model = load_model_config(args.model)
    worse = load_model_config(args.worse) if args.worse else None
    policy = load_policy(args.policy, suite["name"])
    print(f"gate calibration: {model['name']} vs itself (new seeds) and vs {worse['name'] if worse else '-'}; "
          f"suite {suite['name']} ({len(suite['prompts'])} prompts x {len(suite['seeds'])} seeds), policy "
          f"{policy.name}, {args.trials} trials ({args.design})", flush=True)
    res = calibrate(suite, model, worse, policy, trials=args.trials, results_dir=args.results_dir,
                    design=args.design, device=args.device, log=lambda s: print(s, flush=True))
    lo, hi = res["false_alarm_rate_ci95"]
    print(f"false-alarm rate: {res['false_alarms']}/{res['trials']} = {res['false_alarm_rate']:.1%} "
          f"(95% CI {lo:.1%}-{hi:.1%}; target <= 5%); by metric: {res['false_alarms_by_metric'] or 'none'}")
    if worse is not None:
        lo, hi = res["detection_rate_ci95"]
        print(f"detection rate: {res['detected']}/{res['trials']} = {res['detection_rate']:.1%} "
              f"(95% CI {lo:.1%}-{hi:.1%}; target >= 95%)")
    print(f"time: {res['seconds']:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2, default=str))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

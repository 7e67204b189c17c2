"""Terminal output: the run plan, a run's summary and the leaderboard table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.table import Table

from vdmbench.core.formatting import NOT_COMPARABLE, format_number, make_console
from vdmbench.store import LeaderboardRow, Store

if TYPE_CHECKING:
    from vdmbench.run.runner import Runner, RunSummary

def leaderboard_table(rows: Sequence[LeaderboardRow]) -> pd.DataFrame:
    """Long leaderboard rows -> one row per (suite, model), one column per metric: 'v ± half-CI'."""
    cells: dict[tuple, dict[str, str]] = {}
    for r in rows:
        key = (r.suite, r.model, r.run_id)
        cell = format_number(r.value)
        if r.ci_low is not None and r.ci_high is not None and not pd.isna(r.ci_low):
            cell += f" ± {format_number((r.ci_high - r.ci_low) / 2, 2)}"
        if r.details.get("comparable") is False:
            cell += " *"
        cells.setdefault(key, {})[r.metric] = cell
    records = [{"suite": k[0], "model": k[1], "run": k[2][:22], **v} for k, v in cells.items()]
    return pd.DataFrame.from_records(records)


def directions(rows: Sequence[LeaderboardRow]) -> dict[str, bool]:
    out = {}
    for r in rows:
        if "higher_is_better" in r.details:
            out[r.metric] = bool(r.details["higher_is_better"])
    return out


def print_leaderboard(store: Store, suite: str | None = None, console: Console | None = None) -> int:
    console = console or make_console()
    rows = store.leaderboard(suite)
    if not rows:
        console.print(f"No finished runs{' for suite ' + suite if suite else ''} in {store.path}.")
        return 0
    ways = directions(rows)
    by_suite: dict[str, list[LeaderboardRow]] = {}
    for r in rows:
        by_suite.setdefault(r.suite, []).append(r)
    for suite_name, part in sorted(by_suite.items()):
        wide = leaderboard_table(part)
        metrics = [c for c in wide.columns if c not in ("suite", "model", "run")]
        table = Table(title=f"vdmbench leaderboard — suite {suite_name} (v{part[0].suite_version})")
        table.add_column("model", style="bold")
        for m in metrics:
            arrow = "" if m not in ways else " ↑" if ways[m] else " ↓"
            table.add_column(m + arrow, justify="right")
        table.add_column("run")
        for rec in wide.to_dict("records"):
            table.add_row(rec["model"], *[str(rec.get(m, "-")) if not pd.isna(rec.get(m)) else "-" for m in metrics], rec["run"])
        console.print(table)
    if any(r.details.get("comparable") is False for r in rows):
        console.print(f"* {NOT_COMPARABLE} (random-weight feature extractor)")
    console.print("↑ higher is better, ↓ lower is better; ± is half the 95% bootstrap CI.")
    return len(rows)


SHOWN_FAILURES = 10  # a summary lists this many failed samples, then "and K more"


def print_run_summary(runner: Runner, summary: RunSummary, console: Console | None = None) -> None:
    console = console or make_console()
    verb = "resumed" if summary.resumed else "finished" if summary.status == "finished" else "failed"
    console.print(
        f"run {summary.run_id} {verb}: {summary.ok} samples ok, {summary.failed} failed "
        f"({summary.generated} generated, {summary.cached} from cache; {summary.threads} CPU threads) -> {summary.db}"
    )
    failed = runner.store.failed_samples(summary.run_id) if summary.failed else []
    for sample_id, error in failed[:SHOWN_FAILURES]:
        console.print(f"  failed {sample_id}: {error}", markup=False)
    if len(failed) > SHOWN_FAILURES:
        console.print(f"  ... and {len(failed) - SHOWN_FAILURES} more (`vdmbench export {summary.run_id}` has every error)")
    print_ladder_warnings(summary.metrics, console)
    print_leaderboard(runner.store, runner.suite.name, console)


def print_ladder_warnings(rows: Sequence[dict], console: Console) -> None:
    """A set metric whose value still moved at the last doubling of clips (vdmbench.core.ladder)."""
    rules = []
    for row in rows:
        details = row.get("details") or {}
        if details.get("settled") is False and details.get("ladder_warning"):
            console.print(f"  warning: {details['ladder_warning']}", markup=False)
            rules.append(str(details.get("ladder_rule", "")))
    for rule in dict.fromkeys(r for r in rules if r):  # once, however many metrics warned
        console.print(f"  (rule: {rule})", markup=False)


def print_plan(runner: Runner, console: Console | None = None) -> None:
    """What a run would do, without generating anything."""
    from vdmbench.adapters import adapter_class
    from vdmbench.run.plan import plan_samples

    console = console or make_console()
    suite, cfg = runner.suite, runner.model_config
    runner.build_metrics()  # what a real run checks first: metric names, every option, the reference set
    planned = plan_samples(suite, cfg, runner.options.shard)
    hits = runner.store.lookup_generations([p.cache_key for p in planned]) if runner.options.cache else {}
    cached = sum(1 for p in planned if p.cache_key in hits)
    paid = bool(cfg.get("params", {}).get("paid", getattr(adapter_class(cfg["adapter"]), "paid_by_default", False)))
    console.print(f"plan: suite {suite.name} v{suite.version} ({suite.hash}) on model {cfg['name']}")
    console.print(f"  task {suite.task}; {len(suite.prompts)} prompts x seeds -> {len(planned)} samples"
                  f"{f' (shard {runner.options.shard[0]}/{runner.options.shard[1]})' if runner.options.shard else ''}")
    console.print(f"  clips: {suite.num_frames} frames, {suite.width}x{suite.height}, {suite.fps:g} fps")
    console.print(f"  already generated (cache): {cached}; to generate: {len(planned) - cached}"
                  + (f" (paid API calls: {len(planned) - cached})" if paid else ""))
    console.print(f"  metrics: {', '.join(m if isinstance(m, str) else m['name'] for m in suite.metrics)}")
    console.print(f"  database: {runner.options.db_path}")

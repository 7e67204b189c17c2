"""`vdmbench run` as a Hydra application: config groups, overrides, multirun and launchers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from vdmbench.adapters import validate_adapter_config
from vdmbench.cli.terminal import print_plan, print_run_summary
from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import VdmbenchError
from vdmbench.run.failures import failure_budget_exceeded, parse_max_failed
from vdmbench.run.options import RunOptions, parse_shard
from vdmbench.run.runner import Runner, RunSummary


def options_from_config(cfg: DictConfig, overrides: list[str]) -> RunOptions:
    return RunOptions(
        results_dir=Path(cfg.results_dir),
        db=Path(cfg.db) if cfg.db else None,
        device=str(cfg.device),
        batch_size=int(cfg.batch_size),
        workers=int(cfg.workers),
        precision=str(cfg.precision),
        shard=parse_shard(cfg.shard),
        resume=bool(cfg.resume),
        use_cache=bool(cfg.cache),
        preview=bool(cfg.preview),
        run_id=str(cfg.run_id) if cfg.run_id else None,
        progress=bool(cfg.progress),
        timeout=float(cfg.timeout) if cfg.timeout else None,
        flush_seconds=float(cfg.flush_seconds),
        background_writes=bool(cfg.get("background_writes", True)),
        threads=None if str(cfg.get("threads", "auto")) == "auto" else cfg.threads,
        max_failed=parse_max_failed(cfg.get("max_failed")),
        retry_failed=bool(cfg.get("retry_failed", False)),
        overrides=overrides,
    )


class RunFailed(CompactHydraException):
    """A multirun job whose samples failed: Hydra finishes the other jobs, then prints this one line
    and exits 1 (a single run exits at once)."""


def failure_message(runner: Runner, summary: RunSummary) -> str | None:
    """Why this run must exit non-zero, or None: no sample succeeded, or more failed than `max_failed`."""
    total = summary.ok + summary.failed
    if summary.ok == 0:
        return (f"run {summary.run_id}: no sample succeeded ({summary.failed} failed; errors above); "
                "fix the cause and run the same command again to retry them")
    if failure_budget_exceeded(summary.failed, total, runner.options.max_failed):
        return (f"run {summary.run_id}: {summary.failed} of {total} samples failed, more than "
                f"max_failed={runner.options.max_failed}")
    return None


def runner_from_config(cfg: DictConfig, overrides: list[str]) -> Runner:
    suite_dict: Any = OmegaConf.to_container(cfg.suite, resolve=True)
    model_dict: Any = OmegaConf.to_container(cfg.model, resolve=True)
    suite = parse_suite(suite_dict, source=f"suite {suite_dict.get('name', '?')}")
    adapter_config = validate_adapter_config(model_dict, f"model {model_dict.get('name', '?')}")
    return Runner(suite, adapter_config, options_from_config(cfg, overrides))


@hydra.main(config_path="conf", config_name="run", version_base="1.3")
def hydra_run(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    try:
        runner = runner_from_config(cfg, overrides)
        if cfg.dry_run:
            print_plan(runner)
            return
        summary = runner.run()
        print_run_summary(runner, summary)
    except VdmbenchError as e:
        print(f"vdmbench: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    message = failure_message(runner, summary)
    if message is None:
        return
    from hydra.types import RunMode

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        raise RunFailed(f"vdmbench: error: {message}")
    print(f"vdmbench: error: {message}", file=sys.stderr)
    raise SystemExit(1)

"""`vdmbench run` as a Hydra application: config groups, overrides, multirun and launchers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from vdmbench.cli.held_prompts import HeldPrompts
from vdmbench.cli.terminal import print_plan, print_run_summary
from vdmbench.config.model import validate_model_config
from vdmbench.config.suite import parse_suite
from vdmbench.core.errors import VdmbenchError
from vdmbench.run.failures import failure_budget_exceeded
from vdmbench.run.options import RunOptions, config_defaults, options_from_mapping
from vdmbench.run.runner import Runner, RunSummary

# The run options' keys and defaults, for conf/run.yaml's defaults list (`- run_options`): defined
# once, in RunOptions. Plain values, not the dataclass as a typed structured config: OmegaConf
# would then check `threads=abc` itself, in its own words, before `options_from_config` can say
# "threads must be 'auto' or a whole number >= 1"; and `threads: auto`, `shard: 0/4` and
# `max_failed: 10%` are text that becomes typed values only there.
ConfigStore.instance().store(name="run_options", node=config_defaults())


def options_from_config(cfg: DictConfig, overrides: list[str]) -> RunOptions:
    """The run options of a composed config (type errors are one-line ConfigErrors naming the key)."""
    values: Any = OmegaConf.to_container(cfg, resolve=True)
    return options_from_mapping(values, overrides)


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


def runner_from_config(cfg: DictConfig, overrides: list[str], held: HeldPrompts | None = None) -> Runner:
    suite_dict: Any = OmegaConf.to_container(cfg.suite, resolve=True)
    if held is not None:
        suite_dict = held.restore(suite_dict)
    if cfg.get("judge") is not None:  # `+judge=NAME` (conf/judge/NAME.yaml)
        suite_dict["metrics"] = with_judge(suite_dict.get("metrics") or [], OmegaConf.to_container(cfg.judge, resolve=True))
    model_dict: Any = OmegaConf.to_container(cfg.model, resolve=True)
    suite = parse_suite(suite_dict, source=f"suite {suite_dict.get('name', '?')}")
    model_config = validate_model_config(model_dict, f"model {model_dict.get('name', '?')}")
    return Runner(suite, model_config, options_from_config(cfg, overrides))


def with_judge(metrics: list[Any], judge: Any) -> list[Any]:
    """The suite's metrics with `judge` as the judge of every metric that takes one and names none,
    so `+judge=NAME` points a suite's judge metrics at a server (or a local model) without editing it."""
    import inspect

    from vdmbench.metrics import metric_class, metric_spec

    out = []
    for spec in metrics:
        name, options = metric_spec(spec)
        takes_judge = "judge" in inspect.signature(metric_class(name).__init__).parameters
        out.append({"name": name, **options, "judge": judge} if takes_judge and "judge" not in options else spec)
    return out


def run_job(cfg: DictConfig, held: HeldPrompts | None = None) -> None:
    """One `vdmbench run` job of a composed config (a multirun calls it once per job)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    try:
        runner = runner_from_config(cfg, overrides, held)
        if runner.options.dry_run:
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


def make_hydra_run(held: HeldPrompts | None = None) -> Callable[[], None]:
    """The Hydra application (it reads sys.argv); `held` are the prompt lists to put back into
    the composed suites (bound here, not kept in a module global)."""

    @hydra.main(config_path="conf", config_name="run", version_base="1.3")
    def hydra_run(cfg: DictConfig) -> None:
        run_job(cfg, held)

    return hydra_run  # hydra.main's wrapper is called without the config

"""The options of one run (`vdmbench run KEY=VALUE`): where results go, device, threads,
batching, shards, resume, cache, failure budget.

They are defined once, here: each field of `RunOptions` carries its default and a one-line
description. From them come the Hydra config's values (`config_defaults()`, registered by
cli/run_app.py), the conversion of a composed config back into RunOptions with one-line errors
(`options_from_mapping`), and the option lines of `vdmbench run --help` (`run_option_specs()`).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.core.resources import resolve_threads
from vdmbench.run.failures import parse_max_failed

__all__ = ["OptionSpec", "RunOptions", "config_defaults", "options_from_mapping", "parse_shard",
           "run_option_specs"]


def about(help: str, *, usage: str | None = None, key: str | None = None, shown: str | None = None,
          parse: Callable[[Any], Any] | None = None, config: Any = MISSING, minimum: float | None = None,
          choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The metadata that makes a RunOptions field a key of the run config.

    help: one line for `vdmbench run --help`; usage: the value's form there (default: from the
    type); key: its name in the config if not the field's; shown: the default as --help says it;
    parse: converts the config's value (default: a type check from the annotation, with `minimum`
    or `choices`); config: the default as the config writes it where that differs (`threads: auto`
    for None)."""
    return {"help": help, "usage": usage, "key": key, "shown": shown, "parse": parse, "config": config,
            "minimum": minimum, "choices": choices}


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value in (None, "", "null"):
        return None
    try:
        i, n = (int(x) for x in str(value).split("/"))
    except ValueError as e:
        raise ConfigError(f"shard must look like I/N (e.g. 0/4), got {value!r}") from e
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard {value!r}: need 0 <= I < N")
    return i, n


def _threads(value: Any) -> int | None:
    """`threads=auto` stays None (resolved when the run starts, on the machine that runs it)."""
    if value in (None, "", "auto"):
        return None
    return resolve_threads(value)


@dataclass
class RunOptions:
    """What a run may be told. Every field but `overrides` is a key of the run config: its default
    here is the config's default, its `about(...)` the line of `vdmbench run --help`."""

    results_dir: Path = field(default=DEFAULT_RESULTS_DIR, metadata=about(
        "where videos, previews, caches and the database go", usage="DIR"))
    db: Path | None = field(default=None, metadata=about(
        "the database file", usage="PATH", shown="RESULTS_DIR/vdmbench.duckdb"))
    device: str = field(default="auto", metadata=about(
        "where models and metrics run (auto: the first GPU, else the CPU)", usage="auto|cpu|cuda[:N]"))
    batch_size: int = field(default=8, metadata=about("clips per scoring batch", usage="N", minimum=1))
    workers: int = field(default=2, metadata=about(
        "decoder processes that read stored clips while metrics compute", usage="N", minimum=0))
    precision: str = field(default="fp32", metadata=about(
        "number format of the feature extractors", choices=("fp32", "bf16", "fp16")))
    shard: tuple[int, int] | None = field(default=None, metadata=about(  # (index, count)
        "only every N-th sample, starting at I (combine the shards with `vdmbench merge`)", usage="I/N",
        parse=parse_shard))
    resume: bool = field(default=True, metadata=about(
        "continue the newest unfinished run of the same suite and model config"))
    cache: bool = field(default=True, metadata=about(
        "reuse clips already generated for the same model config and request"))
    preview: bool = field(default=True, metadata=about("also write browser-playable previews for the dashboard"))
    run_id: str | None = field(default=None, metadata=about(
        "force a run id (resumes that run if it exists)", usage="ID"))
    dry_run: bool = field(default=False, metadata=about(
        "print the plan (samples, cached clips, paid API calls); generate nothing"))
    progress: bool = field(default=True, metadata=about("show a progress bar while generating and scoring"))
    # Finished samples are written to the database at most this often, in one transaction: each
    # write (attach, insert, commit, checkpoint, plus syncing the files) costs ~10-40 ms, too much
    # per clip for a fast model. A kill loses at most this much finished work (its clips are then
    # regenerated, never duplicated).
    flush_seconds: float = field(default=2.0, metadata=about(
        "write finished samples to the database at most this often (0: every batch)", usage="SECONDS", minimum=0))
    # Write files and database rows in a background thread, overlapped with the next generate()
    # (off: the main thread writes between batches; the results are the same). Measured on the
    # CPU reference model: never slower, and free where generation leaves a core idle or waits on
    # a GPU or a server (benchmarks/bench_runner.py overhead --variants background serial).
    background_writes: bool = field(default=True, metadata=about(
        "write files and rows in a background thread while the next batch generates"))
    timeout: float | None = field(default=None, metadata=about(
        "seconds per request before a hung backend call is recorded as failed (null or 0: no limit)",
        usage="SECONDS", minimum=0))
    # torch intra-op threads while the run works: None = auto (every usable core but one; see
    # vdmbench/core/resources.py). Recorded in runs.env and replayed by `vdmbench reproduce`.
    threads: int | None = field(default=None, metadata=about(
        "torch CPU threads (auto: every usable core but one); stored with the run", usage="auto|N",
        parse=_threads, config="auto"))
    # More failed samples than this (a count, or a fraction of the samples) and `vdmbench run`
    # exits 1; a run in which no sample succeeded always does (see vdmbench/run/failures.py).
    max_failed: int | float | None = field(default=None, metadata=about(
        "exit 1 when more samples fail than this: a count (3), a fraction (0.1) or a percentage ('10%')",
        usage="N|F|P%", parse=parse_max_failed))
    # On resume, generate the failed samples of the run again (a run where every sample failed
    # is always retried: its failures were the environment's, e.g. a missing package).
    retry_failed: bool = field(default=False, metadata=about("on resume, generate the run's failed samples again"))
    # Not a config key: the command line's overrides, recorded in the manifest.
    overrides: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else Path(self.results_dir) / "vdmbench.duckdb"


@dataclass(frozen=True)
class OptionSpec:
    """One key of the run config, derived from a RunOptions field."""

    key: str  # in the config and on the command line
    attr: str  # the RunOptions field
    default: Any  # as written in the config
    help: str
    usage: str  # the value's form, e.g. `DIR`, `true|false`
    shown: str  # the default as --help says it
    parse: Callable[[Any], Any]  # config value -> RunOptions value; ConfigError `KEY must be ...`


def run_option_specs() -> list[OptionSpec]:
    """The keys of the run config, in RunOptions' order (every field but `overrides`)."""
    hints = typing.get_type_hints(RunOptions)
    specs = []
    for f in fields(RunOptions):
        meta = f.metadata
        if "help" not in meta:
            continue
        key = meta["key"] or f.name
        default = f.default
        config = _config_value(default) if meta["config"] is MISSING else meta["config"]
        parse = meta["parse"] or _type_check(key, hints[f.name], meta["minimum"], meta["choices"])
        usage = meta["usage"] or _usage(hints[f.name], meta["choices"])
        shown = meta["shown"] or ("null" if config is None else _config_text(config))
        specs.append(OptionSpec(key, f.name, config, meta["help"], usage, shown, parse))
    return specs


def config_defaults() -> dict[str, Any]:
    """The run config's keys and default values, as the Hydra config holds them."""
    return {s.key: s.default for s in run_option_specs()}


def options_from_mapping(values: Mapping[str, Any], overrides: list[str] | None = None) -> RunOptions:
    """RunOptions from a composed run config (keys of `config_defaults()`; others are ignored, e.g.
    `suite` and `model`); a value of the wrong type is a one-line ConfigError naming the key."""
    kwargs = {s.attr: s.parse(values[s.key]) for s in run_option_specs() if s.key in values}
    return RunOptions(**kwargs, overrides=list(overrides or []))


def _config_value(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _config_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _parts(annotation: Any) -> tuple[list[Any], bool]:
    """(the non-None types of an annotation, whether None is allowed)."""
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        args = list(typing.get_args(annotation))
        return [a for a in args if a is not NoneType], NoneType in args
    return [annotation], False


def _usage(annotation: Any, choices: tuple[str, ...] | None) -> str:
    if choices:
        return "|".join(choices)
    kinds, _ = _parts(annotation)
    return {bool: "true|false", int: "N", float: "NUMBER", str: "TEXT", Path: "PATH"}.get(kinds[0], "VALUE")


def _type_check(key: str, annotation: Any, minimum: float | None, choices: tuple[str, ...] | None,
                ) -> Callable[[Any], Any]:
    """A converter for a config value of this annotation (bool, int, float, str, Path, optional).
    Numbers and booleans may come as text (an `${oc.env:...}` interpolation gives a string)."""
    kinds, optional = _parts(annotation)
    kind = kinds[0]
    bound = "" if minimum is None else f" >= {minimum:g}"
    what = {bool: "true or false", int: f"a whole number{bound}", float: f"a finite number{bound}",
            str: "a string", Path: "a path"}[kind]
    if choices:
        what = f"one of {', '.join(choices)}"
    if optional:
        what += " or null"

    def bad(value: Any) -> ConfigError:
        return ConfigError(f"{key} must be {what}, got {value!r}")

    def parse(value: Any) -> Any:
        if value is None or (optional and value == ""):
            if optional:
                return None
            raise bad(value)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise bad(value)
        if kind in (int, float):
            if isinstance(value, bool):
                raise bad(value)
            number: int | float
            try:
                number = kind(value.strip()) if isinstance(value, str) else value
            except ValueError:
                raise bad(value) from None
            if kind is int and not isinstance(number, int):
                raise bad(value)
            if not isinstance(number, (int, float)) or not math.isfinite(number):
                raise bad(value)
            if minimum is not None and number < minimum:
                raise bad(value)
            return kind(number)
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Path)):
            raise bad(value)
        text = str(value)
        if choices and text not in choices:
            raise bad(value)
        return Path(text) if kind is Path else text

    return parse

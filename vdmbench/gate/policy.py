"""Gate policies: which metrics decide a release, in which direction, with what tolerance.

A policy is a YAML file in `suites/gates/` (named on the command line) or anywhere (by path):

    name: smoke
    alpha: 0.05            # false-alarm level for the whole policy (all metrics together)
    correction: holm       # holm (family-wise) | bh (false discovery rate) | bonferroni | none
    n_boot: 4000           # bootstrap replicates
    confidence: 0.95       # of the printed intervals
    resample: crossed      # crossed: prompts and seeds drawn independently (default; samples that
                           # share a seed share its noise) | pairs: (prompt, seed) pairs | prompts
    fail_on: [regression]  # add `inconclusive` to also fail when noise hides a possible regression
    other_metrics: ignore  # metrics both runs have but the policy does not list: ignore | gate
    defaults: {min_samples: 4, statistic: mean}
    metrics:
      shapes_adherence: {direction: higher, abs: 0.10, min_samples: 8}
      flicker: {rel: 0.02}
      fvd: {direction: lower, rel: 0.10, required: false}

Per metric: `direction` higher | lower | auto (auto: what the metric stored), `abs` and `rel`
tolerances (a change within max(abs, rel * |baseline value|) is tolerated), `min_samples` (pairs
needed for a verdict), `statistic` mean | median (per-sample metrics), `required` (a missing
metric is a configuration error when true).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import suites_dir
from vdmbench.core.stats import CORRECTIONS, STATISTICS

VERDICTS = ("pass", "regression", "improvement", "inconclusive")
_TOP_KEYS = {"name", "description", "suite", "alpha", "correction", "n_boot", "confidence", "resample",
             "fail_on", "other_metrics", "defaults", "metrics", "seed"}
_METRIC_KEYS = {"direction", "abs", "rel", "min_samples", "statistic", "required"}


@dataclass(frozen=True)
class MetricRule:
    direction: str = "auto"  # higher | lower | auto
    abs: float = 0.0
    rel: float = 0.0
    min_samples: int = 2
    statistic: str = "mean"
    required: bool = True

    def tolerance(self, baseline_value: float) -> float:
        """The change that is tolerated, in the metric's units (>= 0)."""
        return max(self.abs, self.rel * abs(baseline_value))


@dataclass(frozen=True)
class Policy:
    name: str = "default"
    description: str = ""
    suite: str | None = None
    alpha: float = 0.05
    correction: str = "holm"
    n_boot: int = 4000
    confidence: float = 0.95
    resample: str = "crossed"
    fail_on: tuple[str, ...] = ("regression",)
    other_metrics: str = "gate"
    seed: int = 0
    defaults: MetricRule = MetricRule()
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    source: str = "built-in default"

    def rule(self, metric: str) -> MetricRule | None:
        """The rule for `metric`, or None when the policy does not gate it."""
        if metric in self.metrics:
            return self.metrics[metric]
        if self.other_metrics == "gate":
            return replace(self.defaults, required=False)
        return None


def gates_dir() -> Path:
    return suites_dir() / "gates"


def list_policies() -> dict[str, Path]:
    folder = gates_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def _number(value: Any, where: str, *, lo: float = 0.0, hi: float | None = None, integer: bool = False) -> Any:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{where} must be {'an integer' if integer else 'a number'} {rng}, got {value!r}")
    return value


def _rule(data: Any, where: str, base: MetricRule) -> MetricRule:
    if data is None:
        return base
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of {sorted(_METRIC_KEYS)}, got {data!r}")
    bad = set(data) - _METRIC_KEYS
    if bad:
        raise ConfigError(f"{where}: unknown keys {sorted(bad)}; allowed: {sorted(_METRIC_KEYS)}")
    out = base
    if "direction" in data:
        if data["direction"] not in ("higher", "lower", "auto"):
            raise ConfigError(f"{where}.direction must be higher, lower or auto, got {data['direction']!r}")
        out = replace(out, direction=data["direction"])
    for key in ("abs", "rel"):
        if data.get(key) is not None:
            out = replace(out, **{key: float(_number(data[key], f"{where}.{key}"))})
    if "min_samples" in data:
        out = replace(out, min_samples=_number(data["min_samples"], f"{where}.min_samples", lo=2, integer=True))
    if "statistic" in data:
        if data["statistic"] not in STATISTICS:
            raise ConfigError(f"{where}.statistic must be one of {', '.join(STATISTICS)}, got {data['statistic']!r}")
        out = replace(out, statistic=data["statistic"])
    if "required" in data:
        if not isinstance(data["required"], bool):
            raise ConfigError(f"{where}.required must be true or false, got {data['required']!r}")
        out = replace(out, required=data["required"])
    return out


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate a policy mapping; errors name the source and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a gate policy must be a mapping, got {type(data).__name__}")
    bad = set(data) - _TOP_KEYS
    if bad:
        raise ConfigError(f"{source}: unknown keys {sorted(bad)}; allowed: {sorted(_TOP_KEYS)}")
    p = Policy(source=source)
    if "name" in data:
        p = replace(p, name=str(data["name"]))
    if "description" in data:
        p = replace(p, description=str(data["description"]).strip())
    if data.get("suite") is not None:
        p = replace(p, suite=str(data["suite"]))
    if "alpha" in data:
        p = replace(p, alpha=float(_number(data["alpha"], f"{source}: alpha", lo=0.0, hi=0.5)))
    if "correction" in data:
        if data["correction"] not in CORRECTIONS:
            raise ConfigError(f"{source}: correction must be one of {', '.join(CORRECTIONS)}, got {data['correction']!r}")
        p = replace(p, correction=data["correction"])
    if "n_boot" in data:
        p = replace(p, n_boot=_number(data["n_boot"], f"{source}: n_boot", lo=100, integer=True))
    if "seed" in data:
        p = replace(p, seed=_number(data["seed"], f"{source}: seed", integer=True))
    if "confidence" in data:
        conf = float(_number(data["confidence"], f"{source}: confidence", lo=0.5, hi=0.999))
        p = replace(p, confidence=conf)
    if "resample" in data:
        if data["resample"] not in ("crossed", "pairs", "prompts"):
            raise ConfigError(f"{source}: resample must be crossed, pairs or prompts, got {data['resample']!r}")
        p = replace(p, resample=data["resample"])
    if "fail_on" in data:
        fail_on = data["fail_on"]
        if not isinstance(fail_on, list) or not set(fail_on) <= {"regression", "inconclusive"}:
            raise ConfigError(f"{source}: fail_on must be a list of regression / inconclusive, got {fail_on!r}")
        p = replace(p, fail_on=tuple(fail_on))
    if "other_metrics" in data:
        if data["other_metrics"] not in ("ignore", "gate"):
            raise ConfigError(f"{source}: other_metrics must be ignore or gate, got {data['other_metrics']!r}")
        p = replace(p, other_metrics=data["other_metrics"])
    defaults = _rule(data.get("defaults"), f"{source}: defaults", MetricRule())
    metrics_data = data.get("metrics") or {}
    if not isinstance(metrics_data, dict):
        raise ConfigError(f"{source}: metrics must be a mapping of metric name -> rule")
    metrics = {str(name): _rule(rule, f"{source}: metrics.{name}", defaults) for name, rule in metrics_data.items()}
    # A policy that lists metrics gates those; one that lists none gates whatever both runs have.
    if "other_metrics" not in data:
        p = replace(p, other_metrics="ignore" if metrics else "gate")
    return replace(p, defaults=defaults, metrics=metrics)


def load_policy(name_or_path: str | Path | None, suite: str | None = None) -> Policy:
    """A policy by path, by name (suites/gates/NAME.yaml), the suite's own policy, or the default.

    Without a name, `suites/gates/<suite>.yaml` is used when it exists; otherwise every metric
    both runs have is gated in its stored direction with zero tolerance."""
    if name_or_path is None:
        known = list_policies()
        if suite and suite in known:
            return load_policy(known[suite])
        return Policy()
    path = Path(name_or_path)
    if not path.is_file():
        known = list_policies()
        if str(name_or_path) not in known:
            raise ConfigError(f"unknown gate policy {str(name_or_path)!r}: not a file, and not one of "
                              f"{', '.join(sorted(known)) or 'none'} (in {gates_dir()})")
        path = known[str(name_or_path)]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the policy ({e})") from e
    return parse_policy(data, str(path))

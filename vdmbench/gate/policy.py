"""Gate policies: which metrics decide a release, with what tolerance.

A policy is a YAML file in `suites/gates/` (named on the command line), anywhere (by path), or
an object an installed package offers through the `vdmbench.gate_policies` entry points:

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
      shapes_adherence: {abs: 0.10, min_samples: 8}
      flicker: {rel: 0.02}
      fvd: {rel: 0.10, required: false}

Per metric (an output name, as stored): `abs` and `rel` tolerances (a change within
max(abs, rel * |baseline value|) is tolerated), `min_samples` (pairs needed for a verdict),
`statistic` mean | median (per-sample metrics), `required` (a missing metric is a configuration
error when true). Whether higher is better comes from the metric's declaration
(vdmbench.metrics.output_direction); `direction: higher | lower` is only needed for outputs no
installed metric declares, and one that contradicts the declaration is an error.

The file is validated by one schema (PolicySchema, on vdmbench.config.schema like suites and model
configs); errors are one line naming the file, the key (a dotted path: metrics.fvd.rel) and what
is expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError

from vdmbench.config.schema import Schema, expected, read_yaml_file
from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import suites_dir
from vdmbench.core.registry import Registry
from vdmbench.core.stats import CORRECTIONS, STATISTICS

VERDICTS = ("pass", "regression", "improvement", "inconclusive")


# --- the schema of a policy file ---------------------------------------------------------------
# The shared strict schema base (vdmbench.config.schema): each field says once what it expects.

def _text(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v  # `name: 2024` is a name


class RuleSchema(Schema):
    """One metric's rule (or the defaults); unset keys inherit from the defaults."""

    direction: Literal["higher", "lower", "auto"] | None = expected("higher, lower or auto", default=None)
    abs: float | None = expected("a number >= 0", default=None, ge=0)
    rel: float | None = expected("a number >= 0", default=None, ge=0)
    min_samples: int | None = expected("an integer >= 2", default=None, ge=2)
    statistic: Literal[STATISTICS] | None = expected(f"one of {', '.join(STATISTICS)}", default=None)  # type: ignore[valid-type]
    required: bool | None = expected("true or false", default=None)


class PolicySchema(Schema):
    name: Annotated[str, BeforeValidator(_text)] = expected("a string", default="default")
    description: Annotated[str, BeforeValidator(_text)] = expected("a string", default="")
    suite: Annotated[str, BeforeValidator(_text)] | None = expected("a suite name", default=None)
    alpha: float = expected("a number in [0, 0.5]", default=0.05, ge=0, le=0.5)
    correction: Literal[CORRECTIONS] = expected(f"one of {', '.join(CORRECTIONS)}", default="holm")  # type: ignore[valid-type]
    n_boot: int = expected("an integer >= 100", default=4000, ge=100)
    confidence: float = expected("a number in [0.5, 0.999]", default=0.95, ge=0.5, le=0.999)
    resample: Literal["crossed", "pairs", "prompts"] = expected("crossed, pairs or prompts", default="crossed")
    fail_on: list[Literal["regression", "inconclusive"]] = expected(
        "a list of regression / inconclusive", default=["regression"])
    # Unset: ignore when the policy lists metrics, gate when it lists none.
    other_metrics: Literal["ignore", "gate"] | None = expected("ignore or gate", default=None)
    seed: int = expected("an integer >= 0", default=0, ge=0)
    defaults: RuleSchema | None = expected("a mapping of rule keys", default=None)
    metrics: dict[str, RuleSchema | None] | None = expected("a mapping of metric name -> rule", default=None)


def _expected(loc: list[str]) -> str | None:
    """What the schema expects at a location."""
    rule = RuleSchema.model_fields
    if (loc[0] == "defaults" and len(loc) == 2) or (loc[0] == "metrics" and len(loc) == 3):
        return RuleSchema.expected_of(loc[-1]) if loc[-1] in rule else None
    if loc[0] == "metrics" and len(loc) == 2:
        return f"a mapping of {', '.join(rule)}"
    return PolicySchema.expected_of(loc[0]) if loc[0] in PolicySchema.model_fields else None


def _one_line(e: ValidationError, source: str) -> ConfigError:
    """The first problem of a validation error, as `SOURCE: KEY must be EXPECTED, got VALUE`.
    Formatted here rather than by Schema.check: a rule sits under a mapping key (metrics.fvd.rel),
    which the shared error locator does not walk."""
    errors = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")  # unknown keys first
    first = errors[0]
    loc = [str(x) for x in first["loc"]]
    if first["type"] == "extra_forbidden":
        parent = loc[:-1]
        bad = sorted(str(x["loc"][-1]) for x in errors
                     if x["type"] == "extra_forbidden" and [str(p) for p in x["loc"][:-1]] == parent)
        allowed = sorted(RuleSchema.model_fields if parent else PolicySchema.model_fields)
        where = f"{source}: {'.'.join(parent)}" if parent else source
        return ConfigError(f"{where}: unknown keys {bad}; allowed: {allowed}")
    if loc[0] == "fail_on":
        loc = loc[:1]  # an item of the list: name the key
    shown = repr(first.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ConfigError(f"{source}: {'.'.join(loc)} must be {_expected(loc) or first['msg']}, got {shown}")


@dataclass(frozen=True)
class MetricRule:
    direction: str = "auto"  # higher | lower | auto: the metric's declaration, else what the runs stored
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


def _rule(schema: RuleSchema | None, base: MetricRule) -> MetricRule:
    """The rule a schema states, with unset keys taken from `base`."""
    if schema is None:
        return base
    return replace(base, **{k: getattr(schema, k) for k in schema.model_fields_set if getattr(schema, k) is not None})


def declared_direction(metric: str) -> bool | None:
    """Whether higher is better for an output name, as its metric declares (None: no installed
    metric produces it)."""
    from vdmbench.metrics import output_direction  # on use: the metrics import torch, the gate CLI need not

    return output_direction(metric)


def check_direction(metric: str, rule: MetricRule, where: str) -> None:
    """A direction a policy states must agree with the metric's declaration."""
    if rule.direction == "auto":
        return
    declared = declared_direction(metric)
    if declared is not None and declared != (rule.direction == "higher"):
        raise ConfigError(f"{where}: direction {rule.direction} contradicts the metric, which declares "
                          f"{'higher' if declared else 'lower'} is better for {metric}; remove the key "
                          "(the gate reads the direction from the metric)")


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate a policy mapping; errors name the source and the key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a gate policy must be a mapping, got {type(data).__name__}")
    try:
        schema = PolicySchema.model_validate(dict(data))
    except ValidationError as e:
        raise _one_line(e, source) from None
    defaults = _rule(schema.defaults, MetricRule())
    metrics = {name: _rule(rule, defaults) for name, rule in (schema.metrics or {}).items()}
    for name, rule in metrics.items():
        check_direction(name, rule, f"{source}: metrics.{name}")
    # A policy that lists metrics gates those; one that lists none gates whatever both runs have.
    other = schema.other_metrics or ("ignore" if metrics else "gate")
    return Policy(
        name=schema.name, description=schema.description.strip(), suite=schema.suite, alpha=schema.alpha,
        correction=schema.correction, n_boot=schema.n_boot, confidence=schema.confidence,
        resample=schema.resample, fail_on=tuple(schema.fail_on), other_metrics=other, seed=schema.seed,
        defaults=defaults, metrics=metrics, source=source,
    )


def _read_policy_file(path: Path) -> Policy:
    return parse_policy(read_yaml_file(path), str(path))


REGISTRY = Registry(
    "gate policy", "vdmbench.gate_policies", list_policies,
    hint=" (or a path to a policy YAML file)",
)


def policy_names() -> list[str]:
    """Shipped policies and those installed packages offer."""
    return REGISTRY.names()


def load_policy(name_or_path: str | Path | None, suite: str | None = None) -> Policy:
    """A policy by path, by name (suites/gates/NAME.yaml or an entry point), the suite's own
    policy, or the default.

    Without a name, the policy named like the suite is used when there is one; otherwise every
    metric both runs have is gated in its declared (or stored) direction with zero tolerance."""
    if name_or_path is None:
        if suite and suite in REGISTRY.names():
            return load_policy(suite)
        return Policy()
    path = Path(name_or_path)
    if path.is_file():
        return _read_policy_file(path)
    name = str(name_or_path)
    obj = REGISTRY.get(name)
    if isinstance(obj, Policy):
        return obj
    if isinstance(obj, (str, Path)):
        return _read_policy_file(Path(obj))
    if isinstance(obj, Mapping):
        return parse_policy(obj, f"gate policy {name!r}")
    raise ConfigError(f"gate policy {name!r}: {type(obj).__name__} is not a Policy, a mapping or a path")

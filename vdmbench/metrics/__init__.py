"""Metric registry: every module in this package that exposes `METRICS = [...]` is discovered.

Adding a metric = one module with a `VideoMetric` subclass listed in `METRICS`; third-party
packages can add theirs through the `vdmbench.metrics` entry-point group (value: "module").
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from typing import Any

from vdmbench.core.errors import ConfigError
from vdmbench.metrics.base import ClipBatch, MetricContext, PerSampleMetric, VideoMetric

__all__ = [
    "ClipBatch",
    "MetricContext",
    "PerSampleMetric",
    "VideoMetric",
    "available_metrics",
    "build_metric",
    "metric_spec",
]


def _modules() -> list[str]:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names += [ep.value for ep in importlib.metadata.entry_points(group="vdmbench.metrics")]
    return names


def available_metrics() -> dict[str, type[VideoMetric]]:
    """Metric classes by registry name (imports each metric module; heavy deps load lazily)."""
    found: dict[str, type[VideoMetric]] = {}
    for module_name in _modules():
        module = importlib.import_module(module_name)
        for cls in getattr(module, "METRICS", ()):
            if cls.name in found and found[cls.name] is not cls:
                raise ConfigError(f"metric name {cls.name!r} is defined twice ({module_name})")
            found[cls.name] = cls
    return found


def metric_spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A suite lists a metric as a name or as {name: ..., <option>: ...}."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        opts = {k: v for k, v in spec.items() if k != "name"}
        return spec["name"], opts
    raise ConfigError(f"a metric must be a name or a mapping with 'name', got {spec!r}")


def build_metric(spec: str | dict[str, Any], context: MetricContext | None = None) -> VideoMetric:
    name, options = metric_spec(spec)
    registry = available_metrics()
    if name not in registry:
        raise ConfigError(
            f"unknown metric {name!r}; available: {', '.join(sorted(registry))} "
            "(`vdmbench list metrics` describes them)"
        )
    try:
        return registry[name](context=context, **options)
    except TypeError as e:
        raise ConfigError(f"metric {name!r}: bad options {options}: {e}") from e

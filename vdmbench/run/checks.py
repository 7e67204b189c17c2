"""Checks a run makes before any work, so that `--dry-run` says what a real run would refuse and a
run never stops halfway on a mistake it could have seen at the start: metric names and every
metric option (against the metric's signature, through its base classes down to torchmetrics'
own keyword arguments), and the suite's reference set."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from vdmbench.config.suite import Suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.video import VIDEO_EXTENSIONS
from vdmbench.metrics import metric_class, metric_spec

# torchmetrics.Metric's own keyword arguments, and the type each must have.
_TORCHMETRICS_OPTIONS: dict[str, type | None] = {
    "compute_on_cpu": bool, "dist_sync_on_step": bool, "sync_on_compute": bool, "compute_with_cache": bool,
    "process_group": None, "dist_sync_fn": None, "distributed_available_fn": None,
}
_NOT_OPTIONS = {"self", "context"}


def metric_options(cls: type) -> set[str] | None:
    """The option names a metric class accepts: the named parameters of every `__init__` along its
    MRO while each passes `**kwargs` on, then torchmetrics' own. None: it cannot be told."""
    from vdmbench.metrics.base import Metric  # torchmetrics' class, without its package's whole import

    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is Metric:
            return names | set(_TORCHMETRICS_OPTIONS)
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - _NOT_OPTIONS
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def check_metric_spec(spec: str | dict[str, Any]) -> None:
    """A one-line ConfigError for an unknown metric, an option it does not take, or a torchmetrics
    option of the wrong type; nothing is built (no weights are loaded)."""
    name, options = metric_spec(spec)
    cls = metric_class(name)
    accepted = metric_options(cls)
    if accepted is None:
        return
    for key, value in options.items():
        if key not in accepted:
            takes = ", ".join(sorted(accepted - set(_TORCHMETRICS_OPTIONS))) or "no options of its own"
            raise ConfigError(f"metric {name!r}: unknown option {key!r}; it takes: {takes} "
                              "(`vdmbench list metrics` describes them)")
        expected = _TORCHMETRICS_OPTIONS.get(key)
        if expected is bool and not isinstance(value, bool):
            raise ConfigError(f"metric {name!r}: option {key!r} must be true or false, got {value!r}")


def check_reference(suite: Suite) -> None:
    """The suite's reference set exists and holds clips (a folder), before anything is generated."""
    ref = suite.reference
    if not ref:
        return
    source = ref.get("source")
    if source == "folder":
        folder = Path(str(ref.get("path", ""))).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"suite {suite.name!r}: reference folder {folder} does not exist")
        if not any(p.suffix.lower() in VIDEO_EXTENSIONS for p in folder.iterdir()):
            raise ConfigError(f"suite {suite.name!r}: reference folder {folder} has no videos")
    elif source != "shapes":
        raise ConfigError(f"suite {suite.name!r}: reference source must be 'shapes' or 'folder', got {source!r}")

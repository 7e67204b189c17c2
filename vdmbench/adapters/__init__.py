"""Adapter types: the lookup from a model config (`adapter: <type>`) to its class, and building it.

Where an adapter type comes from (vdmbench.core.registry): the built-in table below; any other
module of this package exposing `ADAPTER` (adding a backend = one module here + one YAML naming
it with `adapter: <module>`); the `vdmbench.adapters` entry points of installed packages
(`name = "package.module:Class"`); or a YAML naming any class as `adapter: "package.module:Class"`.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

from vdmbench.adapters.base import Adapter, AdapterContext, BaseAdapter, Capabilities, GenerationRequest

# The model configs themselves (adapters/*.yaml) belong to the config layer; these names stay for callers.
from vdmbench.config.model import list_model_configs, load_model_config, validate_model_config
from vdmbench.core.errors import ConfigError
from vdmbench.core.registry import Registry, import_target

__all__ = [
    "REGISTRY",
    "Adapter",
    "AdapterContext",
    "BaseAdapter",
    "Capabilities",
    "GenerationRequest",
    "adapter_class",
    "build_adapter",
    "list_model_configs",
    "load_model_config",
    "validate_model_config",
]

BUILTIN = {
    "callable": "vdmbench.adapters.callable:CallableAdapter",
    "diffusers": "vdmbench.adapters.diffusers:DiffusersAdapter",
    "folder": "vdmbench.adapters.folder:FolderAdapter",
    "http": "vdmbench.adapters.http:HttpAdapter",
    "reference": "vdmbench.adapters.reference:ReferenceAdapter",
}


def _own_module(kind: str) -> str | None:
    """`vdmbench.adapters.<kind>:ADAPTER` for a module added here without a table entry."""
    name = kind.replace("-", "_")
    module = f"{__name__}.{name}"
    if name.isidentifier() and importlib.util.find_spec(module) is not None:
        return f"{module}:ADAPTER"
    return None


def _check(name: str, obj: Any) -> None:
    if not isinstance(obj, type):
        raise ConfigError(f"adapter type {name!r}: {obj!r} is not a class")


REGISTRY = Registry(
    "adapter type", "vdmbench.adapters", BUILTIN, module_attr="ADAPTER", fallback=_own_module, check=_check,
    hint=" (or a class as 'package.module:Class')",
)


def adapter_class(kind: str) -> type:
    """The class for an adapter type: a registered name, or 'package.module:Class'."""
    if ":" in kind:
        cls = import_target(kind, f"adapter type {kind!r}")
        _check(kind, cls)
        return cls
    return REGISTRY.get(kind)


def build_adapter(cfg: dict[str, Any], context: AdapterContext | None = None) -> Adapter:
    """Instantiate the adapter a (validated) config describes, for a run's `context` (device,
    results, journals). A class that takes no `context` gets it through `bind` where it has one."""
    cls = adapter_class(cfg["adapter"])
    params = dict(cfg.get("params") or {})
    where = f"model {cfg['name']!r}"
    sig = _signature(cls)
    takes_context = issubclass(cls, BaseAdapter) or (sig is not None and "context" in sig.parameters)
    kwargs = {"context": context} if context is not None and takes_context else {}
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        known = [n for n, p in sig.parameters.items() if n not in ("self", "name", "context")
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown param {unknown[0]!r} for adapter {cfg['adapter']!r}; "
                              f"known: {', '.join(known)}")
    try:
        adapter = cls(name=cfg["name"], **params, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: bad params for adapter {cfg['adapter']!r}: {e}") from e
    if context is not None and not kwargs and callable(getattr(adapter, "bind", None)):
        adapter.bind(context)
    return adapter


def _signature(cls: type) -> inspect.Signature | None:
    try:
        return inspect.signature(cls)
    except (TypeError, ValueError):
        return None

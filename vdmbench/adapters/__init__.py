"""Adapter configs (top-level `adapters/*.yaml`) and the lookup from a config to its class.

Adding a backend = one module here exposing `ADAPTER` + one YAML naming it with `adapter: <module>`.
A YAML may also name any importable class as `adapter: "package.module:Class"`.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from vdmbench.adapters.base import Adapter, Capabilities, GenerationRequest
from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import adapters_dir

__all__ = [
    "Adapter",
    "Capabilities",
    "GenerationRequest",
    "adapter_class",
    "build_adapter",
    "list_adapter_configs",
    "load_adapter_config",
]


def list_adapter_configs() -> dict[str, Path]:
    """Shipped adapter configs by name."""
    return {p.stem: p for p in sorted(adapters_dir().glob("*.yaml"))}


def load_adapter_config(name_or_path: str) -> dict[str, Any]:
    """Read an adapter YAML by shipped name or by path, and check its top-level keys."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = list_adapter_configs()
        if name_or_path not in known:
            raise ConfigError(
                f"unknown model {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'} "
                "(or pass a path to an adapter YAML; `vdmbench list models` shows them)"
            )
        path = known[name_or_path]
    # Imported here: vdmbench.config.suite imports this package.
    from vdmbench.config.suite import read_yaml_file

    return validate_adapter_config(read_yaml_file(path), str(path))


def validate_adapter_config(cfg: Any, source: str) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: an adapter config must be a mapping with keys name, adapter, params")
    for key in ("name", "adapter"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            raise ConfigError(f"{source}: key {key!r} must be a non-empty string")
    params = cfg.get("params", {}) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: key 'params' must be a mapping, got {type(params).__name__}")
    unknown = set(cfg) - {"name", "adapter", "description", "params", "tasks", "notes", "gpu_memory"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; put backend options under 'params'")
    return {**cfg, "params": dict(params)}


def adapter_class(kind: str) -> type:
    """The class for an adapter type: a module of this package, or 'package.module:Class'."""
    if ":" in kind:
        module_name, _, attr = kind.partition(":")
    else:
        module_name, attr = f"vdmbench.adapters.{kind.replace('-', '_')}", "ADAPTER"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            builtin = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base")
            raise ConfigError(
                f"unknown adapter type {kind!r}; built-in types: {', '.join(builtin)}"
            ) from e
        raise ConfigError(
            f"adapter type {kind!r} needs the package {e.name!r}; install it "
            "(e.g. pip install 'vdmbench[diffusers]' or 'vdmbench[api]')"
        ) from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ConfigError(f"adapter module {module_name} has no attribute {attr!r}") from e


def build_adapter(cfg: dict[str, Any]) -> Adapter:
    """Instantiate the adapter a (validated) config describes."""
    cls = adapter_class(cfg["adapter"])
    try:
        return cls(name=cfg["name"], **cfg.get("params", {}))
    except TypeError as e:
        raise ConfigError(f"model {cfg['name']!r}: bad params for adapter {cfg['adapter']!r}: {e}") from e

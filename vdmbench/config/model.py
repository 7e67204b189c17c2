"""Model configs: the YAML files of the top-level `adapters/` folder (a Hydra config group, picked
with `model=NAME`), their schema, and loading by name or path.

    name: reference-unet3d           # required: the model's name in the results
    adapter: reference               # required: the adapter type (vdmbench/adapters/<type>.py) or
                                     # "package.module:Class"
    description: ...                 # one line for `vdmbench list models`
    tasks: [t2v]                     # what it can do (t2v | i2v | prediction | interpolation | editing)
    gpu_memory: "~12 GB in fp16"     # what it needs, in words
    notes: ...                       # anything, for people
    params: {...}                    # the adapter's own options, passed to its constructor

Errors name the file, the key and what is expected. The validated config is the mapping as
written (with `params` always a mapping), so that its hash, which keys cached clips, stays the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from vdmbench.config.schema import Schema, config_file, expected, read_yaml_file
from vdmbench.config.suite import Task
from vdmbench.core.paths import adapters_dir

__all__ = ["ModelConfigSchema", "list_model_configs", "load_model_config", "validate_model_config"]


class ModelConfigSchema(Schema):
    """A model config (see the module docstring); backend options go under `params`."""

    what: ClassVar[str] = "a model config"
    shape: ClassVar[str] = "a mapping with keys name, adapter, params"
    unknown_keys_hint: ClassVar[str | None] = "put backend options under 'params'"
    none_means_default: ClassVar[frozenset[str]] = frozenset({"params", "description", "tasks", "gpu_memory"})

    name: str = expected("a non-empty string", min_length=1)
    adapter: str = expected("a non-empty string", min_length=1)
    description: str = expected("a string", default="")
    tasks: list[Task] | None = expected("a list of tasks (t2v, i2v, prediction, interpolation, editing)",
                                        default=None)
    gpu_memory: str | None = expected("a string", default=None)
    notes: Any = None
    params: dict[str, Any] = expected("a mapping", default={})


def validate_model_config(config: Any, source: str) -> dict[str, Any]:
    """The model config as written, with `params` a mapping; a one-line ConfigError naming
    `source`, the key and what is expected otherwise."""
    ModelConfigSchema.check(config, source)
    return {**config, "params": dict(config.get("params") or {})}


def list_model_configs() -> dict[str, Path]:
    """Shipped model configs by name."""
    return {p.stem: p for p in sorted(adapters_dir().glob("*.yaml"))}


def load_model_config(name_or_path: str | Path) -> dict[str, Any]:
    """Read a model config by shipped name or by path, and validate it."""
    path = config_file(name_or_path, list_model_configs(), "model",
                       "or pass a path to a model config YAML; `vdmbench list models` shows them")
    return validate_model_config(read_yaml_file(path), str(path))

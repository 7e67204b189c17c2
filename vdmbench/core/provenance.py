"""What produced a result: package versions, device, git sha. Stored with every run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

_PACKAGES = ("vdmbench", "torch", "torchvision", "torchmetrics", "numpy", "scipy", "duckdb", "av",
             "decord", "open_clip_torch", "opencv-python-headless", "diffusers", "hydra-core", "safetensors")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_sha() -> str | None:
    """The commit of the vdmbench source when it runs from a checkout."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


_SECRET_WORDS = ("key", "token", "secret", "password", "auth")


def is_secret_name(name: str) -> bool:
    # "api_key_env" names a variable (not a secret itself), so it is kept.
    lowered = name.lower()
    return any(w in lowered for w in _SECRET_WORDS) and not lowered.endswith("_env")


def redact_config(value: Any) -> Any:
    """A copy of a config with the values of secret-looking keys replaced, for storing and hashing."""
    if isinstance(value, dict):
        return {k: "<redacted>" if is_secret_name(str(k)) and v is not None else redact_config(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    return value


def _redact(override: str) -> str:
    """Keys are read from the environment, but a user may still type one on the command line:
    as a secret-named key (`+model.params.api_key=...`) or inside a dict- or list-valued override
    (`+model.params.init_kwargs={api_key: ...}`), whose secret-named keys are redacted at any depth.
    A structured value that cannot be read and mentions a secret-looking word is redacted whole."""
    name, sep, value = override.partition("=")
    if not sep:
        return override
    if is_secret_name(name.rsplit(".", 1)[-1]):
        return f"{name}=<redacted>"
    if not any(c in value for c in "{["):
        return override
    parsed = _parse_override_value(override)
    if isinstance(parsed, (dict, list)):
        redacted = redact_config(parsed)
        return override if redacted == parsed else f"{name}={_override_text(redacted)}"
    if any(w in value.lower() for w in _SECRET_WORDS):
        return f"{name}=<redacted>"
    return override


def _parse_override_value(override: str) -> Any:
    """The value of a Hydra override as Python data, or None where it cannot be read."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        return OverridesParser.create().parse_override(override).value()
    except Exception:  # not installed, or not an override Hydra can read: the caller stays safe
        return None


def _override_text(value: Any) -> str:
    """Python data back in the override syntax (`{a: 1, b: [x, y]}`), for the record."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_override_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_override_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value != "<redacted>" and (not value or any(c in value for c in " ,:{}[]'\"\\=")):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def environment(device: str, overrides: list[str] | None = None) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "packages": package_versions(),
        "command_overrides": [_redact(o) for o in overrides or []],
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
    return env

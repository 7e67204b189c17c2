"""Where the shipped config groups live: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # vdmbench/


def config_root() -> Path:
    """The folder that holds `suites/`, `adapters/` and `dashboards/`.

    A wheel carries them in `vdmbench/_configs`; an editable install reads them from the
    repository root, so edits to a suite YAML take effect without reinstalling.
    """
    packaged = _PACKAGE_DIR / "_configs"
    if (packaged / "suites").is_dir():
        return packaged
    return _PACKAGE_DIR.parent


def suites_dir() -> Path:
    return config_root() / "suites"


def adapters_dir() -> Path:
    return config_root() / "adapters"


def dashboards_dir() -> Path:
    return config_root() / "dashboards"


def weights_dir() -> Path:
    """Bundled reference-model weights (safetensors)."""
    return _PACKAGE_DIR / "reference" / "weights"


# Where results go unless a command is told otherwise (relative to the current directory).
DEFAULT_RESULTS_DIR = Path("results")
DEFAULT_DB = DEFAULT_RESULTS_DIR / "vdmbench.duckdb"


def user_cache_dir() -> Path:
    """vdmbench's per-user cache: downloaded weights, open_clip's files, listings
    (`$XDG_CACHE_HOME/vdmbench`, default ~/.cache/vdmbench)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vdmbench"

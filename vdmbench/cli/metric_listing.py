"""The rows of `vdmbench list metrics`, cached between calls.

Listing needs every metric class's declaration (outputs, directions, inputs, docstring), so it
imports every metric module and with them torch: ~3 s, for a table that only changes when
vdmbench's own files do. The rows are therefore kept in the user cache
(`~/.cache/vdmbench/listings/`), keyed by vdmbench's version and the size and modification time of
every file of the layers a metric can import (metrics and everything below it); any edit there,
upgrade or reinstall computes them afresh. With a metric plugin installed (entry points of
`vdmbench.metrics`) nothing is cached: a plugin's files can change without vdmbench knowing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

from vdmbench.core import atomic
from vdmbench.core.paths import user_cache_dir

Row = list[str]
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # vdmbench/
# The layers whose files make a metric class what it is (imports only point down from metrics).
_LAYERS = ("metrics", "judges", "features", "data", "reference", "store", "config", "core")


def metric_rows(cache_dir: Path | None = None) -> list[Row]:
    """[metric, outputs, kind, needs, description] per metric (and a row per feature backend)."""
    key = _cache_key()
    path = (cache_dir or user_cache_dir() / "listings") / f"metrics-{key}.json" if key else None
    if path is not None:
        cached = _read(path)
        if cached is not None:
            return cached
    rows = compute_metric_rows()
    if path is not None:
        try:
            atomic.write_text(path, json.dumps(rows))
        except OSError:
            pass  # a read-only home: list without caching
    return rows


def compute_metric_rows() -> list[Row]:
    """The rows from the metric classes themselves (imports every metric module)."""
    from vdmbench.metrics import available_metrics

    rows: list[Row] = []
    for name, cls in sorted(available_metrics().items()):
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        outputs = ", ".join(f"{o} {'↑' if o.higher_is_better else '↓'}" if getattr(o, "is_score", True)
                            else f"{o} (a weight, not a score)" for o in cls.outputs)
        rows.append([name, outputs, "per clip" if cls.per_sample else "per set",
                     ", ".join(sorted(cls.inputs)) or "-", doc[0] if doc else ""])
        for backend, note in getattr(cls, "feature_backends", {}).items():
            rows.append(["", "", "", "", f"features: {backend} — {note}"])
    return rows


def _cache_key() -> str | None:
    """A digest of what the rows depend on, or None when they must not be cached."""
    if importlib.metadata.entry_points(group="vdmbench.metrics"):
        return None
    try:
        version = importlib.metadata.version("vdmbench")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    h = hashlib.sha256(f"{version}|{sys.version_info[:2]}".encode())
    for f in sorted(f for layer in _LAYERS for f in (_PACKAGE_DIR / layer).rglob("*.py")):
        st = f.stat()
        h.update(f"|{f.relative_to(_PACKAGE_DIR)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _read(path: Path) -> list[Row] | None:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(rows, list) and all(isinstance(r, list) and len(r) == 5 and all(isinstance(c, str) for c in r)
                                      for r in rows):
        return rows
    return None  # damaged or from another layout: computed afresh

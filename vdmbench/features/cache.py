"""Feature cache on disk: one .npy per key under <cache_dir>/<namespace>/, written atomically.

The namespace identifies the extractor (backend, weights hash, layer, preprocessing); the key
identifies the content (a clip's sha256 and shape, or a reference set's id). A second run reads
features instead of recomputing them; a killed run never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


class FeatureCache:
    def __init__(self, root: Path | str | None, namespace: str) -> None:
        self.dir = Path(root) / namespace if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def _path(self, key: str) -> Path:
        assert self.dir is not None
        safe = hashlib.sha256(key.encode()).hexdigest()  # keys may hold any characters
        return self.dir / safe[:2] / f"{safe}.npy"

    def get(self, key: str) -> np.ndarray | None:
        if self.dir is None:
            return None
        path = self._path(key)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None  # absent or unreadable: recompute (and overwrite)

    def put(self, key: str, value: np.ndarray) -> None:
        if self.dir is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(value), allow_pickle=False)
        os.replace(tmp, path)

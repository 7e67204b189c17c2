"""Feature caches: on disk across runs (`FeatureCache`), in memory across the metrics of a run (`SharedWork`).

On disk: one .npy per key under <cache_dir>/<namespace>/, written atomically.

The namespace identifies the extractor (backend, weights hash, layer, preprocessing); the key
identifies the content (a clip's sha256 and shape, or a reference set's id). A second run reads
features instead of recomputing them; a killed run never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vdmbench.core import atomic


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
        with atomic.atomic_path(self._path(key)) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(value), allow_pickle=False)


class SharedWork:
    """Work that several metrics of one run need, done once: loaded models and per-clip results.

    One instance per `MetricContext`, i.e. per run (no global state). Two kinds of things:

    - models (`model(key, build)`): a CLIP encoder or a flow estimator is built once per key and
      lent to every metric that asks with the same key;
    - per-clip results (`per_clip(kind, reader, videos, compute)`): CLIP frame embeddings, optical
      flows, keyed by `kind` (the extractor and its settings) and the clip's content hash. Each
      metric that will read a kind registers as a reader when it is built; a result is kept only
      until every other reader has read it, and not kept at all when a kind has one reader. The
      runner scores a batch metric after metric, so about one batch of results is held at a time.

    `max_bytes` bounds what is held (readers that never come: a metric that failed on the batch,
    standalone use); over it the oldest results are dropped, and a reader that then misses one
    recomputes it without storing it again for the readers that already had it.
    """

    def __init__(self, max_bytes: int = 1 << 30, max_entries: int = 100_000) -> None:
        self.max_bytes, self.max_entries = int(max_bytes), int(max_entries)
        self._models: dict[Any, Any] = {}
        self._readers: dict[str, set[int]] = {}
        self._last_reader = 0
        # (kind, clip) -> [value or None once dropped for space, readers still to read, nbytes]
        self._entries: OrderedDict[tuple[str, str], list] = OrderedDict()
        self.bytes = 0
        self.computed: Counter[str] = Counter()  # per kind: clips computed
        self.reused: Counter[str] = Counter()  # per kind: clips served from the memo

    def model(self, key: Any, build: Callable[[], Any]) -> Any:
        if key not in self._models:
            self._models[key] = build()
        return self._models[key]

    def register(self, kind: str) -> int:
        """A metric announces it will read `kind`; returns its reader id."""
        self._last_reader += 1
        self._readers.setdefault(kind, set()).add(self._last_reader)
        return self._last_reader

    def per_clip(self, kind: str, reader: int, videos: Any,
                 compute: Callable[[list[int]], Sequence[Any]]) -> list[Any]:
        """Each clip's result: from the memo, or `compute(indices)` for the clips it lacks (one call)."""
        if len(self._readers.get(kind, ())) <= 1:  # nobody to share with: not even a hash
            self.computed[kind] += len(videos)
            return list(compute(list(range(len(videos)))))
        keys = [(kind, clip_key(v)) for v in videos]
        out: list[Any] = [None] * len(keys)
        todo = []
        for i, key in enumerate(keys):
            entry = self._entries.get(key)
            if entry is None or entry[0] is None:
                todo.append(i)
                continue
            out[i] = entry[0]
            self.reused[kind] += 1
            entry[1].discard(reader)
            if not entry[1]:
                self._remove(key)
        if todo:
            fresh = compute(todo)
            for i, value in zip(todo, fresh):
                out[i] = value
                self.computed[kind] += 1
                old = self._entries.get(keys[i])
                # Still to read: the other readers, or what was left of them when it was dropped.
                pending = (set(old[1]) if old is not None else set(self._readers.get(kind, ()))) - {reader}
                if old is not None:
                    self._remove(keys[i])
                if pending:
                    self._put(keys[i], value, pending)
        return out

    def _put(self, key: tuple[str, str], value: Any, pending: set[int]) -> None:
        size = _nbytes(value)
        self._entries[key] = [value, pending, size]
        self.bytes += size
        for old in list(self._entries):
            if self.bytes <= self.max_bytes:
                break
            self._entries[old][0] = None  # keep who still needs it; the next reader recomputes
            self.bytes -= self._entries[old][2]
            self._entries[old][2] = 0
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: tuple[str, str]) -> None:
        self.bytes -= self._entries.pop(key)[2]


def clip_key(clip: Any) -> str:
    """Content hash of one clip (a tensor or array): shape, dtype and bytes."""
    arr = clip.detach().cpu().numpy() if hasattr(clip, "detach") else np.asarray(clip)
    arr = np.ascontiguousarray(arr)
    h = hashlib.blake2b(f"{arr.shape}|{arr.dtype}|".encode(), digest_size=20)
    h.update(arr.tobytes() if arr.size == 0 else memoryview(arr).cast("B"))  # type: ignore[arg-type]
    return h.hexdigest()


def _nbytes(value: Any) -> int:
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if hasattr(value, "nbytes"):  # numpy
        return int(value.nbytes)
    if hasattr(value, "element_size"):  # torch
        return int(value.element_size() * value.numel())
    return 64

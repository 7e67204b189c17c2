"""The judge's answer cache: one JSON file per call, so a rerun asks nothing it asked before.

A call's key is the sha256 of its identity: backend, model and revision, template id and digest,
the question (or criterion, or prompt), the sha256 of the exact frames sent, and the decoding
parameters (see Judge.call_key). Entries hold the server's reply (text, logprobs, token counts,
the model and fingerprint the server named); never the API key, never the images.

Paid calls are never repeated: the reply is written (atomically, synced) the moment it arrives,
before it is parsed. A `pending/<key>` marker is written before a call is sent and removed once
its reply is stored; a marker left by a killed run names a call whose reply was lost in flight
(the one case a rerun asks again, which Judge.usage reports as `interrupted`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from vdmbench.core import atomic

log = logging.getLogger(__name__)


class JudgeCache:
    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.interrupted = self._leftover_markers()

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def _path(self, key: str, pending: bool = False) -> Path:
        if not key.isalnum():  # keys are hex digests; anything else must not become a path
            raise ValueError(f"judge cache key must be alphanumeric, got {key!r}")
        assert self.folder is not None
        return self.folder / ("pending" if pending else key[:2]) / f"{key}.json"

    def _leftover_markers(self) -> int:
        if self.folder is None or not (self.folder / "pending").is_dir():
            return 0
        atomic.remove_stale_temporaries(self.folder)
        left = [p for p in (self.folder / "pending").glob("*.json") if not self._path(p.stem).is_file()]
        if left:
            log.warning("judge cache %s: %d call(s) of an interrupted run got no stored reply; they are asked again",
                        self.folder, len(left))
        return len(left)

    def get(self, key: str) -> dict[str, Any] | None:
        if self.folder is None:
            return None
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:  # kept aside for a person to look at, then asked again
            log.warning("judge cache entry %s unreadable (%s); moved aside", path, e)
            path.replace(path.with_suffix(".corrupt"))
            return None
        return data if isinstance(data, dict) else None

    def mark_pending(self, key: str, what: dict[str, Any]) -> None:
        if self.folder is not None:
            atomic.write_text(self._path(key, pending=True), json.dumps(what, sort_keys=True))

    def put(self, key: str, entry: dict[str, Any]) -> None:
        if self.folder is None:
            return
        # Synced before the marker goes: this file is what stops a paid call from being made again.
        atomic.write_text(self._path(key), json.dumps(entry, sort_keys=True), fsync=True)
        self._path(key, pending=True).unlink(missing_ok=True)

    def clear_pending(self, key: str) -> None:
        if self.folder is not None:
            self._path(key, pending=True).unlink(missing_ok=True)

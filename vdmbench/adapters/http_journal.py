"""A small on-disk journal of hosted-API jobs, so a restarted run polls a job it already paid for
instead of submitting it again.

One JSON file per request key (the runner's cache key of the request), written atomically
(temporary file + rename), so a kill at any moment leaves either the old entry or the new one.
Entries hold job ids and states only, never credentials.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class JobJournal:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        if not key.isalnum():  # keys are hex digests; anything else must not become a path
            raise ValueError(f"journal key must be alphanumeric, got {key!r}")
        return self.folder / f"{key}.json"

    def video_path(self, key: str, suffix: str = ".mp4") -> Path:
        return self.folder / f"{key}{suffix}"

    def load(self, key: str) -> dict[str, Any] | None:
        path = self._entry(key)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            # A damaged entry must not stop the run; it is kept aside for a person to look at.
            log.warning("journal entry %s unreadable (%s); moved aside", path, e)
            path.replace(path.with_suffix(".corrupt"))
            return None
        return data if isinstance(data, dict) else None

    def save(self, key: str, entry: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._entry(key)
        tmp = self.folder / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "w") as f:
            json.dump(entry, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def remove(self, key: str) -> None:
        self._entry(key).unlink(missing_ok=True)

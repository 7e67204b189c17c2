"""A small on-disk journal of hosted-API jobs, so a restarted run polls a job it already paid for
instead of submitting it again.

One JSON file per request key (the runner's cache key of the request), written atomically
(temporary file + rename), so a kill at any moment leaves either the old entry or the new one.
Entries hold job ids, states (submitting, submitted, ambiguous, downloaded) and, where the API
names one, the job's poll URL; never the API key. Deleting an entry file (`entry_path`) lets a
later run submit its request again: the way to clear an ambiguous submission or a job the API
no longer knows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from vdmbench.core import atomic

log = logging.getLogger(__name__)


class JobJournal:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def _entry(self, key: str) -> Path:
        if not key.isalnum():  # keys are hex digests; anything else must not become a path
            raise ValueError(f"journal key must be alphanumeric, got {key!r}")
        return self.folder / f"{key}.json"

    def entry_path(self, key: str) -> Path:
        """The file of a request's entry: deleting it lets a later run submit the request again."""
        return self._entry(key)

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
        # Synced: the entry is what stops a paid job from being submitted twice.
        atomic.write_text(self._entry(key), json.dumps(entry, sort_keys=True), fsync=True)

    def remove(self, key: str) -> None:
        self._entry(key).unlink(missing_ok=True)

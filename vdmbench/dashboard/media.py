"""Finding a sample's video on disk.

The store keeps paths relative to the database file's folder, so a results folder can be moved
or copied as a whole. Browsers play the H.264 preview; the lossless file (libx264rgb) is used only
when no preview exists, and a missing file gives None so the page shows a placeholder.
"""

from __future__ import annotations

from pathlib import Path


def resolve(db_path: str | Path, stored: str | None) -> Path | None:
    if not isinstance(stored, str) or not stored:  # None, or NaN from a DataFrame of a failed sample
        return None
    p = Path(stored)
    return p if p.is_absolute() else Path(db_path).resolve().parent / p


def playable(db_path: str | Path, preview_path: str | None, path: str | None) -> Path | None:
    """The file to show in the browser, or None when neither file exists."""
    for stored in (preview_path, path):
        p = resolve(db_path, stored)
        if p is not None and p.is_file():
            return p
    return None

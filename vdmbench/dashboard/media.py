"""Finding a sample's video on disk.

The store keeps paths relative to the database file's folder, so a results folder can be moved
or copied as a whole. Browsers play the H.264 preview; the lossless file (libx264rgb) is used only
when no preview exists, and a missing file gives None so the page shows a placeholder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


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


FILMSTRIP_FRAMES = 8  # frames shown side by side
FILMSTRIP_HEIGHT = 128  # target pixels per frame: small clips are scaled up by a whole factor
FILMSTRIP_WIDTH = 860  # the strip fits the page's main column (wide layout at 1400 px)


def read_frames(path: Path, max_frames: int = 10_000) -> list[np.ndarray]:
    """Every frame of a stored clip as uint8 RGB [H, W, 3], decoded with PyAV (the lossless file
    is libx264rgb / FFV1: the frames the metrics saw). Imported here, not at the top: only the
    drill-down needs a decoder."""
    import av

    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) >= max_frames:
                break
    return out


def filmstrip_frames(path: Path, k: int = FILMSTRIP_FRAMES) -> tuple[list[np.ndarray], list[int], int]:
    """(the picked frames, their indices, the clip's frame count), keeping only the picked frames
    in memory when the container states its frame count (a long HD clip is not held whole)."""
    import av

    with av.open(str(path)) as container:
        stated = int(container.streams.video[0].frames or 0)
    if stated <= 0:  # no count in the header: decode everything, then pick
        frames = read_frames(path)
        picked = pick_frames(len(frames), k)
        return [frames[i] for i in picked], picked, len(frames)
    wanted = set(pick_frames(stated, k))
    kept: list[np.ndarray] = []
    indices: list[int] = []
    n = 0
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0), start=1):
            if n - 1 in wanted:
                kept.append(frame.to_ndarray(format="rgb24"))
                indices.append(n - 1)
    return kept, indices, n


def pick_frames(n: int, k: int = FILMSTRIP_FRAMES) -> list[int]:
    """k frame indices spread evenly from the first to the last (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def scale_factor(height: int, target: int = FILMSTRIP_HEIGHT, width: int | None = None, frames: int = 1,
                 max_width: int | None = None, gap: int = 2) -> int:
    """A whole factor (>= 1), so every source pixel becomes an exact square block: a 32x32 clip is
    shown 4x with sharp pixels instead of a blurred interpolation. With `max_width`, also small
    enough for `frames` frames of `width` pixels (and the gaps) to fit in it."""
    factor = target // max(1, height)
    if max_width is not None and width:
        factor = min(factor, (max_width - gap * (frames - 1)) // max(1, frames * width))
    return max(1, factor)


def upscale_nearest(frame: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole factor: each pixel repeated factor x factor times."""
    return np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)


def filmstrip(frames: list[np.ndarray], k: int = FILMSTRIP_FRAMES, target: int = FILMSTRIP_HEIGHT,
              gap: int = 2, max_width: int | None = FILMSTRIP_WIDTH) -> np.ndarray:
    """k evenly spaced frames side by side, scaled up by a whole factor (strip_factor), `gap`
    white pixels apart."""
    if not frames:
        raise ValueError("no frames to show")
    factor = strip_factor(frames, k, target, gap, max_width)
    picked = [upscale_nearest(frames[i], factor) for i in pick_frames(len(frames), k)]  # k >= len: all
    h = picked[0].shape[0]
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, f in enumerate(picked):
        parts += [spacer, f] if i else [f]
    return np.concatenate(parts, axis=1)


def strip_factor(frames: list[np.ndarray], k: int = FILMSTRIP_FRAMES, target: int = FILMSTRIP_HEIGHT, gap: int = 2,
                 max_width: int | None = FILMSTRIP_WIDTH) -> int:
    """The whole scale factor the filmstrip of these frames uses."""
    h, w = frames[0].shape[:2]
    return scale_factor(h, target, w, len(pick_frames(len(frames), k)), max_width, gap)


@lru_cache(maxsize=1024)
def _frame_width(path: str, mtime_ns: int) -> int:
    import av

    with av.open(path) as container:
        return int(container.streams.video[0].codec_context.width or 0)


def display_width(path: Path, target: int) -> int:
    """The width to show a clip at: the largest whole multiple of its own width up to `target`
    (a 32-pixel clip at 384 = x12, a 40-pixel one at 360 = x9, not a blurred x9.6); `target` for a
    clip wider than that or one whose width cannot be read."""
    try:
        w = _frame_width(str(path), path.stat().st_mtime_ns)
    except Exception:  # an unreadable header: the browser still gets the file, at the default width
        return target
    return w * (target // w) if 0 < w < target else target

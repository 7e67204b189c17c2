"""Reference sets of real clips for set-level metrics (FVD, KVD): a folder of videos or the
procedural shapes domain, streamed in batches, with an id that changes when their content does."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from vdmbench.adapters.base import config_hash
from vdmbench.config.suite import Suite
from vdmbench.core.errors import ConfigError
from vdmbench.core.hashing import folder_fingerprint
from vdmbench.core.video import VIDEO_EXTENSIONS
from vdmbench.core.video_loader import iterate_videos, stack_by_shape
from vdmbench.metrics import ClipBatch


def reference_id(suite: Suite) -> str | None:
    if not suite.reference:
        return None
    content = None
    if suite.reference.get("source") == "folder":  # the folder's files, not just its path
        folder = Path(suite.reference["path"]).expanduser()
        if folder.is_dir():
            content = folder_fingerprint([p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS])
    return config_hash({"reference": suite.reference, "frames": suite.num_frames, "content": content,
                        "size": [suite.height, suite.width], "fps": suite.fps})[:16]


def reference_loader(suite: Suite, batch_size: int, workers: int = 0) -> Callable[[], Iterator[ClipBatch]] | None:
    """The suite's real clips for FVD/KVD, streamed in batches (None: the suite has no reference set)."""
    if not suite.reference:
        return None
    if suite.reference.get("source") == "folder":
        return folder_loader(Path(suite.reference["path"]), suite.num_frames, batch_size, workers,
                             f"suite {suite.name!r}: reference folder")
    ref = suite.reference
    source = ref.get("source")
    if source == "shapes":
        from vdmbench.data import conditioning

        def shapes_clips() -> Iterator[ClipBatch]:
            for frames in _chunks(list(conditioning.reference_clips(suite)), batch_size):
                yield ClipBatch(videos=torch.stack(list(frames)), fps=[suite.fps] * len(frames))

        return shapes_clips
    raise ConfigError(f"suite {suite.name!r}: reference source must be 'shapes' or 'folder', got {source!r}")


def folder_loader(folder: Path, num_frames: int | None, batch_size: int, workers: int = 0,
                  what: str = "reference folder") -> Callable[[], Iterator[ClipBatch]]:
    """Real clips from a folder of videos (`vdmbench score --reference DIR`, a suite's folder
    reference), streamed in batches of equal shape."""
    folder = Path(folder).expanduser()

    def folder_clips() -> Iterator[ClipBatch]:
        if not folder.is_dir():
            raise ConfigError(f"{what} {folder} does not exist")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise ConfigError(f"{what} {folder} has no videos")
        for items in iterate_videos(files, batch_size=batch_size, workers=workers, num_frames=num_frames):
            for _, videos, fps in stack_by_shape(items):
                yield ClipBatch(videos=videos, fps=fps)

    return folder_clips


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]

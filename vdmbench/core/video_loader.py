"""Clips from files, decoded in worker processes while the caller computes (torch DataLoader).

Decoding dominates scoring time on small models; with `workers > 0` it overlaps with metric
compute. Items come back in file order, so results do not depend on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from vdmbench.core.errors import VdmbenchError
from vdmbench.core.video import Video, import_decoders, read_video


@dataclass(frozen=True)
class LoadFailure:
    """A file that could not be read, in place of its Video (iterate_videos(on_error="return"))."""

    path: Path
    error: str


class _ClipFiles(Dataset):
    def __init__(self, paths: Sequence[Path], num_frames: int | None, keep_errors: bool) -> None:
        self.paths = list(paths)
        self.num_frames = num_frames
        self.keep_errors = keep_errors

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Video | LoadFailure]:
        try:
            return i, read_video(self.paths[i], num_frames=self.num_frames)
        except Exception as e:  # any reason one file cannot be read is that file's failure
            if not self.keep_errors:
                raise
            # A string, not the exception: it crosses from a worker process intact.
            message = str(e) if isinstance(e, VdmbenchError) else f"{type(e).__name__}: {e}"
            return i, LoadFailure(self.paths[i], message)


def _as_list(items):
    return items


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # each decoder process uses one core; compute keeps the rest


def iterate_videos(
    paths: Sequence[str | Path],
    *,
    batch_size: int = 8,
    workers: int = 0,
    num_frames: int | None = None,
    on_error: Literal["raise", "return"] = "raise",
) -> Iterator[list[tuple[int, Video | LoadFailure]]]:
    """Yield lists of (index into `paths`, Video), `batch_size` at a time, in order.

    A file that cannot be read raises (on_error="raise"; the iteration ends there) or comes back as
    a LoadFailure in its place (on_error="return"), so one bad file does not stop the others."""
    files = [Path(p) for p in paths]
    if not files:
        return
    workers = min(workers, max(0, len(files) // max(1, batch_size)))  # processes cost ~1 s to start
    if workers:
        import_decoders()  # once here, inherited by the forked workers, instead of once in each
    loader = DataLoader(
        _ClipFiles(files, num_frames, keep_errors=on_error == "return"), batch_size=batch_size, shuffle=False,
        num_workers=workers,
        collate_fn=_as_list, worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
    )
    yield from loader


def stack_by_shape(items: Sequence[tuple[int, Video | LoadFailure]]) -> list[tuple[list[int], torch.Tensor, list[float]]]:
    """Group clips of equal shape into batches [B, T, H, W, 3] (metrics need equal shapes). Load
    failures (on_error="return") are the caller's to report; they are left out here."""
    groups: dict[tuple, list[tuple[int, Video]]] = {}
    for i, v in items:
        if isinstance(v, Video):
            groups.setdefault(tuple(v.frames.shape), []).append((i, v))
    return [([i for i, _ in g], torch.stack([v.frames for _, v in g]), [v.fps for _, v in g]) for g in groups.values()]

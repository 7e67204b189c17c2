"""Clips from files, decoded in worker processes while the caller computes (torch DataLoader).

Decoding dominates scoring time on small models; with `workers > 0` it overlaps with metric
compute. Items come back in file order, so results do not depend on the number of workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from vdmbench.video import Video, read_video


class _ClipFiles(Dataset):
    def __init__(self, paths: Sequence[Path], num_frames: int | None) -> None:
        self.paths = list(paths)
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Video]:
        return i, read_video(self.paths[i], num_frames=self.num_frames)


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
) -> Iterator[list[tuple[int, Video]]]:
    """Yield lists of (index into `paths`, Video), `batch_size` at a time, in order."""
    paths = [Path(p) for p in paths]
    if not paths:
        return
    workers = min(workers, max(0, len(paths) // max(1, batch_size)))  # processes cost ~1 s to start
    loader = DataLoader(
        _ClipFiles(paths, num_frames), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=_as_list, worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
    )
    yield from loader


def stack_by_shape(items: list[tuple[int, Video]]) -> list[tuple[list[int], torch.Tensor, list[float]]]:
    """Group clips of equal shape into batches [B, T, H, W, 3] (metrics need equal shapes)."""
    groups: dict[tuple, list[tuple[int, Video]]] = {}
    for i, v in items:
        groups.setdefault(tuple(v.frames.shape), []).append((i, v))
    return [([i for i, _ in g], torch.stack([v.frames for _, v in g]), [v.fps for _, v in g]) for g in groups.values()]

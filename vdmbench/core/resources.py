"""Compute resources of a run: the device, and how many CPU threads torch may use.

Torch's default intra-op pool takes every core. Beside vdmbench's own writer thread and decoder
processes that oversubscribes a small machine badly: on a busy 2-core machine the reference models
generated 4-5x slower with the default than with one thread. The thread count also changes the
low bits of conv outputs, so it is recorded with every run and replayed by `vdmbench reproduce`.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from vdmbench.core.errors import ConfigError


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a container's cpuset), not the host's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | str | None) -> int:
    """`threads=auto` (or None): every usable core but one, which the writer thread and the
    decoder processes use; at least 1. An explicit count is taken as is."""
    if value in (None, "", "auto"):
        return max(1, usable_cores() - 1)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if isinstance(value, bool) or n < 1 or str(n) != str(value).strip():
        raise ConfigError(f"threads must be 'auto' or a whole number >= 1, got {value!r}")
    return n


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run a block with torch's intra-op pool at `n` threads, restoring the previous count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> str:
    """`auto`: the first CUDA GPU where there is one, else the CPU; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device

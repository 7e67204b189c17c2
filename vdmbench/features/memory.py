"""A feature extractor's out-of-memory failure as a one-line error that says what to change.

ViT-g (VideoMAE-v2, ~1e9 parameters) and ViT-H (V-JEPA) need many GiB for a batch of 16-frame
clips; torch's own message (CUDA's allocator statistics, or the CPU allocator's byte count) does
not say which option to turn. The set-level metrics call their extractor through `extract`."""

from __future__ import annotations

from typing import Protocol

import torch

from vdmbench.core.errors import ConfigError

# Where each kind of device reports running out: torch.OutOfMemoryError (CUDA, torch >= 2.1),
# RuntimeError texts of older versions, MPS and the CPU allocator, and Python's MemoryError.
_OOM_TEXTS = ("out of memory", "can't allocate memory", "defaultcpuallocator", "failed to allocate")


class Extractor(Protocol):
    device: str
    batch_size: int
    precision: str

    def __call__(self, videos: torch.Tensor) -> torch.Tensor: ...


def is_out_of_memory(e: BaseException) -> bool:
    """True for an allocation failure on any device (not for other RuntimeErrors)."""
    if isinstance(e, MemoryError):
        return True
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(e, oom):
        return True
    return isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _OOM_TEXTS)


def out_of_memory_message(backend: str, extractor: Extractor, cause: BaseException) -> str:
    """One line: which backend, device, batch size and precision, and what to lower."""
    bs, precision = int(extractor.batch_size), extractor.precision
    fixes = []
    if bs > 1:
        fixes.append(f"lower batch_size (e.g. batch_size={max(1, bs // 2)})")
    if precision == "fp32":
        fixes.append("use precision fp16 or bf16 (moves the value slightly; labelled)")
    fixes.append("or use a device with more memory" if fixes else "use a device with more memory")
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:160]
    return (f"{backend} features: out of memory on {extractor.device} at batch_size {bs}, precision {precision}: "
            f"{'; '.join(fixes)} ({type(cause).__name__}: {first})")


def extract(extractor: Extractor, videos: torch.Tensor, backend: str) -> torch.Tensor:
    """extractor(videos), with an allocation failure turned into a ConfigError naming the options."""
    try:
        return extractor(videos)
    except Exception as e:  # MemoryError and torch's OOM are Exceptions
        if not is_out_of_memory(e):
            raise
        raise ConfigError(out_of_memory_message(backend, extractor, e)) from e

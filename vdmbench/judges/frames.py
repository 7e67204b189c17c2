"""Which frames of a clip a judge sees, at what size, and how they are encoded.

Frames are picked uniformly over the clip, first and last included (indices
round(linspace(0, T - 1, n)), each once), resized (bilinear, antialiased) so the longest side is
at most `frame_size` (never enlarged), and sent as base64 data URLs. Their fingerprint hashes the
exact pixels sent (shape + bytes of every frame, in order), so it identifies what the judge saw
independently of the encoder's byte output.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from vdmbench.core.errors import MetricInputError


@dataclass(frozen=True)
class Shown:
    """The frames of one clip as the judge receives them. They are encoded only when a call is
    sent (`data_urls`): a rerun answered from the cache needs their hash, not their PNG bytes."""

    indices: tuple[int, ...]
    size: tuple[int, int]  # (height, width) after resizing
    sha256: str  # of the pixels sent
    pixels: tuple[np.ndarray, ...] = field(repr=False, compare=False)
    image_format: str = "png"
    jpeg_quality: int = 90

    @cached_property
    def data_urls(self) -> tuple[str, ...]:
        from PIL import Image

        urls = []
        for pixels in self.pixels:
            buf = io.BytesIO()
            if self.image_format == "jpeg":
                Image.fromarray(pixels).save(buf, format="JPEG", quality=self.jpeg_quality)
                mime = "image/jpeg"
            else:
                Image.fromarray(pixels).save(buf, format="PNG")
                mime = "image/png"
            urls.append(f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}")
        return tuple(urls)


def frame_indices(num_frames: int, wanted: int) -> list[int]:
    """Uniformly spaced indices including the first and the last frame (all frames if fewer)."""
    if num_frames < 1:
        raise MetricInputError("judge: a clip needs at least one frame")
    if wanted >= num_frames:
        return list(range(num_frames))
    picked = np.round(np.linspace(0, num_frames - 1, wanted)).astype(int)
    return sorted({int(i) for i in picked})


def as_uint8_frames(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 [T, H, W, 3]; anything else is refused with what to pass instead."""
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.dtype != np.uint8:
        raise MetricInputError(f"judge: frames must be uint8 [T, H, W, 3] in [0, 255], got {arr.dtype}")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise MetricInputError(f"judge: frames must have shape [T, H, W, 3], got {list(arr.shape)}")
    return arr


def show(frames: torch.Tensor | np.ndarray, *, count: int, frame_size: int, image_format: str = "png",
         jpeg_quality: int = 90) -> Shown:
    """Select and resize a clip's frames for a judge (encoded later, when a call is sent)."""
    from PIL import Image

    arr = as_uint8_frames(frames)
    idx = frame_indices(arr.shape[0], count)
    h, w = arr.shape[1:3]
    scale = min(1.0, frame_size / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    digest = hashlib.sha256()
    sent = []
    for i in idx:
        img = Image.fromarray(np.ascontiguousarray(arr[i]))
        if size != (h, w):
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=None)
        pixels = np.asarray(img)
        sent.append(pixels)
        digest.update(f"{pixels.shape}".encode())
        digest.update(pixels.tobytes())
    return Shown(tuple(idx), size, digest.hexdigest(), tuple(sent), image_format, jpeg_quality)

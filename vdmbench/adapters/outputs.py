"""Normalize what backends return (Video, tensors, arrays, PIL frames) into a uint8 Video."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vdmbench.core.errors import AdapterError
from vdmbench.core.video import Video


def to_video(out: Any, fps: float) -> Video:
    """Accept a Video, or frames [T,H,W,3] as uint8 (0..255) or floats in [0, 1], or a list of
    PIL images / arrays. Anything else, NaN/inf or a wrong shape raises AdapterError."""
    if isinstance(out, Video):
        return out
    if isinstance(out, (list, tuple)) and out and not isinstance(out[0], (int, float)):
        out = np.stack([np.asarray(f) for f in out])
    try:
        x = torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out)
    except Exception as e:
        raise AdapterError(f"cannot turn a {type(out).__name__} into video frames: {e}") from e
    if x.ndim != 4 or x.shape[-1] != 3:
        raise AdapterError(f"expected frames shaped [T, H, W, 3], got {list(x.shape)}")
    try:
        if x.dtype == torch.uint8:
            return Video(x.contiguous(), fps)
        if torch.is_floating_point(x):
            return Video.from_float(x.float(), fps)
    except Exception as e:
        raise AdapterError(str(e)) from e
    raise AdapterError(f"frames must be uint8 or float in [0, 1], got {x.dtype}")

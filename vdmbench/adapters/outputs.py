"""Normalize what backends return (Video, tensors, arrays, PIL frames) into a uint8 Video.

What a backend returns is bounded before anything is copied: a tensor can claim any shape for
free (`tiny.expand(100, 2000, 3500, 3)` holds 3 bytes), and turning it into a Video would
allocate all of it. `check_output_shape` refuses, from the shape alone, frames larger than
SIZE_SLACK times the request in any dimension or than MAX_OUTPUT_BYTES in memory.

A clip within the bounds whose frame count or size differs from the request is kept, and flagged:
`flag_shape_mismatch` adds `notes["shape_mismatch"] = {"requested": [T, H, W], "returned":
[T, H, W]}`, stored with the sample, so no such clip is scored as if it were what was asked for
without a word (videos made elsewhere, e.g. a folder of another resolution, remain usable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vdmbench.core.errors import AdapterError
from vdmbench.core.video import Video

SIZE_SLACK = 4  # an output may be up to 4x the request's frames, height and width
MAX_OUTPUT_BYTES = 4 << 30  # and never more than 4 GiB, whatever the request


def requested_shape(req: Any) -> list[int]:
    """[T, H, W] of a GenerationRequest."""
    return [int(req.num_frames), int(req.height), int(req.width)]


def check_output_shape(shape: Sequence[int], itemsize: int, req: Any | None) -> None:
    """Refuse, from its shape alone, frames that cannot be the requested clip: more than
    SIZE_SLACK x the request in frames, height or width, or more than MAX_OUTPUT_BYTES."""
    dims = [int(d) for d in shape]
    nbytes = math.prod(dims) * max(1, int(itemsize))
    if nbytes > MAX_OUTPUT_BYTES:
        raise AdapterError(
            f"returned frames of shape {dims} ({nbytes / 2**30:.1f} GiB), more than the "
            f"{MAX_OUTPUT_BYTES / 2**30:g} GiB one clip may take; refused before copying them"
        )
    if req is None or len(dims) != 4:
        return
    for what, got, asked in zip(("frames", "height", "width"), dims[:3], requested_shape(req)):
        if got > SIZE_SLACK * asked:
            raise AdapterError(
                f"returned frames of shape {dims} for a request of {asked} {what} "
                f"({requested_shape(req)} as [T, H, W]); more than {SIZE_SLACK}x the request is refused "
                "before copying"
            )


def flag_shape_mismatch(video: Video, req: Any) -> Video:
    """The video, with notes["shape_mismatch"] when its [T, H, W] differ from the request's."""
    got = [video.num_frames, video.height, video.width]
    want = requested_shape(req)
    if got == want:
        return video
    note = {"requested": want, "returned": got}
    if video.notes.get("shape_mismatch") == note:
        return video
    return Video(video.frames, video.fps, {**video.notes, "shape_mismatch": note})


def bounded_video(video: Video, req: Any) -> Video:
    """A Video an adapter returned, checked against the request: frames that are a view (not yet
    materialized, e.g. an `expand`) are bounded by `check_output_shape`; a mismatch is flagged."""
    if not video.frames.is_contiguous():
        check_output_shape(video.frames.shape, video.frames.element_size(), req)
    return flag_shape_mismatch(video, req)


def to_video(out: Any, fps: float, request: Any | None = None) -> Video:
    """Accept a Video, or frames [T,H,W,3] as uint8 (0..255) or floats in [0, 1], or a list of
    PIL images / arrays. Anything else, NaN/inf or a wrong shape raises AdapterError.

    With `request`, the shape is bounded (check_output_shape) before anything is copied, and a
    clip that differs from the request is flagged (flag_shape_mismatch)."""
    if isinstance(out, Video):
        return bounded_video(out, request) if request is not None else out
    if isinstance(out, (list, tuple)) and out and not isinstance(out[0], (int, float)):
        first = out[0] if hasattr(out[0], "shape") else np.asarray(out[0])
        itemsize = first.element_size() if isinstance(first, torch.Tensor) else np.dtype(first.dtype).itemsize
        check_output_shape((len(out), *first.shape), itemsize, request)
        out = np.stack([np.asarray(f) for f in out])
    try:
        arr = out if isinstance(out, torch.Tensor) else np.asarray(out)
        check_output_shape(arr.shape, arr.element_size() if isinstance(arr, torch.Tensor) else arr.itemsize, request)
        x = torch.as_tensor(arr)  # a view where it can be: the bound above comes before any copy
    except AdapterError:
        raise
    except Exception as e:
        raise AdapterError(f"cannot turn a {type(out).__name__} into video frames: {e}") from e
    if x.ndim != 4 or x.shape[-1] != 3:
        raise AdapterError(f"expected frames shaped [T, H, W, 3], got {list(x.shape)}")
    try:
        if x.dtype == torch.uint8:
            video = Video(x.contiguous(), fps)
        elif torch.is_floating_point(x):
            video = Video.from_float(x.float(), fps)
        else:
            raise AdapterError(f"frames must be uint8 or float in [0, 1], got {x.dtype}")
    except AdapterError:
        raise
    except Exception as e:
        raise AdapterError(str(e)) from e
    return flag_shape_mismatch(video, request) if request is not None else video

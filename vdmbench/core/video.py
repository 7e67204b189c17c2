"""The Video type, reading (decord, PyAV fallback), frame selection and writing.

Contract: frames are a uint8 tensor [T, H, W, 3] (RGB) plus fps. Lossless files use libx264rgb
crf 0 (.mp4) or FFV1 (.mkv), whose round trip is bit-exact in decord, PyAV and OpenCV; yuv420p
H.264 is written only as a browser preview because chroma subsampling shifts metric values.
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vdmbench.core import atomic
from vdmbench.core.errors import VideoError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".gif", ".avi", ".mov")
# 4096 x 4096 x 3 bytes per frame is far above any generator's output and well below the
# "tiny GIF that claims 12000x12000" attack; callers can raise it explicitly.
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_FRAMES = 10_000


@dataclass(frozen=True)
class Video:
    """A clip: uint8 RGB frames [T, H, W, 3] and its frame rate; `notes`, what the adapter has to
    say about this clip beside the frames (JSON-able, stored with the sample)."""

    frames: torch.Tensor
    fps: float
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, torch.Tensor):
            raise VideoError(f"Video.frames must be a torch.Tensor, got {type(f).__name__}")
        if f.dtype != torch.uint8:
            raise VideoError(
                f"Video.frames must be uint8 in [0, 255], got {f.dtype}; "
                "convert floats in [0, 1] with (x * 255).round().clamp(0, 255).to(torch.uint8)"
            )
        if f.ndim != 4 or f.shape[-1] != 3:
            raise VideoError(f"Video.frames must have shape [T, H, W, 3], got {list(f.shape)}")
        if f.shape[0] < 1 or f.shape[1] < 1 or f.shape[2] < 1:
            raise VideoError(f"Video.frames is empty: shape {list(f.shape)}")
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise VideoError(f"Video.fps must be a positive number, got {self.fps!r}")
        if not isinstance(self.notes, dict):
            raise VideoError(f"Video.notes must be a dict (JSON-able, stored with the sample), got {type(self.notes).__name__}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @classmethod
    def from_float(cls, frames: torch.Tensor | np.ndarray, fps: float) -> Video:
        """Build from floats in [0, 1] ([T,H,W,3]); NaN/inf or out-of-range values are refused."""
        x = torch.as_tensor(frames)
        if not torch.is_floating_point(x):
            raise VideoError(f"from_float expects a floating tensor, got {x.dtype}")
        if not torch.isfinite(x).all():
            raise VideoError("frames contain NaN or inf; the generator produced invalid output")
        if x.min() < -1e-3 or x.max() > 1 + 1e-3:
            raise VideoError(
                f"from_float expects values in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]"
            )
        return cls((x.clamp(0, 1) * 255).round().to(torch.uint8).contiguous(), float(fps))


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int  # as the container claims (or duration x fps where it has no count); 0 if unknown
    exact_count: bool  # num_frames is the stream's own frame count, not an estimate
    height: int
    width: int
    fps: float
    codec: str


@dataclass(frozen=True)
class Timing:
    """What the file itself says about its frames, read from its packets (demuxed, not decoded):
    how many frames it holds and the frame rate that is shown to the viewer."""

    frames: int  # packets that hold data in the video stream: the frames the file holds
    fps: float  # the header's rate, or the rate of the timestamps where the header has none


def select_indices(
    total: int,
    src_fps: float,
    *,
    num_frames: int | None = None,
    stride: int = 1,
    target_fps: float | None = None,
) -> list[int]:
    """Frame indices to keep: resample to `target_fps` (nearest frame), then stride, then first N."""
    if total <= 0:
        raise VideoError("the video has no frames")
    if stride < 1:
        raise VideoError(f"stride must be >= 1, got {stride}")
    if target_fps is not None:
        if target_fps <= 0:
            raise VideoError(f"target fps must be positive, got {target_fps}")
        # The frame on screen at time i / target_fps is the last one that started by then.
        step = src_fps / target_fps
        n_out = max(1, int(np.floor((total - 1) / step + 1e-9)) + 1)
        idx = [min(total - 1, int(np.floor(i * step + 1e-9))) for i in range(n_out)]
    else:
        idx = list(range(total))
    idx = idx[::stride]
    if num_frames is not None:
        if num_frames < 1:
            raise VideoError(f"num_frames must be >= 1, got {num_frames}")
        if len(idx) < num_frames:
            raise VideoError(
                f"the video has {len(idx)} frames after selection, {num_frames} are needed; "
                "lower num_frames or the stride, or supply longer videos"
            )
        idx = idx[:num_frames]
    return idx


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the container header (no decoding) with PyAV."""
    import av

    path = _existing(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream in this file")
            s = container.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0) or 0.0
            count, exact = int(s.frames or 0), bool(s.frames)
            if not count and fps and container.duration:  # e.g. Matroska stores only a duration
                count = int(round(container.duration / 1e6 * fps))
            return VideoInfo(
                num_frames=count,
                exact_count=exact,
                height=int(s.codec_context.height),
                width=int(s.codec_context.width),
                fps=fps,
                codec=str(s.codec_context.name),
            )
    except VideoError:
        raise
    except Exception as e:  # av.error.* and friends: one clear error
        raise VideoError(f"{path}: cannot open as a video ({type(e).__name__}: {e})") from e


def timing(path: str | os.PathLike, info: VideoInfo | None = None, *, max_frames: int = DEFAULT_MAX_FRAMES) -> Timing:
    """Count the video stream's packets and check their timestamps (demux only, no decoding).

    A decoder given a file whose frames share one timestamp, or whose header claims no frame
    rate, makes frames and rates up (decord returned 8 identical frames at "1 fps" for a file
    claiming 0 fps). Such a file is a VideoError: frames that share a timestamp, or a header
    without a rate and timestamps that give none."""
    import av

    path = _existing(path)
    info = info or probe(path)
    pts: list[int] = []
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                count += 1
                if packet.pts is not None:
                    pts.append(int(packet.pts))
                if count > max_frames:
                    raise VideoError(f"{path}: more than {max_frames} frames; pass max_frames=... to read it anyway")
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(f"{path}: cannot read its packets ({type(e).__name__}: {e})") from e
    shared = sum(n for n in Counter(pts).values() if n > 1)
    pts.sort()
    if shared:
        raise VideoError(
            f"{path}: {shared} of its {count} frames share a timestamp with another frame "
            f"(the header says {info.fps:g} fps); the file does not say when its frames are shown, so "
            "a decoder would duplicate or invent frames: re-encode it at a constant frame rate "
            "(e.g. ffmpeg -i IN -r 8 OUT.mp4)"
        )
    fps = info.fps
    if not (fps > 0 and np.isfinite(fps)):
        span = (pts[-1] - pts[0]) * float(time_base or 0) if len(pts) == count and count >= 2 else 0.0
        if count >= 2 and not span > 0:
            raise VideoError(
                f"{path}: the header claims {info.fps:g} fps and the frames carry no timestamps to "
                "tell the rate; re-encode it at a constant frame rate (e.g. ffmpeg -i IN -r 8 OUT.mp4)"
            )
        fps = (count - 1) / span if count >= 2 else 1.0  # one frame: no rate to show, any is right
    return Timing(frames=count, fps=float(fps))


def _check_not_invented(path: Path, held: Timing, decoded: int, decoder: str) -> None:
    """A decoder returning more frames than the file holds made some up."""
    if held.frames and decoded > held.frames:
        raise VideoError(
            f"{path}: {decoder} returned {decoded} frames but the file holds {held.frames}; "
            "the extra frames are invented by the decoder, not read from the file"
        )


def read_video(
    path: str | os.PathLike,
    *,
    num_frames: int | None = None,
    stride: int = 1,
    target_fps: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    backend: Literal["auto", "decord", "pyav"] = "auto",
) -> Video:
    """Decode a video file into a Video, selecting frames as `select_indices` describes.

    decord is tried first where installed; on any decord failure (GIFs, tiny frames, odd
    containers) PyAV decodes the file instead. Size is checked from the header before decoding,
    and the number of frames decoded is compared with what the container claims and with the
    packets it holds (`timing`): frames that share a timestamp, a header without a frame rate
    that timestamps cannot supply, or more frames decoded than the file holds are a VideoError,
    never scored. The fps is the file's own (header, else timestamps), for either decoder.
    """
    path = _existing(path)
    info = probe(path)
    if info.width * info.height > max_pixels:
        raise VideoError(
            f"{path}: {info.width}x{info.height} frames exceed the limit of {max_pixels} pixels; "
            "pass max_pixels=... to read it anyway"
        )
    if info.num_frames > max_frames:
        raise VideoError(
            f"{path}: claims {info.num_frames} frames, more than the limit of {max_frames}; "
            "pass max_frames=... to read it anyway"
        )
    held = timing(path, info, max_frames=max_frames)  # raises on shared timestamps / no rate
    errors: list[str] = []
    if backend in ("auto", "decord"):
        try:
            return _read_decord(path, info, held, num_frames, stride, target_fps)
        except ImportError as e:
            errors.append(f"decord unavailable ({e})")
            if backend == "decord":
                raise VideoError(f"{path}: decord is not installed; use backend='pyav'") from e
        except VideoError as e:
            if backend == "decord" or any(k in str(e) for k in ("frames after selection", "truncated", "invented")):
                raise
            errors.append(str(e))
        except Exception as e:  # decord's RuntimeError / DECORDError
            errors.append(f"decord: {type(e).__name__}: {e}")
            if backend == "decord":
                raise VideoError(f"{path}: decord cannot decode this file ({e})") from e
    return _read_pyav(path, info, held, num_frames, stride, target_fps, max_frames)


def import_decoders() -> list[str]:
    """Import the decoding libraries (decord, PyAV) now, so that processes forked afterwards (the
    loader's decoder workers) inherit them rather than each importing its own (~0.2-0.6 CPU s a
    worker). Returns the names imported; a missing one is left to read_video's fallback."""
    imported = []
    for name in ("decord", "av"):
        try:
            importlib.import_module(name)
        except Exception:  # not installed, or its shared library cannot load: read_video says why
            continue
        imported.append(name)
    return imported


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p}: no such video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: the file is empty (0 bytes)")
    return p


def _check_complete(path: Path, info: VideoInfo, decoded: int) -> None:
    """Decoders return fewer frames than the container claims, silently, for truncated files."""
    slack = 0 if info.exact_count else 1  # a duration-based estimate can be off by one frame
    if info.num_frames and decoded < info.num_frames - slack:
        raise VideoError(
            f"{path}: decoded {decoded} of the {info.num_frames} frames the container claims; "
            "the file is truncated or corrupt"
        )


def _read_decord(path: Path, info: VideoInfo, held: Timing, num_frames, stride, target_fps) -> Video:
    import decord

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    total = len(vr)
    _check_complete(path, info, total)
    _check_not_invented(path, held, total, "decord")
    fps = held.fps  # what the file says (decord makes up 1.0 where the header has no rate)
    idx = select_indices(total, fps, num_frames=num_frames, stride=stride, target_fps=target_fps)
    frames = vr.get_batch(idx).asnumpy()
    if frames.shape[0] != len(idx) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"{path}: decord returned {frames.shape} for {len(idx)} frames")
    out_fps = (target_fps or fps) / stride
    return Video(torch.from_numpy(np.ascontiguousarray(frames)), out_fps)


def _read_pyav(path: Path, info: VideoInfo, held: Timing, num_frames, stride, target_fps, max_frames) -> Video:
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) > max_frames:
                    raise VideoError(f"{path}: more than {max_frames} frames; pass max_frames=...")
    except VideoError:
        raise
    except Exception as e:
        if not frames:
            raise VideoError(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
        # A decode error after some frames: treat as truncated, checked below.
    if not frames:
        raise VideoError(f"{path}: no frames could be decoded; the file is corrupt or empty")
    _check_complete(path, info, len(frames))
    _check_not_invented(path, held, len(frames), "PyAV")
    fps = held.fps
    idx = select_indices(len(frames), fps, num_frames=num_frames, stride=stride, target_fps=target_fps)
    arr = np.stack([frames[i] for i in idx])
    return Video(torch.from_numpy(arr), (target_fps or fps) / stride)


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def write_video(video: Video, path: str | os.PathLike) -> Path:
    """Write a lossless file (.mp4: libx264rgb crf 0; .mkv: FFV1), atomically.

    The file appears under its final name only when complete (temporary name + rename).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".mp4":
        fmt, codec, pix_fmt, options = "mp4", "libx264rgb", "rgb24", {"crf": "0", "preset": "veryfast"}
    elif ext == ".mkv":
        fmt, codec, pix_fmt, options = "matroska", "ffv1", "bgr0", {}
    else:
        raise VideoError(f"{path}: lossless output needs a .mp4 or .mkv name, got {ext!r}")
    return _encode(video, path, fmt, codec, pix_fmt, options, pad_even=False)


def write_preview(video: Video, path: str | os.PathLike) -> Path:
    """Write a browser-playable H.264 yuv420p .mp4 (lossy: for viewing, never for scoring)."""
    path = Path(path)
    options = {"crf": "18", "preset": "veryfast", "movflags": "+faststart"}
    return _encode(video, path, "mp4", "libx264", "yuv420p", options, pad_even=True)


def _encode(video, path: Path, fmt, codec, pix_fmt, options, *, pad_even: bool) -> Path:
    import av

    frames = video.frames.numpy()
    if pad_even:  # yuv420p needs even sizes; pad by edge replication
        ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
        if ph or pw:
            frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    try:
        with atomic.atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as container:
            stream = container.add_stream(codec, rate=_fps_fraction(video.fps), options=options)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = pix_fmt
            for arr in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except Exception as e:
        if isinstance(e, VideoError):
            raise
        raise VideoError(f"{path}: cannot write video ({type(e).__name__}: {e})") from e
    return path

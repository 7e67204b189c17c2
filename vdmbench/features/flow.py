"""Optical flow between consecutive frames: OpenCV DIS (CPU, no weights) or torchvision RAFT.

Flow convention: `flow[y, x] = (dx, dy)` such that frame_a(x, y) ~ frame_b(x + dx, y + dy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.features.cache import SharedWork

# OpenCV DIS refuses frames under 12 pixels on both sides (cv2.error) and crashes the process
# (segmentation fault, measured with OpenCV 5.0) on frames 8-15 pixels high and wide; 16 is safe.
DIS_MIN_SIDE = 16
RAFT_MIN_SIDE = 128


def check_flow_size(height: int, width: int, min_side: int, flow: str, metric: str | None = None) -> None:
    """A one-line MetricInputError for frames too small for the flow backend (never a cv2 error)."""
    if min(height, width) < min_side:
        who = f"{metric}: " if metric else ""
        raise MetricInputError(
            f"{who}optical flow ({flow}) needs frames of at least {min_side}x{min_side} pixels, "
            f"got {height}x{width}" + ("; use flow: dis" if min_side == RAFT_MIN_SIDE else "")
        )


def dis_flow(a: np.ndarray, b: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> np.ndarray:
    """DIS flow from RGB uint8 frame `a` to `b`: float32 [H, W, 2]. Frames under
    DIS_MIN_SIDE pixels on a side raise MetricInputError."""
    check_flow_size(int(a.shape[0]), int(a.shape[1]), DIS_MIN_SIDE, "OpenCV DIS")
    dis = cv2.DISOpticalFlow_create(preset)  # type: ignore[attr-defined]  # one per call: it keeps state
    ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
    return dis.calc(ga, gb, None)


Points = tuple[np.ndarray, np.ndarray, np.ndarray]  # x map, y map (for cv2.remap), inside the frame


def sample_points(flow: np.ndarray) -> Points:
    """Where x + flow(x) lands: the maps cv2.remap samples at, and whether it lies inside the frame.
    Computed once per flow field when several images are warped along it."""
    h, w = flow.shape[:2]
    mx = np.arange(w, dtype=np.float32) + flow[..., 0]  # broadcast: the pixel grid without a meshgrid
    my = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return mx, my, inside


def warp(image: np.ndarray, flow: np.ndarray, points: Points | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample `image` at x + flow(x) (bilinear); also return where that point lies inside the frame.
    `points`: `sample_points(flow)`, when the caller already has them."""
    mx, my, inside = points if points is not None else sample_points(flow)
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, inside


def occlusion_mask(fw: np.ndarray, bw: np.ndarray, points: Points | None = None) -> np.ndarray:
    """True where the forward flow is reliable: forward-backward consistent and inside the frame.

    Consistency check of Sundaram et al. (2010), as used for warping error by Lai et al. (2018):
    |fw + bw(x + fw)|^2 <= 0.01 (|fw|^2 + |bw(x + fw)|^2) + 0.5. `points`: `sample_points(fw)`."""
    bw_at, inside = warp(bw, fw, points)
    lhs = _square_norm(fw + bw_at)
    rhs = 0.01 * (_square_norm(fw) + _square_norm(bw_at)) + 0.5
    return (lhs <= rhs) & inside


def _square_norm(v: np.ndarray) -> np.ndarray:
    """(v ** 2).sum(-1) for 2-vectors, the same sum without numpy's slow reduction over a length-2 axis."""
    x, y = v[..., 0], v[..., 1]
    return x * x + y * y


@dataclass
class FlowEstimator:
    """Forward and backward flow for every consecutive pair of a clip."""

    backend: str = "dis"  # dis | raft_small | raft_large
    device: str = "cpu"
    weights: str | None = None
    num_flow_updates: int = 12
    info: dict[str, Any] = field(default_factory=dict)
    _raft: Any = None

    def __post_init__(self) -> None:
        if self.backend == "raft":
            self.backend = "raft_large"
        if self.backend == "dis":
            self.info = {"flow": "opencv-dis", "preset": "medium", "opencv": cv2.__version__}
        elif self.backend in ("raft_small", "raft_large"):
            self._raft, self.info = _build_raft(self.backend, self.weights, self.device)
            self.info["num_flow_updates"] = self.num_flow_updates
        else:
            raise ConfigError(f"flow must be dis, raft, raft_small or raft_large, got {self.backend!r}")

    @property
    def min_side(self) -> int:
        """The smallest frame side this backend can take."""
        return DIS_MIN_SIDE if self._raft is None else RAFT_MIN_SIDE

    def check_size(self, height: int, width: int, metric: str | None = None) -> None:
        check_flow_size(height, width, self.min_side, "OpenCV DIS" if self._raft is None else "RAFT", metric)

    @property
    def id(self) -> str:
        """Identifies the flow (backend, weights, settings), for shared per-clip results."""
        if self._raft is None:
            return f"{self.info['flow']}|{self.info['preset']}|{self.info['opencv']}"
        return f"{self.info['flow']}|{self.info['weights_sha256']}|{self.num_flow_updates}|{self.device}"

    def forward_flows(self, clip: torch.Tensor) -> np.ndarray:
        """uint8 [T, H, W, 3] -> forward flows float32 [T-1, H, W, 2] (frame t to t+1)."""
        if self._raft is None:
            frames = clip.cpu().numpy()
            return np.stack([dis_flow(frames[t], frames[t + 1]) for t in range(len(frames) - 1)])
        return self._raft_flow(clip[:-1], clip[1:])

    def backward_flows(self, clip: torch.Tensor) -> np.ndarray:
        """uint8 [T, H, W, 3] -> backward flows float32 [T-1, H, W, 2] (frame t+1 to t)."""
        if self._raft is None:
            frames = clip.cpu().numpy()
            return np.stack([dis_flow(frames[t + 1], frames[t]) for t in range(len(frames) - 1)])
        return self._raft_flow(clip[1:], clip[:-1])

    def pairs(self, clip: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [T, H, W, 3] -> (forward, backward) flows, float32 [T-1, H, W, 2] each."""
        return self.forward_flows(clip), self.backward_flows(clip)

    @torch.no_grad()
    def _raft_flow(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        def prep(x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 3, 1, 2).float().to(self.device) / 127.5 - 1.0

        h, w = a.shape[1:3]
        self.check_size(int(h), int(w))
        ph, pw = (-h) % 8, (-w) % 8  # RAFT needs sizes divisible by 8
        pa = F.pad(prep(a), (0, pw, 0, ph), mode="replicate")
        pb = F.pad(prep(b), (0, pw, 0, ph), mode="replicate")
        flow = self._raft(pa, pb, num_flow_updates=self.num_flow_updates)[-1][:, :, :h, :w]
        return flow.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


class ClipFlows:
    """Flows of whole clips through a run's `SharedWork`: computed once per clip and direction.

    flow_warping_error needs forward and backward flows, motion the forward ones; listed together
    in a suite they share one estimator and every flow field (whichever metric runs first)."""

    def __init__(self, shared: SharedWork, backend: str, device: str, weights: str | None,
                 directions: tuple[str, ...]) -> None:
        self.shared = shared
        self.estimator: FlowEstimator = shared.model(
            ("flow", backend, device, weights), lambda: FlowEstimator(backend, device, weights))
        self.kind = f"flow|{self.estimator.id}"
        self.readers = {d: shared.register(f"{self.kind}|{d}") for d in directions}

    @property
    def info(self) -> dict[str, Any]:
        return self.estimator.info

    def check_size(self, videos: torch.Tensor, metric: str) -> None:
        """Raise `metric`'s one-line MetricInputError if [B, T, H, W, 3] frames are too small."""
        self.estimator.check_size(int(videos.shape[2]), int(videos.shape[3]), metric)

    def forward(self, videos: torch.Tensor) -> list[np.ndarray]:
        """uint8 [B, T, H, W, 3] -> per clip, forward flows float32 [T-1, H, W, 2]."""
        return self.shared.per_clip(f"{self.kind}|fw", self.readers["fw"], videos,
                                    lambda idx: [self.estimator.forward_flows(videos[i]) for i in idx])

    def backward(self, videos: torch.Tensor) -> list[np.ndarray]:
        """uint8 [B, T, H, W, 3] -> per clip, backward flows float32 [T-1, H, W, 2]."""
        return self.shared.per_clip(f"{self.kind}|bw", self.readers["bw"], videos,
                                    lambda idx: [self.estimator.backward_flows(videos[i]) for i in idx])


def _build_raft(name: str, weights: str | None, device: str) -> tuple[Any, dict[str, Any]]:
    from torchvision.models import optical_flow

    from vdmbench.features import weights as W

    r = W.resolve(W.REGISTRY[name], weights)
    model = getattr(optical_flow, name)(weights=None)
    state = W.load_state_dict(r.path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise W.WeightsError(f"{r.path}: not torchvision {name} weights ({str(e).splitlines()[0]})") from e
    info = {"flow": f"torchvision-{name}", "weights": str(r.path), "weights_sha256": r.sha256, "weights_pinned": r.pinned}
    return model.eval().to(device), info

"""Shapes adherence: does a clip show the color, shape and motion its shapes-domain prompt asks for?

Exact and weight-free, because the shapes domain is drawn from a known palette and known
geometry (vdmbench.data.shapes):
1. segmentation: a pixel is foreground if it is saturated (backgrounds are dark and gray); each
   foreground pixel takes the nearest palette color;
2. color: the prompt's color is found if it is among the k most frequent foreground colors
   (k = number of objects the prompt names) and covers a minimum area;
3. shape: per frame, the largest connected component of that color is compared (IoU) with each
   shape template fitted to its bounding box; majority vote over frames (blobs too small, or
   fitting no template with IoU >= 0.6, do not vote: noise never passes for a shape);
4. direction: the component's centroid is tracked over frames, a least-squares line gives the
   velocity; below a speed threshold it is "still", else the nearest of the 8 compass directions.
Each attribute scores 1 (agrees with the prompt) or 0 per object, averaged over the objects the
prompt names; `shapes_adherence` is the mean of the three. On real procedural clips every
attribute scores >= 0.95 (tests/test_shapes_adherence.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from vdmbench.core.errors import MetricInputError
from vdmbench.data import shapes as S
from vdmbench.metrics.base import ClipBatch, Output, PerSampleMetric

_PALETTE = np.array(list(S.COLORS.values()), dtype=np.float64)
_COLOR_NAMES = list(S.COLORS)
MIN_SATURATION = 60  # max(rgb) - min(rgb); backgrounds are gray (0), palette colors >= 150
MIN_VALUE = 90
MIN_AREA_FRACTION = 0.004  # of all pixels of the clip, for a color to count as present
STILL_SPEED = 0.02  # fraction of min(H, W) per frame; real moving shapes move >= ~0.03
# A blob smaller than this (fraction of min(H, W)^2; the smallest real shape covers ~0.04) or
# fitting no template well is not a shape: scattered noise must not vote for one by chance.
MIN_BLOB_FRACTION = 0.015
MIN_IOU = 0.6


@dataclass
class Track:
    color: str
    shape: str | None
    direction: str | None
    velocity: tuple[float, float] | None  # pixels per frame (x, y)
    frames_found: int


def segment(frames: np.ndarray) -> np.ndarray:
    """int [T, H, W]: palette index of each saturated pixel, -1 for background."""
    f = frames.astype(np.float64)
    sat = f.max(-1) - f.min(-1)
    fg = (sat >= MIN_SATURATION) & (f.max(-1) >= MIN_VALUE)
    d = ((f[..., None, :] - _PALETTE) ** 2).sum(-1)  # [T, H, W, P]
    labels = d.argmin(-1)
    return np.where(fg, labels, -1)


def classify_shape(mask: np.ndarray) -> str | None:
    """The shape template with the highest IoU, fitted to the mask's bounding box."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(xs) < max(4, MIN_BLOB_FRACTION * min(h, w) ** 2):
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1  # pixel-edge extents
    cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    candidates = {
        "circle": (cx, cy, (half_w + half_h) / 2),
        "square": (cx, cy, (half_w + half_h) / 2 / 0.86),
        "diamond": (cx, cy, (half_w + half_h) / 2 / 1.1),
        # apex at y0 = cy - r, base at y1 = cy + 0.8 r: height 1.8 r, width 2 r
        "triangle": (cx, y0 + (y1 - y0) / 1.8, (half_w + (y1 - y0) / 1.8) / 2),
    }
    best, best_iou = None, -1.0
    for name, (sx, sy, r) in candidates.items():
        for dr in (-0.5, 0.0, 0.5):  # pixel quantization of the bounding box: try nearby radii
            tmpl = S.shape_mask(name, sx, sy, max(r + dr, 0.5), h, w)
            inter = np.logical_and(tmpl, mask).sum()
            iou = inter / max(np.logical_or(tmpl, mask).sum(), 1)
            if iou > best_iou:
                best, best_iou = name, iou
    return best if best_iou >= MIN_IOU else None


def classify_direction(vx: float, vy: float, side: int) -> str:
    if math.hypot(vx, vy) < STILL_SPEED * side:
        return "still"
    best, best_cos = "still", -2.0
    for name, (dx, dy) in S.DIRECTIONS.items():
        if name == "still":
            continue
        c = (vx * dx + vy * dy) / (math.hypot(vx, vy) * math.hypot(dx, dy))
        if c > best_cos:
            best, best_cos = name, c
    return best


def track(frames: np.ndarray, labels: np.ndarray, color: str) -> Track:
    """Shape and motion of the largest blob of `color` in each frame."""
    ci = _COLOR_NAMES.index(color)
    t_len, h, w = labels.shape
    centers, votes = [], []
    for t in range(t_len):
        m = labels[t] == ci
        if m.sum() < 4:
            continue
        comp, n = ndimage.label(m)
        if n > 1:
            sizes = ndimage.sum(m, comp, index=range(1, n + 1))
            m = comp == (1 + int(np.argmax(sizes)))
        ys, xs = np.nonzero(m)
        centers.append((t, xs.mean(), ys.mean()))
        # Frames where the blob touches the border are clipped: no shape vote from them.
        if xs.min() > 0 and ys.min() > 0 and xs.max() < w - 1 and ys.max() < h - 1:
            votes.append(classify_shape(m))
    found = [v for v in votes if v is not None]
    shape = max(sorted(set(found)), key=found.count) if found else None
    velocity = direction = None
    if len(centers) >= 2:
        c = np.array(centers)
        tt = c[:, 0] - c[:, 0].mean()
        vx = float((tt * (c[:, 1] - c[:, 1].mean())).sum() / (tt**2).sum())
        vy = float((tt * (c[:, 2] - c[:, 2].mean())).sum() / (tt**2).sum())
        velocity = (vx, vy)
        direction = classify_direction(vx, vy, min(h, w))
    return Track(color, shape, direction, velocity, len(centers))


def score_clip(frames: torch.Tensor | np.ndarray, prompt: str) -> dict[str, float]:
    """Per-attribute agreement in [0, 1] of one clip with its prompt."""
    wanted = S.parse_caption(prompt)
    if not wanted:
        raise MetricInputError(f"shapes_adherence: prompt {prompt!r} names no shape, color or direction")
    for obj in wanted:
        missing = [k for k in ("color", "shape", "direction") if obj[k] is None]
        if missing:
            raise MetricInputError(
                f"shapes_adherence: prompt {prompt!r} does not say the {', '.join(missing)} of every object; "
                "the metric needs all three (e.g. 'a red circle moving left')"
            )
    f = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    labels = segment(f)
    counts = np.bincount(labels[labels >= 0].ravel(), minlength=len(_COLOR_NAMES))
    present = [i for i in np.argsort(-counts, kind="stable") if counts[i] >= MIN_AREA_FRACTION * labels.size]
    top = {_COLOR_NAMES[i] for i in present[: len(wanted)]}
    sums = {"color": 0.0, "shape": 0.0, "direction": 0.0}
    for obj in wanted:
        if obj["color"] in top:
            sums["color"] += 1
            tr = track(f, labels, str(obj["color"]))
        elif present:  # wrong color: judge shape and motion on the most prominent object instead
            tr = track(f, labels, _COLOR_NAMES[present[0]])
        else:
            continue  # nothing drawn at all: every attribute fails
        sums["shape"] += float(tr.shape == obj["shape"])
        sums["direction"] += float(tr.direction == obj["direction"])
    n = len(wanted)
    out = {k: v / n for k, v in sums.items()}
    out["adherence"] = (out["color"] + out["shape"] + out["direction"]) / 3
    return out


class ShapesAdherence(PerSampleMetric):
    name = "shapes_adherence"
    outputs = (
        Output("shapes_adherence", higher_is_better=True, range=(0.0, 1.0),
               description="mean of color, shape and direction agreement with the prompt"),
        Output("shapes_color", higher_is_better=True, range=(0.0, 1.0), description="the prompt's colors are drawn"),
        Output("shapes_shape", higher_is_better=True, range=(0.0, 1.0), description="the prompt's shapes are drawn"),
        Output("shapes_direction", higher_is_better=True, range=(0.0, 1.0),
               description="the objects move in the prompt's directions"),
    )
    inputs = frozenset({"prompts"})
    min_frames = 2  # a direction needs at least two frames

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        rows = [score_clip(v, p) for v, p in zip(videos, batch.prompts)]
        return {
            "shapes_adherence": torch.tensor([r["adherence"] for r in rows], dtype=torch.float64),
            "shapes_color": torch.tensor([r["color"] for r in rows], dtype=torch.float64),
            "shapes_shape": torch.tensor([r["shape"] for r in rows], dtype=torch.float64),
            "shapes_direction": torch.tensor([r["direction"] for r in rows], dtype=torch.float64),
        }


METRICS = [ShapesAdherence]

"""The "shapes" domain: procedural text-to-video clips with captions and exact ground truth.

A scene is one or two flat-colored shapes (circle, square, triangle, diamond) moving in a straight
line (8 directions, or still) over a plain or dark textured background. Everything is derived
from an integer seed, and a scene is resolution-free (sizes and positions are fractions of the
frame), so it renders at any size and frame count. Rendering is exact: a pixel belongs to a shape
iff its center lies inside it, so masks and centers are ground truth, not estimates.

    scene = sample_scene(np.random.default_rng(0))
    clip = render(scene, num_frames=8, height=32, width=32)   # clip.frames uint8 [T, H, W, 3]
    clip.caption                                              # "a red circle moving left"

Seeds are split into independent streams (`TRAIN`, `HELDOUT`, `PROMPT`), so held-out sets never
overlap the training stream that has the same base seed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import torch

# Saturated colors only, so a shape separates from the dark, gray backgrounds by saturation.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 50),
    "purple": (165, 70, 215),
    "orange": (245, 140, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
# Diameter as a fraction of min(height, width).
SIZES: dict[str, float] = {"small": 0.24, "medium": 0.30, "large": 0.38}
_S = math.sqrt(0.5)
DIRECTIONS: dict[str, tuple[float, float]] = {  # unit (dx, dy) in image coordinates (y down)
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up-left": (-_S, -_S),
    "up-right": (_S, -_S),
    "down-left": (-_S, _S),
    "down-right": (_S, _S),
    "still": (0.0, 0.0),
}
BACKGROUNDS: tuple[str, ...] = ("plain", "noise", "stripes", "checker")
SPEED = 0.06  # fraction of min(H, W) per frame; lowered for long clips so shapes stay in frame
MARGIN = 1.0  # pixels kept free between a shape and the frame's border

# Independent seed streams (the second word of the numpy SeedSequence entropy).
TRAIN, HELDOUT, PROMPT, REFERENCE = 0, 1, 2, 3


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    direction: str
    start: tuple[float, float] = (0.5, 0.5)  # where in the allowed range the path starts, in [0, 1]


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]
    background: str = "plain"
    background_seed: int = 0
    size_in_caption: bool = False

    @property
    def caption(self) -> str:
        return caption(self)


@dataclass
class Clip:
    """A rendered scene: frames plus exact per-frame ground truth."""

    frames: torch.Tensor  # uint8 [T, H, W, 3]
    masks: torch.Tensor  # bool [T, K, H, W], one per object (visible pixels: later objects occlude)
    centers: torch.Tensor  # float64 [T, K, 2], (x, y) in pixels, of the full (unoccluded) shape
    scene: Scene
    caption: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def vocabulary() -> list[str]:
    """Every word a generated caption can contain (the reference text encoder's vocabulary)."""
    words = ["a", "an", "and", "moving", "standing"] + list(COLORS) + list(SHAPES) + list(SIZES)
    words += [d for d in DIRECTIONS]
    return sorted(set(words))


def _object_phrase(o: ShapeObject, with_size: bool) -> str:
    size = f"{o.size} " if with_size else ""
    motion = "standing still" if o.direction == "still" else f"moving {o.direction}"
    words = f"{size}{o.color} {o.shape} {motion}"
    return ("an " if words[0] in "aeiou" else "a ") + words


def caption(scene: Scene) -> str:
    return " and ".join(_object_phrase(o, scene.size_in_caption) for o in scene.objects)


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(stream), int(index)])


def sample_object(rng: np.random.Generator) -> ShapeObject:
    return ShapeObject(
        shape=str(rng.choice(SHAPES)),
        color=str(rng.choice(list(COLORS))),
        size=str(rng.choice(list(SIZES))),
        direction=str(rng.choice(list(DIRECTIONS))),
        start=(float(rng.random()), float(rng.random())),
    )


def sample_scene(
    rng: np.random.Generator, *, second_object_p: float = 0.15, textured_p: float = 0.2
) -> Scene:
    """A random scene. The defaults keep most clips simple, which small models learn fastest."""
    objs = [sample_object(rng)]
    if rng.random() < second_object_p:
        second = sample_object(rng)
        while second.color == objs[0].color:  # two shapes of one color could not be told apart
            second = replace(second, color=str(rng.choice(list(COLORS))))
        objs.append(second)
    background = str(rng.choice(BACKGROUNDS[1:])) if rng.random() < textured_p else "plain"
    return Scene(
        objects=tuple(objs),
        background=background,
        background_seed=int(rng.integers(0, 2**31 - 1)),
        size_in_caption=bool(rng.random() < 0.5),
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def shape_mask(shape: str, cx: float, cy: float, radius: float, height: int, width: int) -> np.ndarray:
    """bool [H, W]: pixels whose centers lie inside `shape` centered at (cx, cy)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx, dy = xs - cx, ys - cy
    r = radius
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":  # a bit smaller than its bounding circle, so areas are comparable
        return (np.abs(dx) <= 0.86 * r) & (np.abs(dy) <= 0.86 * r)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if shape == "triangle":  # pointing up: apex (0, -r), base at y = 0.8 r from x = -r to r
        inside_base = dy <= 0.8 * r
        # The two slanted sides: |dx| <= r * (dy + r) / (1.8 r)
        inside_sides = np.abs(dx) <= (dy + r) / 1.8
        return inside_base & inside_sides
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def _background(kind: str, seed: int, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: dark and gray, so saturated shapes stand out from it."""
    if kind == "plain":
        return np.zeros((height, width, 3), np.uint8)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    if kind == "noise":  # smooth noise: a coarse random grid upsampled bilinearly
        g = rng.uniform(15, 75, size=(5, 5))
        yi = np.linspace(0, 4, height)
        xi = np.linspace(0, 4, width)
        y0, x0 = np.clip(yi.astype(int), 0, 3), np.clip(xi.astype(int), 0, 3)
        fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
        v = (
            g[y0][:, x0] * (1 - fy) * (1 - fx)
            + g[y0 + 1][:, x0] * fy * (1 - fx)
            + g[y0][:, x0 + 1] * (1 - fy) * fx
            + g[y0 + 1][:, x0 + 1] * fy * fx
        )
    elif kind == "stripes":
        period = max(4, int(round(min(height, width) / rng.integers(3, 6))))
        v = np.where(((xs + ys) // (period // 2)) % 2 == 0, 25.0, 60.0)
    elif kind == "checker":
        cell = max(2, int(round(min(height, width) / rng.integers(4, 8))))
        v = np.where(((xs // cell) + (ys // cell)) % 2 == 0, 30.0, 55.0)
    else:
        raise ValueError(f"unknown background {kind!r}; known: {', '.join(BACKGROUNDS)}")
    return np.repeat(v[..., None], 3, axis=2).round().astype(np.uint8)


def trajectory(obj: ShapeObject, num_frames: int, height: int, width: int) -> tuple[np.ndarray, float]:
    """Centers float64 [T, 2] (x, y) in pixels and the radius: a straight path kept in frame."""
    side = min(height, width)
    radius = SIZES[obj.size] * side / 2
    dx, dy = DIRECTIONS[obj.direction]
    speed = SPEED * side
    if num_frames > 1:  # long clips move slower rather than leave the frame
        room = min(width, height) - 2 * radius - 2 * MARGIN
        speed = min(speed, max(room, 0.0) / (num_frames - 1))
    out = np.zeros((num_frames, 2))
    for axis, (v, extent) in enumerate(((dx, width), (dy, height))):
        travel = v * speed * (num_frames - 1)
        lo = radius + MARGIN - min(travel, 0.0)
        hi = extent - radius - MARGIN - max(travel, 0.0)
        if hi < lo:  # frame too small for this shape: center it
            lo = hi = extent / 2
        c0 = lo + obj.start[axis] * (hi - lo)
        out[:, axis] = c0 + v * speed * np.arange(num_frames)
    return out, radius


def render(scene: Scene, num_frames: int, height: int, width: int) -> Clip:
    """Draw a scene: uint8 frames [T, H, W, 3], visible masks [T, K, H, W], centers [T, K, 2]."""
    if num_frames < 1 or height < 4 or width < 4:
        raise ValueError(f"cannot render {num_frames} frames of {height}x{width} (need >= 1 frame, >= 4x4)")
    bg = _background(scene.background, scene.background_seed, height, width)
    k = len(scene.objects)
    frames = np.repeat(bg[None], num_frames, axis=0)
    masks = np.zeros((num_frames, k, height, width), bool)
    centers = np.zeros((num_frames, k, 2))
    paths = [trajectory(o, num_frames, height, width) for o in scene.objects]
    for t in range(num_frames):
        for j, (obj, (path, radius)) in enumerate(zip(scene.objects, paths)):
            m = shape_mask(obj.shape, path[t, 0], path[t, 1], radius, height, width)
            masks[t, :j] &= ~m  # later objects occlude earlier ones
            masks[t, j] = m
            frames[t][m] = COLORS[obj.color]
            centers[t, j] = path[t]
    return Clip(
        frames=torch.from_numpy(frames),
        masks=torch.from_numpy(masks),
        centers=torch.from_numpy(centers),
        scene=scene,
        caption=scene.caption,
    )


# ---------------------------------------------------------------------------------------------
# Captions -> scenes (so a suite prompt can be rendered as ground truth)

_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)?")


def parse_caption(text: str) -> list[dict[str, str | None]]:
    """Per object clause ("... and a ..."): {shape, color, size, direction}, None where unsaid.

    Accepts "up left", "upper left", "up-left" and "left up" for diagonals, and "still" /
    "standing still" / "not moving" for still shapes.
    """
    clauses = re.split(r"\band\s+(?:an?|the)\b", text.lower())
    objects: list[dict[str, str | None]] = []
    for clause in clauses:
        words = _WORD_RE.findall(clause.replace("upper", "up").replace("lower", "down"))
        obj: dict[str, str | None] = {"shape": None, "color": None, "size": None, "direction": None}
        vertical = horizontal = None
        for w in words:
            if w in SHAPES:
                obj["shape"] = w
            elif w in COLORS:
                obj["color"] = w
            elif w in SIZES or w in ("big", "tiny"):
                obj["size"] = {"big": "large", "tiny": "small"}.get(w, w)
            elif w in DIRECTIONS and "-" in w:
                obj["direction"] = w
            elif w in ("up", "down"):
                vertical = w
            elif w in ("left", "right"):
                horizontal = w
            elif w in ("still", "static", "stationary", "not"):
                obj["direction"] = "still"
        if obj["direction"] is None and (vertical or horizontal):
            obj["direction"] = "-".join(x for x in (vertical, horizontal) if x)
        if any(v is not None for v in obj.values()):
            objects.append(obj)
    return objects


def scene_from_prompt(text: str, seed: int, params: dict[str, Any] | None = None) -> Scene:
    """The scene a prompt describes; what the prompt leaves open is drawn from `seed`.

    `params` (a suite prompt's params) overrides anything: {background: stripes,
    objects: [{shape: circle, color: red, direction: left, size: small, start: [0.2, 0.5]}]}.
    """
    params = dict(params or {})
    rng = _rng(seed, PROMPT, 0)
    parsed = parse_caption(text) or [{}]
    overrides = params.get("objects") or []
    objs = []
    for i in range(max(len(parsed), len(overrides))):
        drawn = sample_object(rng)
        said = {k: v for k, v in (parsed[i] if i < len(parsed) else {}).items() if v is not None}
        over = dict(overrides[i]) if i < len(overrides) else {}
        if "start" in over:
            over["start"] = tuple(float(s) for s in over["start"])
        obj = replace(drawn, **{**said, **over})  # params override what the text says
        _check_object(obj)
        objs.append(obj)
    size_said = any(p.get("size") for p in parsed)
    return Scene(
        objects=tuple(objs),
        background=str(params.get("background", "plain")),
        background_seed=int(params.get("background_seed", rng.integers(0, 2**31 - 1))),
        size_in_caption=size_said,
    )


def _check_object(o: ShapeObject) -> None:
    for what, value, known in (
        ("shape", o.shape, SHAPES),
        ("color", o.color, COLORS),
        ("size", o.size, SIZES),
        ("direction", o.direction, DIRECTIONS),
    ):
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")


# ---------------------------------------------------------------------------------------------
# Data sets


def training_stream(
    seed: int, num_frames: int, height: int, width: int, batch_size: int, *, start: int = 0, **scene_kw: Any
) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """Endless batches (uint8 [B, T, H, W, 3], captions); sample i depends only on (seed, i).

    `start` skips ahead (a resumed training run continues the same stream without replaying it).
    """
    i = start
    while True:
        clips = [
            render(sample_scene(_rng(seed, TRAIN, i + b), **scene_kw), num_frames, height, width)
            for b in range(batch_size)
        ]
        i += batch_size
        yield torch.stack([c.frames for c in clips]), [c.caption for c in clips]


def heldout_set(n: int, seed: int, num_frames: int, height: int, width: int, **scene_kw: Any) -> list[Clip]:
    """A fixed evaluation set, disjoint (as a seed stream) from the training stream."""
    return [render(sample_scene(_rng(seed, HELDOUT, i), **scene_kw), num_frames, height, width) for i in range(n)]


def reference_clips(n: int, seed: int, num_frames: int, height: int, width: int) -> Iterator[torch.Tensor]:
    """n real clips (uint8 [T, H, W, 3]) for FVD/KVD reference sets (`reference: {source: shapes}`)."""
    for i in range(n):
        yield render(sample_scene(_rng(seed, REFERENCE, i)), num_frames, height, width).frames


def render_prompt(text: str, seed: int, num_frames: int, height: int, width: int,
                  params: dict[str, Any] | None = None) -> Clip:
    """Ground truth for a suite prompt: the scene it describes, rendered."""
    return render(scene_from_prompt(text, seed, params), num_frames, height, width)

"""Tiny procedural clips for metric tests: colored squares moving over a smooth texture.

Kept here (not vdmbench.data) so metric tests do not depend on the dataset module."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def texture(h: int, w: int, rng: np.random.Generator, cells: int = 8) -> np.ndarray:
    """Smooth random RGB texture in [0, 255] (bilinear upsampling of coarse noise)."""
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, cells, cells)).astype(np.float32))
    fine = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 255)
    return fine[0].permute(1, 2, 0).numpy()


def moving_squares(n: int, t: int = 16, h: int = 64, w: int = 64, seed: int = 0, speed: float = 2.5,
                   pan: float = 0.0) -> torch.Tensor:
    """uint8 [n, t, h, w, 3]: one or two squares per clip moving at constant velocity; with `pan`
    the background also slides (a camera pan) by up to `pan` pixels per frame."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, t, h, w, 3), dtype=np.uint8)
    for i in range(n):
        margin = int(np.ceil(pan * t)) + 1
        big = texture(h + 2 * margin, w + 2 * margin, rng)
        pan_v = rng.uniform(-pan, pan, 2)
        squares = []
        for _ in range(rng.integers(1, 3)):
            size = int(rng.integers(h // 6, h // 3))
            pos = rng.uniform(0, [h - size, w - size])
            vel = rng.uniform(-speed, speed, 2)
            squares.append((size, pos, vel, rng.uniform(0, 255, 3)))
        for k in range(t):
            oy, ox = (margin + k * pan_v).round().astype(int)
            frame = big[oy:oy + h, ox:ox + w].copy()
            for size, pos, vel, color in squares:
                y, x = np.clip(pos + k * vel, 0, [h - size, w - size]).astype(int)
                frame[y:y + size, x:x + size] = color
            out[i, k] = frame.round().clip(0, 255).astype(np.uint8)
    return torch.from_numpy(out)


def blur(videos: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    b, t, h, w, c = videos.shape
    x = videos.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w).float()
    k = int(2 * round(3 * sigma) + 1)
    y = gaussian_blur(x, [k, k], [sigma, sigma]).round().clamp(0, 255).to(torch.uint8)
    return y.reshape(b, t, c, h, w).permute(0, 1, 3, 4, 2).contiguous()


def noise(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, like.shape, generator=g, dtype=torch.uint8)


def shuffle_frames(videos: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return videos[:, torch.randperm(videos.shape[1], generator=g)]


def write_folder(path, clips: torch.Tensor, fps: float = 8.0):
    """A folder of mp4 files c0.mp4, c1.mp4, ... of uint8 [N, T, H, W, 3] clips (for `vdmbench score`)."""
    from vdmbench.core.video import Video, write_video

    path.mkdir()
    for i, c in enumerate(clips):
        write_video(Video(c, fps), path / f"c{i}.mp4")
    return path

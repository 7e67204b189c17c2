"""An independent re-computation of VBench's MotionSmoothness.motion_score (vbench/motion_smoothness.py
with AMT's utils: img2tensor, InputPadder, tensor2img), written from VBench's code with numpy and
cv2 where VBench uses them, one frame pair at a time. Shared by the AMT and motion_smoothness tests;
it uses no vdmbench helper, only the network it is given."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def vbench_interpolate(net: torch.nn.Module, frames_uint8: np.ndarray, scale: float) -> list[np.ndarray]:
    """The interpolated frames (VBench's odd outputs) between consecutive `frames_uint8` [N, H, W, 3]."""
    inputs = [torch.tensor(f).permute(2, 0, 1).unsqueeze(0) / 255.0 for f in frames_uint8]  # img2tensor
    divisor = int(16 / scale)
    ht, wd = inputs[0].shape[-2:]
    pad_ht = (((ht // divisor) + 1) * divisor - ht) % divisor
    pad_wd = (((wd // divisor) + 1) * divisor - wd) % divisor
    pad = [pad_wd // 2, pad_wd - pad_wd // 2, pad_ht // 2, pad_ht - pad_ht // 2]
    inputs = [F.pad(x, pad, mode="replicate") for x in inputs]
    embt = torch.tensor(1 / 2).float().view(1, 1, 1, 1)
    outputs = [inputs[0]]
    for a, b in itertools.pairwise(inputs):
        with torch.no_grad():
            outputs += [net(a, b, embt, scale_factor=scale), b]
    h, w = outputs[0].shape[-2:]
    outputs = [o[..., pad[2]:h - pad[3], pad[0]:w - pad[1]] for o in outputs]
    imgs = [(o * 255.0).squeeze(0).permute(1, 2, 0).numpy().clip(0, 255).astype(np.uint8) for o in outputs]
    return imgs[1::2]


def vbench_score_from_frames(frames: np.ndarray, interpolated: list[np.ndarray]) -> float:
    """vfi_score and the normalization: odd real frames against the interpolated ones."""
    ori = list(frames[1::2])
    scores = [np.mean(cv2.absdiff(ori[i], interpolated[i])) for i in range(len(interpolated))]
    return float((255.0 - np.mean(np.array(scores))) / 255.0)


def vbench_motion_score(net: torch.nn.Module, frames: np.ndarray, scale: float = 1.0) -> float:
    """VBench's per-video motion_smoothness of uint8 [T, H, W, 3] (RGB, all frames)."""
    kept = frames[0::2]
    assert len(kept) > 1
    return vbench_score_from_frames(frames, vbench_interpolate(net, kept, scale))

"""The per-sample metrics' speed work (issue #21) leaves their values unchanged, bit for bit."""

import cv2
import numpy as np
import pytest

from tests._clips import moving_squares
from vdmbench.features.flow import dis_flow, occlusion_mask, sample_points, warp
from vdmbench.metrics.flow import warping_error


def _old_warp(image, flow):
    """warp() before #21: a meshgrid per call."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)


def _old_warping_error(f1, f2, fw, bw):
    """The formula as written before #21: numpy reductions over the vector and channel axes."""
    bw_at, inside = _old_warp(bw, fw)
    lhs = ((fw + bw_at) ** 2).sum(-1)
    rhs = 0.01 * ((fw ** 2).sum(-1) + (bw_at ** 2).sum(-1)) + 0.5
    mask = (lhs <= rhs) & inside
    warped, _ = _old_warp(f2.astype(np.float32) / 255.0, fw)
    sq = ((warped - f1.astype(np.float32) / 255.0) ** 2).mean(-1).astype(np.float64)
    used = int(mask.sum())
    return (float(sq.mean()), 0.0) if used == 0 else (float((sq * mask).sum() / used), used / mask.size)


def test_warping_error_bit_identical_to_the_old_formula():
    clip = moving_squares(1, 6, 48, 64, seed=3, pan=1.5)[0].numpy()  # pan: real occlusions at the border
    fractions = []
    for t in range(len(clip) - 1):
        a, b = clip[t], clip[t + 1]
        fw, bw = dis_flow(a, b), dis_flow(b, a)
        new, old = warping_error(a, b, fw, bw), _old_warping_error(a, b, fw, bw)
        assert new == old  # exact: the same float operations in the same order
        fractions.append(new[1])
        assert np.array_equal(occlusion_mask(fw, bw), occlusion_mask(fw, bw, sample_points(fw)))
        for got, want in zip(warp(b, fw), _old_warp(b, fw)):
            assert np.array_equal(got, want)
    assert min(fractions) > 0 and max(fractions) < 1  # the mask did mask something: the test can see it


def test_warping_error_sensitive_to_a_wrong_flow():
    clip = moving_squares(1, 2, 48, 48, seed=5, speed=4.0)[0].numpy()
    a, b = clip
    fw, bw = dis_flow(a, b), dis_flow(b, a)
    right = warping_error(a, b, fw, bw)[0]
    wrong = warping_error(a, b, np.zeros_like(fw), np.zeros_like(bw))[0]
    assert right < wrong


def _old_motion_stats(flows, height, width):
    mag = np.linalg.norm(flows.astype(np.float64), axis=-1).reshape(len(flows), -1) / np.hypot(height, width)
    k = max(1, int(np.ceil(0.05 * mag.shape[1])))
    return float(mag.mean()), float(np.sort(mag, axis=1)[:, -k:].mean(axis=1).mean())


def test_motion_stats_bit_identical_to_the_old_formula():
    from vdmbench.metrics.motion import motion_stats

    clip = moving_squares(1, 5, 40, 56, seed=2, pan=1.0)[0].numpy()
    flows = np.stack([dis_flow(clip[t], clip[t + 1]) for t in range(len(clip) - 1)])
    assert motion_stats(flows, 40, 56) == _old_motion_stats(flows, 40, 56)
    # Known answer: one pixel in 20 moves by (3, 4) -> |v| = 5; the top 5% are exactly those pixels.
    still = np.zeros((2, 10, 20, 2), dtype=np.float32)
    still.reshape(2, -1, 2)[:, ::20] = (3.0, 4.0)
    mean, top = motion_stats(still, 10, 20)
    assert (mean, top) == _old_motion_stats(still, 10, 20)
    assert top == pytest.approx(5 / np.hypot(10, 20)) and mean == pytest.approx(top / 20)

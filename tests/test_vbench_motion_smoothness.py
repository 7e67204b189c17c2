"""VBench's motion_smoothness: per-video values and the run value equal an independent re-computation
of VBench's motion_score (tests/_vbench_amt_reference.py: numpy + cv2, one pair at a time), with
AMT-S loaded from a seeded random checkpoint in the published format through the real loader;
known answers of the formula and of an exactly-averaging AMT-S (all weights zero)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._vbench_amt_reference import vbench_motion_score, vbench_score_from_frames
from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.features.amt import AMTS
from vdmbench.metrics import build_metric
from vdmbench.metrics.base import ClipBatch, MetricContext
from vdmbench.metrics.vbench_motion_smoothness import MotionSmoothness, smoothness_from_frames

H, W = 113, 121  # odd and non-square; padded to 128x128, the smallest size AMT-S computes finite values on
GIB = 1024**3


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def save_checkpoint(path, zero: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    net = AMTS()
    if zero:
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
    torch.save({"state_dict": net.state_dict()}, path)  # AMT's published layout
    torch.manual_seed(seed)
    ref = AMTS().eval()  # the reference network, loaded without vdmbench's loader
    ref.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    return path, ref


def texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def static_clip(t: int, seed: int = 0) -> np.ndarray:
    return np.repeat(texture(H, W, seed)[None], t, axis=0)


def moving_clip(t: int, seed: int = 1, dx: int = 3, dy: int = 1) -> np.ndarray:
    big = texture(H + 4 * t, W + 4 * t, seed)
    return np.stack([big[dy * i:dy * i + H, dx * i:dx * i + W] for i in range(t)])


def batch(*clips: np.ndarray) -> ClipBatch:
    return ClipBatch(videos=torch.from_numpy(np.stack(clips)), fps=[24.0] * len(clips))


def metric(tmp_path, zero: bool = False, **options) -> tuple[MotionSmoothness, torch.nn.Module]:
    path, ref = save_checkpoint(tmp_path / ("zero.pth" if zero else "amt-s.pth"), zero=zero, seed=4)
    return MotionSmoothness(MetricContext(seed=0), weights=str(path), **options), ref


# ----------------------------------------------------------------------------------- the formula


def test_formula_known_answers():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 200, (5, 9, 11, 3), dtype=np.uint8))
    assert smoothness_from_frames(frames, frames[1::2]) == (1.0, 0.0)  # perfect prediction: exactly 1
    off = frames[1::2] + 7  # every value 7 grey levels off (no overflow below 200)
    assert smoothness_from_frames(frames, off) == (248 / 255, 7.0)
    # An even-length clip: its last (odd) frame has no interpolated partner and is ignored.
    six = torch.cat([frames, torch.from_numpy(rng.integers(0, 256, (1, 9, 11, 3), dtype=np.uint8))])
    assert smoothness_from_frames(six, frames[1::2]) == (1.0, 0.0)
    # Against VBench's lines (cv2.absdiff, np.mean) on arbitrary frames.
    guess = torch.from_numpy(rng.integers(0, 256, (2, 9, 11, 3), dtype=np.uint8))
    score, mad = smoothness_from_frames(six, guess)
    assert abs(score - vbench_score_from_frames(six.numpy(), list(guess.numpy()))) < 1e-12
    assert abs(mad - (255 - 255 * score)) < 1e-9
    # Odd frames replaced by noise score lower than a smooth clip with a good prediction.
    smooth = torch.from_numpy(moving_clip(5)[..., :9, :11, :].copy())
    good = (smooth[0:-1:2].int() + smooth[2::2].int()).div(2, rounding_mode="floor").to(torch.uint8)
    noisy = smooth.clone()
    noisy[1::2] = torch.from_numpy(rng.integers(0, 256, (2, 9, 11, 3), dtype=np.uint8))
    assert smoothness_from_frames(noisy, good)[0] < smoothness_from_frames(smooth, good)[0] - 0.1


# ------------------------------------------------------------------- the metric against VBench's code


def test_per_video_and_run_values_equal_vbenchs_procedure(tmp_path):
    m, ref = metric(tmp_path)
    assert m.comparable and m.describe()["weights"].endswith("amt-s.pth")
    three = batch(static_clip(3), moving_clip(3))
    six = batch(moving_clip(6, seed=2, dx=1, dy=3))  # even length: the last frame is ignored
    values3, values6 = m.sample_values(three), m.sample_values(six)
    expected = [vbench_motion_score(ref, clip.numpy()) for clip in three.videos]
    expected += [vbench_motion_score(ref, six.videos[0].numpy())]
    got = values3["motion_smoothness"].tolist() + values6["motion_smoothness"].tolist()
    assert np.allclose(got, expected, atol=1e-5, rtol=0)
    mads = values3["motion_smoothness_mean_abs_diff"].tolist() + values6["motion_smoothness_mean_abs_diff"].tolist()
    assert np.allclose(mads, [255 - 255 * e for e in expected], atol=1e-4, rtol=0)
    # The run value: VBench's np.mean over videos (no frame weighting).
    m.update(three, values3)
    m.update(six, values6)
    assert abs(float(m.compute()["motion_smoothness"]) - float(np.mean(expected))) < 1e-5
    assert len(set(np.round(got, 6))) == 3  # the three clips are told apart


def test_averaging_network_known_answers(tmp_path):
    """With all weights zero AMT-S returns the average of the two frames (test_vbench_amt)."""
    m, ref = metric(tmp_path, zero=True)
    flat = np.full((3, H, W, 3), 137, dtype=np.uint8)
    textured = static_clip(3)
    values = m.sample_values(batch(flat, textured))["motion_smoothness"].tolist()
    assert values[0] == 1.0  # a uniform static clip: exactly 1
    # A textured static clip does not score exactly 1 even for a perfect interpolator: the float32
    # warp and x*255 truncation to uint8 (VBench's tensor2img) put some pixels one grey level low.
    assert 1 - 1 / 255 <= values[1] < 1.0
    assert abs(values[1] - vbench_motion_score(ref, textured)) < 1e-5
    clean = moving_clip(3)
    noisy = clean.copy()
    noisy[1] = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    clean_value, noisy_value = m.sample_values(batch(clean, noisy))["motion_smoothness"].tolist()
    assert noisy_value < clean_value - 0.1  # the odd frame replaced by noise: much less smooth


def test_scale_half_equals_vbench_at_that_scale_and_differs_from_scale_one(tmp_path):
    m1, ref = metric(tmp_path)
    m_half = MotionSmoothness(MetricContext(seed=0), weights=str(tmp_path / "amt-s.pth"), scale=0.5)
    big = np.stack([np.roll(texture(225, 230, 5), 4 * i, axis=1) for i in range(3)])  # padded 256 at divisor 32
    v_half = m_half.sample_values(batch(big))["motion_smoothness"].item()
    assert abs(v_half - vbench_motion_score(ref, big, scale=0.5)) < 1e-5
    v_one = m1.sample_values(batch(big))["motion_smoothness"].item()
    assert v_one != v_half  # the scale changes the value (random weights: size not representative)
    assert m_half.describe()["scale"] == 0.5


def test_vbench_gpu_compat_uses_vbenchs_memory_rule(tmp_path):
    path, _ = save_checkpoint(tmp_path / "amt-s.pth")
    m = MotionSmoothness(MetricContext(), weights=str(path), vbench_gpu_compat=True, gpu_memory_gb=24)
    assert m.scale_for(320, 512) == 1.0 and m.scale_for(2160, 3840) == 0.5
    assert "24 GiB" in m.describe()["scale"]
    default = MotionSmoothness(MetricContext(), weights=str(path))
    assert default.scale_for(2160, 3840) == 1.0  # vdmbench's default: fixed, whatever the machine
    with pytest.raises(ConfigError, match="gpu_memory_gb"):
        MotionSmoothness(MetricContext(device="cpu"), weights=str(path), vbench_gpu_compat=True)
    with pytest.raises(ConfigError, match="either scale or vbench_gpu_compat"):
        MotionSmoothness(MetricContext(), weights=str(path), vbench_gpu_compat=True, scale=0.5)
    with pytest.raises(ConfigError, match="only with vbench_gpu_compat"):
        MotionSmoothness(MetricContext(), weights=str(path), gpu_memory_gb=24)


# ------------------------------------------------------------------------------ inputs and options


def test_bad_inputs_give_one_line_errors(tmp_path):
    m, _ = metric(tmp_path)
    for clip, pattern in ((static_clip(2), "at least 3 frames"),
                          (np.zeros((5, 100, 200, 3), np.uint8), r"at least 128x128.*got 100x200")):
        with pytest.raises(MetricInputError, match=pattern) as e:
            m.sample_values(batch(clip))
        assert "\n" not in str(e.value)
    with pytest.raises(MetricInputError, match="uint8"):
        m.sample_values(ClipBatch(videos=torch.rand(1, 5, H, W, 3)))
    with pytest.raises(ConfigError, match="pair_batch"):
        MotionSmoothness(MetricContext(), weights=str(tmp_path / "amt-s.pth"), pair_batch=0)
    with pytest.raises(ConfigError, match="scale"):
        MotionSmoothness(MetricContext(), weights=str(tmp_path / "amt-s.pth"), scale=2)


def test_registry_random_weights_and_shared_model():
    ctx = MetricContext(seed=3)
    a = build_metric({"name": "motion_smoothness", "pretrained": "random"}, ctx)
    b = build_metric({"name": "motion_smoothness", "pretrained": "random", "pair_batch": 2}, ctx)
    assert isinstance(a, MotionSmoothness) and a.net is b.net  # built once per run
    assert not a.comparable
    d = a.describe()
    assert d["label"] == "not comparable with published numbers (random AMT-S weights)"
    assert d["weights"] == "random (seed 3)" and d["scale"] == 1.0
    assert MotionSmoothness.outputs[0] == "motion_smoothness" and MotionSmoothness.outputs[0].higher_is_better

"""dynamic_degree as VBench computes it (vbench/core/dynamic_degree.py).

What random RAFT weights can and cannot show: a network with random weights does not estimate
motion, so "a panning clip is dynamic, a static one is not" cannot be shown with it. Those known
answers are shown with an oracle flow (the exact global shift between two frames, found by
search) standing in for the network, through the metric's real pipeline (frame sampling by fps,
padding, statistic, threshold, count rule, aggregation). The real RAFT architecture with random
weights, loaded from a raft-things.pth-format file, is checked end to end against an independent
float64 re-computation of VBench's formula applied to the flows the network produced, after
checking that the network received exactly the frames VBench would feed it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._clips import texture
from tests.test_vbench_raft import random_raft_state
from vdmbench.core.errors import MetricInputError
from vdmbench.features import raft_original as R
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.metrics import vbench_dynamic_degree as D

torch.set_num_threads(1)
H, W = 121, 127  # odd, non-square; InputPadder pads to 128 x 128


# ---- VBench's formula, written again from vbench/core/dynamic_degree.py (float64) ------------

def vbench_selected(n_frames: int, fps: float) -> list[int]:
    interval = max(1, round(fps / 8))
    return list(range(0, n_frames, interval))


def vbench_pair_score(flow: np.ndarray) -> float:
    mag = np.sqrt(flow[0].astype(np.float64) ** 2 + flow[1].astype(np.float64) ** 2).ravel()
    k = int(mag.size * 0.05)
    return float(np.sort(mag)[::-1][:k].mean())


def vbench_dynamic(scores: list[float], h: int, w: int, n_selected: int) -> float:
    thres = 6.0 * min(h, w) / 256.0
    need = round(4 * n_selected / 16.0)
    return float(len(scores) > 0 and sum(s > thres for s in scores) >= need)


# ---- clips and an oracle flow --------------------------------------------------------------------

def panning_clip(t: int, steps: list[tuple[int, int]], seed: int = 0) -> torch.Tensor:
    """uint8 [t, H, W, 3]: a window over a smooth texture; frame k+1 shows the scene moved by
    steps[k] = (dy, dx) pixels (content moves right/down for positive values)."""
    rng = np.random.default_rng(seed)
    m = 40
    big = texture(H + 2 * 6 * m, W + 2 * 6 * m, rng, cells=24).round().astype(np.uint8)
    y, x = 6 * m, 6 * m
    out = [big[y:y + H, x:x + W]]
    for dy, dx in steps[: t - 1]:
        y, x = y - dy, x - dx
        out.append(big[y:y + H, x:x + W])
    return torch.from_numpy(np.stack(out))


class OracleFlow(torch.nn.Module):
    """The exact integer global shift from a to b (a(x) = b(x + flow)) as a constant flow field."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(a.shape[0], 2, *a.shape[-2:])
        r, c = 8, 12  # search radius (the tests move at most 6 px per pair), border left out
        for i in range(a.shape[0]):
            def mad(dy: int, dx: int, i: int = i) -> float:
                shifted = b[i, :, c + dy:b.shape[2] - c + dy, c + dx:b.shape[3] - c + dx]
                return float((a[i, :, c:-c, c:-c] - shifted).abs().mean())

            best = min((mad(dy, dx), dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1))
            out[i, 0], out[i, 1] = best[2], best[1]
        return out


@pytest.fixture
def oracle(monkeypatch):
    monkeypatch.setattr(D, "build_vbench_raft", lambda **kw: R.VBenchRaft(
        OracleFlow(), "cpu", {"flow": "oracle", "pretrained": "oracle"}, kw["pair_batch"]))
    return build_metric({"name": "dynamic_degree", "pretrained": "oracle"}, MetricContext())


# ---- known answers with correct flows --------------------------------------------------------------

def test_static_clip_is_0_and_panning_clip_is_1(oracle):
    static = panning_clip(13, [(0, 0)] * 12)
    pan = panning_clip(13, [(1, 2)] * 12, seed=1)  # 24 fps: frames 0,3,6,9,12 -> 3x(1,2) = (3,6) px
    v = oracle.sample_values(ClipBatch(videos=torch.stack([static, pan]), fps=[24.0, 24.0]))
    assert v["dynamic_degree"].tolist() == [0.0, 1.0]
    assert v["dynamic_degree_moving_pairs"].tolist() == [0.0, 1.0]
    oracle.update(ClipBatch(videos=torch.stack([static, pan]), fps=[24.0, 24.0]), values=v)
    assert float(oracle.compute()["dynamic_degree"]) == 0.5  # VBench: mean of 0/1 over videos


def test_fps_sampling_decides(oracle):
    """A 1 px/frame pan is under the threshold (6 * 121/256 = 2.84 px) between consecutive frames
    at 8 fps but over it between every 3rd frame at 24 fps: the same frames, two answers."""
    clip = panning_clip(13, [(0, 1)] * 12, seed=2)
    v = oracle.sample_values(ClipBatch(videos=torch.stack([clip, clip]), fps=[8.0, 24.0]))
    assert v["dynamic_degree"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("moving_pairs,expected", [(4, 1.0), (3, 0.0)])
def test_count_rule_needs_round_4n_over_16_pairs(oracle, moving_pairs, expected):
    """16 frames at 8 fps: count_num = round(4 * 16 / 16) = 4 pairs over the threshold."""
    steps = [(0, 4)] * moving_pairs + [(0, 0)] * (15 - moving_pairs)
    v = oracle.sample_values(ClipBatch(videos=panning_clip(16, steps, seed=3)[None], fps=[8.0]))
    assert v["dynamic_degree"].item() == expected
    assert v["dynamic_degree_moving_pairs"].item() == pytest.approx(moving_pairs / 15)


def test_two_selected_frames_are_always_dynamic(oracle):
    """VBench's quirk: with 2 selected frames count_num = round(0.5) = 0, so check_move returns
    True at its first pair even for a static clip."""
    static = panning_clip(2, [(0, 0)])
    assert oracle.sample_values(ClipBatch(videos=static[None], fps=[8.0]))["dynamic_degree"].item() == 1.0


# ---- the rule on given flows, against the re-computation ---------------------------------------------

@pytest.mark.parametrize("fps", [8.0, 12.0, 20.0, 24.0, 25.0, 30.0, 3.0])
def test_frame_interval_is_vbenchs(fps):
    assert list(range(0, 50, D.frame_interval(fps))) == vbench_selected(50, fps)
    assert D.frame_interval(12.0) == 2 and D.frame_interval(20.0) == 2  # Python's round: half to even


def test_statistic_and_decision_on_given_flows():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(2, 20))
        flows = (rng.standard_normal((n - 1, 2, 64, 80)) * rng.uniform(0.2, 4)).astype(np.float32)
        ours = [D.top_magnitude_mean(f, D.TOP_FRACTION) for f in flows]
        ref = [vbench_pair_score(f) for f in flows]
        assert np.allclose(ours, ref, rtol=1e-6, atol=0)
        thres, count_num = D.dynamic_params(121 + trial, 300, n)
        assert float(D.is_moving(ours, thres, count_num)) == vbench_dynamic(ref, 121 + trial, 300, n)
    assert D.is_moving([], 1.0, 0) is False  # a clip with one selected frame is not dynamic


# ---- the real architecture, random weights, end to end ----------------------------------------------

def test_real_raft_end_to_end_equals_recomputation(tmp_path):
    path = tmp_path / "raft-things.pth"
    torch.save(random_raft_state(1), path)
    metric = build_metric({"name": "dynamic_degree", "weights": str(path)}, MetricContext())
    assert metric.comparable  # a real checkpoint file given explicitly
    seen = []
    forward = metric.raft.model.forward

    def record(a, b, iters=R.ITERS):
        flow = forward(a, b, iters)
        seen.append((a.clone(), b.clone(), flow.clone()))
        return flow

    metric.raft.model.forward = record
    clip = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (7, H, W, 3), dtype=np.uint8))
    v = metric.sample_values(ClipBatch(videos=clip[None], fps=[24.0]))
    idx = vbench_selected(7, 24.0)  # frames 0, 3, 6: two pairs, count_num = round(0.75) = 1
    a = torch.cat([s[0] for s in seen])
    b = torch.cat([s[1] for s in seen])
    flows = torch.cat([s[2] for s in seen]).numpy()

    def padded(frames):  # InputPadder (sintel, replicate) of float frames [P, 3, H, W]
        return F.pad(frames.permute(0, 3, 1, 2).float(), [0, 1, 3, 4], mode="replicate")

    assert torch.equal(a, padded(clip[idx[:-1]])) and torch.equal(b, padded(clip[idx[1:]]))
    scores = [vbench_pair_score(f) for f in flows]
    assert v["dynamic_degree"].item() == vbench_dynamic(scores, H, W, len(idx))
    thres = 6.0 * min(H, W) / 256.0
    assert v["dynamic_degree_moving_pairs"].item() == pytest.approx(np.mean([s > thres for s in scores]), abs=1e-12)


def test_bad_options_are_one_line_errors():
    from vdmbench.core.errors import ConfigError

    for bad in ({"pair_batch": 0}, {"pair_batch": "8"}, {"vbench_gpu_compat": "yes"}, {"pretrained": "imagenet"}):
        with pytest.raises(ConfigError):
            build_metric({"name": "dynamic_degree", **bad}, MetricContext(weights_path={}))


def test_bad_inputs_are_one_line_errors(oracle):
    with pytest.raises(MetricInputError, match="RAFT needs frames of at least 121"):
        oracle.sample_values(ClipBatch(videos=torch.zeros(1, 3, 100, 200, 3, dtype=torch.uint8), fps=[8.0]))
    with pytest.raises(MetricInputError, match="needs fps"):
        oracle.sample_values(ClipBatch(videos=torch.zeros(1, 3, H, W, 3, dtype=torch.uint8)))
    with pytest.raises(MetricInputError, match="uint8"):
        oracle.sample_values(ClipBatch(videos=torch.zeros(1, 3, H, W, 3), fps=[8.0]))

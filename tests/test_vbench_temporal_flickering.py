"""temporal_flickering as VBench computes it: its static filter (vbench/cli/static_filter.py), then
the flicker score of the kept clips (vbench/temporal_flickering.py), averaged over the kept clips.

Random RAFT weights cannot tell a static clip from a moving one, so the known answers (a static
clip with flickering brightness is kept and scored, a panning clip is excluded) use the oracle
flow of test_vbench_dynamic_degree (the exact global shift) in place of the network; the network
itself is checked in test_vbench_raft and, end to end, in test_vbench_dynamic_degree. The
filter's pair order and its top-2% statistic are checked on what a recording flow model received
and returned.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_vbench_dynamic_degree import H, OracleFlow, W, panning_clip
from vdmbench.core.errors import MetricInputError
from vdmbench.features import raft_original as R
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.metrics import vbench_dynamic_degree as D
from vdmbench.metrics import vbench_temporal_flickering as T

torch.set_num_threads(1)


# ---- VBench's formulas, written again (float64) -----------------------------------------------

def vbench_flicker(clip: np.ndarray) -> float:
    f = clip.astype(np.float64)
    return (255.0 - np.mean([np.abs(f[t + 1] - f[t]).mean() for t in range(len(f) - 1)])) / 255.0


def vbench_pair_score_2pct(flow: np.ndarray) -> float:
    mag = np.sqrt(flow[0].astype(np.float64) ** 2 + flow[1].astype(np.float64) ** 2).ravel()
    return float(np.sort(mag)[::-1][: int(mag.size * 0.02)].mean())


def vbench_static(scores: list[float], h: int, w: int, n_frames: int) -> bool:
    thres = 3.0 * min(h, w) / 256.0
    count_num = round(2 * n_frames / 16.0)
    consecutive, first_last = scores[:-2], scores[-2:]
    if sum(s > thres for s in consecutive) > count_num:
        return False
    return not any(s > thres * count_num * 2 for s in first_last)


def flickering_static_clip(t: int, seed: int) -> torch.Tensor:
    """A still scene whose brightness jumps by a few grey levels from frame to frame."""
    clip = panning_clip(t, [(0, 0)] * (t - 1), seed=seed).to(torch.int16)
    jumps = torch.from_numpy(np.random.default_rng(seed).integers(-3, 4, t)).view(t, 1, 1, 1)
    return (clip + jumps).clamp(0, 255).to(torch.uint8)


@pytest.fixture
def builds(monkeypatch):
    calls = []

    def build(**kw):
        calls.append(kw)
        return R.VBenchRaft(OracleFlow(), "cpu", {"flow": "oracle", "pretrained": "oracle"}, kw["pair_batch"])

    monkeypatch.setattr(D, "build_vbench_raft", build)
    return calls


# ---- known answers ---------------------------------------------------------------------------------

def test_static_clip_is_scored_and_panning_clip_is_excluded(builds):
    metric = build_metric({"name": "temporal_flickering", "pretrained": "oracle"}, MetricContext())
    still = flickering_static_clip(8, seed=0)
    still2 = flickering_static_clip(8, seed=4)
    pan = panning_clip(8, [(0, 3)] * 7, seed=1)  # 3 px/frame > 3 * 121/256 = 1.42 px
    batch = ClipBatch(videos=torch.stack([still, pan, still2]), fps=[24.0] * 3)
    v = metric.sample_values(batch)
    assert v["temporal_flickering_static"].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(v["temporal_flickering"][1].item())  # excluded: no value (the scorer stores none)
    expected = [vbench_flicker(still.numpy()), vbench_flicker(still2.numpy())]
    assert expected[0] < 1.0  # the brightness jumps are flicker
    assert v["temporal_flickering"][[0, 2]].tolist() == pytest.approx(expected, abs=1e-12)
    metric.update(batch, values=v)
    out = metric.compute()
    # VBench's value: the mean over the videos the filter kept, never touched by the excluded one
    assert float(out["temporal_flickering"]) == pytest.approx(np.mean(expected), abs=1e-12)
    assert float(out["temporal_flickering_static"]) == 2.0  # the weight's run value: clips kept


def test_no_kept_clip_means_no_value(builds):
    metric = build_metric({"name": "temporal_flickering", "pretrained": "oracle"}, MetricContext())
    pan = panning_clip(8, [(2, 2)] * 7, seed=2)
    metric.update(ClipBatch(videos=pan[None], fps=[8.0]))
    with pytest.raises(MetricInputError, match="total weight"):
        metric.compute()


def test_static_filter_off_scores_every_clip_without_raft(builds):
    """For a folder VBench's own static_filter already made: every clip scored, no RAFT built."""
    metric = build_metric({"name": "temporal_flickering", "static_filter": False}, MetricContext())
    pan = panning_clip(6, [(0, 3)] * 5, seed=3)
    v = metric.sample_values(ClipBatch(videos=pan[None], fps=[8.0]))
    assert builds == [] and metric.raft is None
    assert v["temporal_flickering"].item() == pytest.approx(vbench_flicker(pan.numpy()), abs=1e-12)
    assert v["temporal_flickering_static"].item() == 1.0


def test_raft_is_shared_with_dynamic_degree(builds):
    ctx = MetricContext()
    dd = build_metric({"name": "dynamic_degree", "pretrained": "oracle"}, ctx)
    tf = build_metric({"name": "temporal_flickering", "pretrained": "oracle"}, ctx)
    assert dd.raft is tf.raft and len(builds) == 1
    build_metric({"name": "temporal_flickering", "pretrained": "oracle", "pair_batch": 1}, ctx)
    assert len(builds) == 2  # other settings, another model


# ---- the filter on given scores and flows ------------------------------------------------------------

def test_filter_pairs_are_consecutive_then_first_last_both_ways():
    assert T.filter_pairs(4) == [(0, 1), (1, 2), (2, 3), (0, 3), (3, 0)]


def test_rule_on_given_scores_matches_recomputation():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 40))
        h, w = int(rng.integers(121, 600)), int(rng.integers(121, 600))
        scores = list(rng.exponential(rng.uniform(0.1, 3.0), n + 1))  # n-1 consecutive + 2
        thres, count_num = T.static_params(h, w, n)
        assert T.is_static(scores, thres, count_num) == vbench_static(scores, h, w, n)


def test_rule_edges():
    thres, count_num = T.static_params(256, 256, 16)  # 3.0 px, 2 pairs allowed
    assert (thres, count_num) == (3.0, 2)
    assert T.is_static([3.1, 3.1, 0, 0, 0, 0], thres, count_num)  # 2 over: still static
    assert not T.is_static([3.1, 3.1, 3.1, 0, 0, 0], thres, count_num)  # 3 over: moving
    assert T.is_static([0, 0, 0, 12.0, 0], thres, count_num)  # first<->last up to thres * 2 * 2
    assert not T.is_static([0, 0, 0, 12.01, 0], thres, count_num)
    # 4 frames: count_num = round(0.5) = 0, so any first<->last flow excludes the clip
    assert not T.is_static([0, 0, 0, 1e-3, 0], *T.static_params(256, 256, 4))


def test_pair_order_and_2pct_statistic_on_recorded_flows():
    """The filter feeds RAFT the pairs in VBench's order and scores the flows it gets back."""
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, a, b):
            g = torch.Generator().manual_seed(len(seen))
            flow = torch.randn(a.shape[0], 2, *a.shape[-2:], generator=g) * 1.5
            seen.append((a.clone(), b.clone(), flow))
            return flow

    clip = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (5, H, W, 3), dtype=np.uint8))
    metric = build_metric({"name": "temporal_flickering", "static_filter": False}, MetricContext())
    metric.raft = R.VBenchRaft(Recorder(), "cpu", pair_batch=3)  # type: ignore[arg-type]
    kept = metric.keep(clip)
    a, b = torch.cat([s[0] for s in seen]), torch.cat([s[1] for s in seen])
    pairs = T.filter_pairs(5)
    crop = (slice(None), slice(None), slice(3, 3 + H), slice(0, W))  # InputPadder: 3 rows on top
    assert torch.equal(a[crop], clip[[p for p, _ in pairs]].permute(0, 3, 1, 2).float())
    assert torch.equal(b[crop], clip[[q for _, q in pairs]].permute(0, 3, 1, 2).float())
    scores = [vbench_pair_score_2pct(f) for f in torch.cat([s[2] for s in seen]).numpy()]
    assert kept == vbench_static(scores, H, W, 5)
    ours = [D.top_magnitude_mean(f, T.STATIC_TOP_FRACTION) for f in torch.cat([s[2] for s in seen]).numpy()]
    assert np.allclose(ours, scores, rtol=1e-6, atol=0)


def test_bad_options_and_inputs(builds):
    from vdmbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="static_filter must be true or false"):
        build_metric({"name": "temporal_flickering", "static_filter": "yes"}, MetricContext())
    metric = build_metric({"name": "temporal_flickering", "pretrained": "oracle"}, MetricContext())
    with pytest.raises(MetricInputError, match="at least 2 frames"):
        metric.sample_values(ClipBatch(videos=torch.zeros(1, 1, H, W, 3, dtype=torch.uint8), fps=[8.0]))
    with pytest.raises(MetricInputError, match="RAFT needs frames"):
        metric.sample_values(ClipBatch(videos=torch.zeros(1, 3, 64, 64, 3, dtype=torch.uint8), fps=[8.0]))


def test_vdmbench_score_stores_no_value_for_an_excluded_clip(builds, tmp_path):
    """Through `vdmbench score`'s library function: the excluded clip has its static flag and no
    temporal_flickering value (never a NaN), and the run value is the kept clip's."""
    import math

    from vdmbench.core.video import Video, write_video
    from vdmbench.run.score import score_files

    still, pan = flickering_static_clip(8, seed=0), panning_clip(8, [(0, 3)] * 7, seed=1)
    write_video(Video(still, 8.0), tmp_path / "still-0.mp4")
    write_video(Video(pan, 8.0), tmp_path / "pan-0.mp4")
    res = score_files(sorted(tmp_path.glob("*.mp4")), [{"name": "temporal_flickering", "pretrained": "oracle"}],
                      context=MetricContext(), batch_size=2, workers=0, num_frames=None)
    assert res["per_sample"]["pan-0.mp4"] == {"temporal_flickering_static": 0.0}
    assert all(math.isfinite(v) for d in res["per_sample"].values() for v in d.values())
    assert res["metrics"]["temporal_flickering"] == pytest.approx(vbench_flicker(still.numpy()), abs=1e-12)

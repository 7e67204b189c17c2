"""FVD/KVD metrics with a seeded random I3D on tiny procedural clips (32x32, 16 frames)."""

import warnings

import numpy as np
import pytest
import torch

from tests._clips import blur, moving_squares, noise, shuffle_frames
from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.features.i3d import build_i3d_features
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.metrics.fvd import FVD, KVD, NOT_COMPARABLE, frechet_distance

N, T, S = 8, 16, 32
OPTS = {"features": "random-i3d", "resize": S}


@pytest.fixture(scope="module")
def clips():
    real = moving_squares(N, T, S, S, seed=1)
    other = moving_squares(N, T, S, S, seed=2)
    return {"real": real, "real'": other, "blurred": blur(other, 1.0), "noise": noise(other),
            "real_shuffled": shuffle_frames(real)}


@pytest.fixture(scope="module")
def memo(clips):
    """I3D on CPU is slow: compute each test clip's features once, then serve them per clip.

    (Batching does not change the metric's arithmetic; test_extractor_batch_invariance checks the
    extractor itself against batch size.)"""
    base, _ = build_i3d_features("random-i3d", resize=S)
    table = {}
    for v in clips.values():
        for clip, f in zip(v, base(v)):
            table[clip.numpy().tobytes()] = f.float()

    def forward(v):
        return torch.stack([table[c.numpy().tobytes()] for c in v.cpu()])

    def patch(metric):
        metric.extractor.forward = forward
        return metric

    return patch


@pytest.fixture(scope="module")
def feats(clips, memo):
    m = memo(FVD(**OPTS))
    return {k: m.features(v).numpy() for k, v in clips.items()}


def _fvd(a, b):
    st = lambda f: (f.mean(0), np.cov(f, rowvar=False))
    return frechet_distance(*st(a), *st(b))


def test_sensitivity_real_blur_noise(feats):
    f = feats
    near, blurred, noisy = _fvd(f["real"], f["real'"]), _fvd(f["real"], f["blurred"]), _fvd(f["real"], f["noise"])
    assert near < blurred < noisy, (near, blurred, noisy)


def test_frame_order_matters(feats):
    f = feats
    assert _fvd(f["real"], f["real"]) == pytest.approx(0.0, abs=1e-9)
    assert _fvd(f["real"], f["real_shuffled"]) > 0.05 * _fvd(f["real"], f["real'"])
    assert not np.allclose(f["real"], f["real_shuffled"], rtol=1e-3)


def test_end_to_end_standalone(clips, memo):
    m = memo(FVD(**OPTS, n_boot=50))
    m.update_real(clips["real"])
    m.update(clips["noise"][:4])
    m.update(ClipBatch(videos=clips["noise"][4:]))
    with pytest.warns(UserWarning, match="below 256"):
        out = m.compute()
    assert out["fvd"] > 0 and out["fvd_ci_low"] < out["fvd_ci_high"]
    d = m.describe()
    assert d["comparable"] is False and d["label"] == NOT_COMPARABLE
    assert d["n"] == N and d["n_reference"] == N and "below 256" in d["warning"]
    assert d["features"] == "random-i3d" and d["layer"] == "logits" and d["covariance"] == "unbiased"


def test_float_and_short_inputs_are_refused(clips, memo):
    m = FVD(**OPTS)
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        m.update(clips["real"].float() / 255.0)
    with pytest.raises(MetricInputError, match="at least 9 frames"):
        m.update(clips["real"][:, :8])


def test_extractor_batch_invariance(clips):
    ext, _ = build_i3d_features("random-i3d", resize=S, batch_size=4)
    one_by_one = torch.cat([ext(c[None]) for c in clips["real"][:4]])
    torch.testing.assert_close(ext(clips["real"][:4]), one_by_one, rtol=1e-4, atol=1e-5)  # float32 convs


def test_one_batch_vs_seven_batches(clips, memo):
    videos = clips["real'"][:7]
    results = []
    for bs in (7, 1):
        ctx = MetricContext(batch_size=bs)
        fvd, kvd = memo(FVD(ctx, **OPTS, n_boot=20)), memo(KVD(ctx, **OPTS, n_boot=20, subsets=5))
        for m in (fvd, kvd):
            m.update_real(clips["real"])
            for chunk in videos.split(bs):
                m.update(ClipBatch(videos=chunk))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append({**fvd.compute(), **kvd.compute()})
    for k in results[0]:
        assert results[0][k] == pytest.approx(results[1][k], rel=1e-9, abs=1e-12), k


def test_reference_from_context_is_cached(clips, memo, tmp_path):
    calls = []

    def reference():
        calls.append(1)
        yield ClipBatch(videos=clips["real"][:4])
        yield ClipBatch(videos=clips["real"][4:])

    ctx = MetricContext(cache_dir=tmp_path, reference=reference, reference_id="ref-1")
    shas = [f"sha{i}" for i in range(N)]
    values = []
    for run in range(2):
        m = memo(build_metric({"name": "fvd", **OPTS, "n_boot": 0}, ctx))
        if run == 1:  # everything must come from the cache now
            m.extractor.forward = lambda v: (_ for _ in ()).throw(AssertionError("recomputed"))
        m.update(ClipBatch(videos=clips["real'"], sha256=shas))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values.append(m.compute()["fvd"])
    assert len(calls) == 1 and values[0] == values[1]


def test_options_and_missing_reference(clips, memo):
    with pytest.raises(ConfigError, match="covariance"):
        FVD(**OPTS, covariance="biased")
    with pytest.raises(ConfigError, match="features"):
        FVD(features="c3d")
    m = memo(FVD(**OPTS))
    m.update(clips["real'"])
    with pytest.raises(MetricInputError, match="reference"):
        m.compute()
    a, b = memo(FVD(**OPTS, n_boot=0)), memo(FVD(**OPTS, n_boot=0, covariance="stylegan-v"))
    for m in (a, b):
        m.update_real(clips["real"])
        m.update(clips["real'"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert b.compute()["fvd"] < a.compute()["fvd"]  # divides by N instead of N - 1


def test_kvd_orders_sets(clips, memo):
    vals = {}
    for k in ("real'", "noise"):
        m = memo(KVD(**OPTS, n_boot=20, subsets=10))
        m.update_real(clips["real"])
        m.update(clips[k])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals[k] = m.compute()
    assert vals["real'"]["kvd"] < vals["noise"]["kvd"]
    assert vals["noise"]["kvd_ci_low"] <= vals["noise"]["kvd_ci_high"]


def test_fvd_state_memory_is_constant(clips, memo):
    # ci and ladder both keep each clip's features; without them the state is the sums alone.
    m = memo(FVD(**OPTS, ci=False, ladder=False))
    size = lambda: sum(v.numel() for v in m.metric_state.values() if isinstance(v, torch.Tensor))
    m.update(clips["real"][:2])
    before = size()
    for _ in range(3):
        m.update(clips["real"][:2])
    assert size() == before and all(isinstance(v, torch.Tensor) for v in m.metric_state.values())


def test_shuffling_frames_raises_fvd_beyond_real_vs_real():
    """FVD(real A, shuffled real B) is well above FVD(A, B); reversing B's frames leaves it there.

    Shapes clips (one or two shapes in straight-line motion, exact ground truth), 16 frames at 32x32,
    seeded random I3D, logits averaged over time. B, shuffled B and reversed B hold the very same
    frames, so an extractor blind to frame order would give the three FVDs exactly equal.

    Why a random I3D sees the order, and why 256 clips: per clip, its features move about as much
    when the frames are reversed as when they are shuffled (random temporal taps are not symmetric
    in time), so a per-clip change proves nothing. Reversed shapes clips are still real clips
    (directions and start points are symmetric), so as a set they sit where real clips sit and FVD
    stays within sampling noise. Shuffled clips change incoherently from frame to frame, and the
    temporal max-pools (3x3x3 in every Inception block's pool branch and in MaxPool3d_4a, 2x2x2 in
    MaxPool3d_5a) turn that into larger activations in every clip alike: a common shift of the mean
    feature (without the temporal max-pools it is 3-5x smaller), which FVD sees as a set. That
    shift does not shrink with more clips, while FVD between two real sets (sampling noise in 400
    dimensions) falls like 1/N (seed 0: 0.98, 0.52, 0.15 at 32, 64, 256 clips). Shuffled / real
    FVD over I3D seeds 0-3: 1.01-1.28 with 32 clips per set (reversed: 0.97-1.06, no difference),
    1.20-1.45 with 64, and with 256: 2.24, 2.24, 1.93, 2.81 (reversed: 0.90, 0.96, 0.96, 1.01).
    1024 clip forwards: ~8 s on 2 idle CPU cores.
    """
    from vdmbench.data.shapes import heldout_set

    n, t, s = 256, 16, 32
    real_a = torch.stack([c.frames for c in heldout_set(n, 10, t, s, s)])
    real_b = torch.stack([c.frames for c in heldout_set(n, 11, t, s, s)])
    perm = torch.randperm(t, generator=torch.Generator().manual_seed(0))
    m = FVD(features="random-i3d", resize=s, ci=False, context=MetricContext(batch_size=32))
    f = {k: m.features(v).numpy() for k, v in
         {"a": real_a, "b": real_b, "shuffled": real_b[:, perm], "reversed": real_b.flip(1)}.items()}
    real, shuffled, reversed_ = (_fvd(f["a"], f[k]) for k in ("b", "shuffled", "reversed"))
    assert 0.8 < reversed_ / real < 1.25, (real, reversed_)  # coherent order: within sampling noise
    assert shuffled > 1.5 * max(real, reversed_), (real, shuffled, reversed_)


def test_repeat_frames_scores_short_clips_and_says_so(clips):
    real, fake = clips["real"][:4, :8], clips["real'"][:4, :8]  # 8 frames: below I3D's 9
    with pytest.raises(MetricInputError, match="repeat_frames"):
        FVD(**OPTS, ci=False).update(fake)
    with pytest.raises(ConfigError, match="repeat_frames"):
        FVD(**OPTS, repeat_frames=0)
    m = FVD(**OPTS, ci=False, repeat_frames=2)
    m.update_real(real)
    m.update(fake)
    by_option = m.compute()["fvd"]
    ref = FVD(**OPTS, ci=False)  # the same clips with every frame doubled by hand
    ref.update_real(real.repeat_interleave(2, dim=1))
    ref.update(fake.repeat_interleave(2, dim=1))
    assert by_option == pytest.approx(ref.compute()["fvd"], rel=1e-9)
    d = m.describe()
    assert d["label"] == NOT_COMPARABLE and d["repeat_frames"] == 2 and "protocol_note" in d

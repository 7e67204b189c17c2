"""FVD is unchanged by the speed work of issue #21.

The reference is the I3D forward as it was before (commit d839991): SAME padding by an explicit
F.pad before every convolution and max pool, the nn.Conv3d module call, channels-first
preprocessing converted to channels_last_3d. It is re-implemented here from the published
description (pad, conv, BatchNorm eps 1e-3, ReLU; Inception branches concatenated) so a change to
the model's arithmetic shows up as a difference.

Measured on the development machine (x86-64, oneDNN, torch 2.14): the new forward equals the old
one run with 2 threads bit for bit (batches > 1; torch itself sent 1x1x1 kernels to oneDNN there)
and differs from the old one run with 1 thread (torch's slow 1x1x1 path) by < 1e-6 relative on
the features and 5.8e-7 relative on FVD. The tests allow 1e-5 relative, for other CPUs' kernels.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._clips import moving_squares
from vdmbench.features.i3d import (
    Inception,
    InceptionI3d,
    MaxPoolSame,
    Unit3D,
    build_i3d_features,
    fvd_preprocess,
    init_random_,
    same_padding,
)
from vdmbench.metrics import MetricContext, build_metric
from vdmbench.metrics.fvd import frechet_distance

# FVD of the clips below, computed by the pre-#21 code (d839991) with 2 threads (1 thread: 5.0762165).
OLD_FVD = 5.0762135295808815
RESIZE = 32  # small frames keep the test quick; the arithmetic is the same as at 224


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Seeded random I3D in the piergiaj format, with BatchNorm statistics away from identity."""
    model = init_random_(InceptionI3d(), seed=7)
    gen = torch.Generator().manual_seed(11)
    state = OrderedDict()
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        if k.endswith("bn.running_mean") or k.endswith("bn.bias"):
            v = torch.randn(v.shape, generator=gen) * 0.05
        elif k.endswith("bn.running_var") or k.endswith("bn.weight"):
            v = torch.rand(v.shape, generator=gen) * 0.5 + 0.75
        state[k] = v
    path = tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt"
    torch.save(state, path)
    loaded = InceptionI3d()
    loaded.load_state_dict(state, strict=False)
    return path, loaded.eval().to(memory_format=torch.channels_last_3d)


@pytest.fixture(scope="module")
def clips():
    return moving_squares(5, 10, 40, 40, seed=1), moving_squares(5, 10, 40, 40, seed=2, pan=1.5)


@pytest.fixture(scope="module")
def old_features(checkpoint, clips):
    """{(side, threads): the old forward's logits}: 1 thread (torch's slow 1x1x1 path) and 2."""
    _, model = checkpoint
    return {(side, t): _old_logits(model, v, t) for side, v in zip(("fake", "real"), clips) for t in (1, 2)}


# --- the pre-#21 forward ---------------------------------------------------------------------------

def _old_pad(x, kernel, stride):
    pads = [same_padding(s, k, st) for s, k, st in zip(x.shape[2:], kernel, stride)]
    return F.pad(x, (*pads[2], *pads[1], *pads[0]))


def _old_module(m, x):
    if isinstance(m, Unit3D):
        x = m.conv3d(_old_pad(x, m.kernel, m.stride))
        if m.bn is not None:
            x = m.bn(x)
        return F.relu(x) if m.relu else x
    if isinstance(m, MaxPoolSame):
        return F.max_pool3d(_old_pad(x, m.kernel, m.stride), m.kernel, m.stride)
    assert isinstance(m, Inception)
    return torch.cat([_old_module(m.b0, x), _old_module(m.b1b, _old_module(m.b1a, x)),
                      _old_module(m.b2b, _old_module(m.b2a, x)), _old_module(m.b3b, _old_module(m.b3a, x))], 1)


def _old_preprocess(videos, size):
    b, t, h, w, _ = videos.shape
    x = videos.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = x / 127.5 - 1.0
    return x.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()


@torch.no_grad()
def _old_logits(model, videos, threads, batch=3):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = []
        for chunk in videos.split(batch):
            x = _old_preprocess(chunk, RESIZE).contiguous(memory_format=torch.channels_last_3d)
            for name in model.endpoints:
                x = _old_module(getattr(model, name), x)
            x = F.avg_pool3d(x, tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:])), stride=1)
            out.append(model.logits.conv3d(x).mean(dim=(2, 3, 4)).double())
        return torch.cat(out)
    finally:
        torch.set_num_threads(before)


def _fvd64(fake, real):
    """The FVD formula re-computed in float64 from features (unbiased covariance)."""
    a, b = fake.numpy(), real.numpy()
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


# --- tests -------------------------------------------------------------------------------------------

def test_fvd_equals_the_old_computation(checkpoint, clips, old_features):
    """The metric as `vdmbench score` runs it: same value as the old code, as a constant and as
    an independent float64 re-computation from the old forward's features."""
    path, _ = checkpoint
    fake, real = clips
    metric = build_metric({"name": "fvd", "weights": str(path), "resize": RESIZE, "ci": False},
                          MetricContext(batch_size=3))
    metric.update(fake)
    metric.update_real(real)
    value = metric.compute()["fvd"]
    assert value == pytest.approx(OLD_FVD, rel=1e-5)
    for threads in (1, 2):
        old = _fvd64(old_features["fake", threads], old_features["real", threads])
        assert value == pytest.approx(old, rel=1e-5), threads
    # Sensitivity: the tolerance is far below what a change of the clips does.
    flipped = metric.features(torch.flip(fake, dims=[2]))  # frames upside down
    assert abs(_fvd64(flipped, old_features["real", 2]) - OLD_FVD) > 1e-2 * OLD_FVD


def test_features_match_the_old_forward(checkpoint, clips, old_features):
    path, _ = checkpoint
    extractor, _ = build_i3d_features("i3d", weights=str(path), resize=RESIZE, batch_size=3)
    new = extractor(clips[0])
    for threads in (1, 2):
        old = old_features["fake", threads]
        # measured here: 0 with 2 threads (bit-identical), < 1e-6 relative with 1
        assert float((new - old).abs().max()) <= 1e-5 * float(old.abs().max()), threads


def test_preprocess_channels_last_is_the_same_tensor():
    videos = moving_squares(2, 9, 37, 50, seed=4)
    old = _old_preprocess(videos, RESIZE)
    new = fvd_preprocess(videos, RESIZE, channels_last=True)
    assert new.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(new, old, rtol=0, atol=1e-6)  # measured: bit-identical
    torch.testing.assert_close(fvd_preprocess(videos, RESIZE), old, rtol=0, atol=1e-6)
    assert fvd_preprocess(videos, RESIZE).is_contiguous()


@pytest.mark.parametrize("size", [(9, 37, 50), (8, 28, 28), (5, 7, 3), (2, 2, 2), (1, 1, 1)])
@pytest.mark.parametrize("kernel,stride", [((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (1, 1, 1)),
                                           ((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2))])
def test_max_pool_without_padding_copy_is_exact(size, kernel, stride):
    """-inf padding (torch) equals zero padding (TF SAME here) on inputs >= 0, whatever the size."""
    x = torch.rand(2, 4, *size, generator=torch.Generator().manual_seed(0))
    x = F.relu(x - 0.3).contiguous(memory_format=torch.channels_last_3d)
    pool = MaxPoolSame(kernel, stride)
    new = pool(x)
    old = F.max_pool3d(_old_pad(x, kernel, stride), kernel, stride)
    assert new.shape == old.shape == (2, 4, *(-(-s // st) for s, st in zip(size, stride)))
    assert torch.equal(new, old)


def test_activations_stay_channels_last_with_one_thread(checkpoint):
    """The cause of the 2x: with one thread torch's 1x1x1 path returned channels-first memory and
    every later layer (max_pool3d above all) ran on it. Every endpoint must keep channels_last_3d."""
    _, model = checkpoint
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            x = fvd_preprocess(moving_squares(2, 10, 40, 40), 64, channels_last=True)
            for name in model.endpoints:
                x = getattr(model, name)(x)
                assert x.is_contiguous(memory_format=torch.channels_last_3d), name
    finally:
        torch.set_num_threads(before)

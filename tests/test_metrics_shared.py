"""Metrics of one run share models and per-clip work (CLIP frame embeddings, optical flows)."""

import numpy as np
import pytest
import torch

import vdmbench.features.flow as flow_mod
from tests._clips import moving_squares
from vdmbench.features.cache import SharedWork
from vdmbench.metrics import ClipBatch, MetricContext, build_metric

CLIP = {"model": "ViT-S-32", "pretrained": "random"}  # small: the test counts, not the model


def _batch(videos):
    return ClipBatch(videos=videos, prompts=["a red square moving right"] * len(videos))


@pytest.fixture(scope="module")
def clips():
    return moving_squares(2, 3, 32, 32, seed=7)


def _count_images(encoder):
    """Wrap the (shared) model's image tower: frames encoded so far."""
    seen = [0]
    inner = encoder.model.encode_image

    def encode_image(pix, *a, **k):
        seen[0] += len(pix)
        return inner(pix, *a, **k)

    encoder.model.encode_image = encode_image
    return seen


def test_clip_metrics_share_model_and_frame_embeddings(clips):
    ctx = MetricContext()
    sim, tmp = (build_metric({"name": n, **CLIP}, ctx) for n in ("clip_similarity", "clip_temporal"))
    assert sim.encoder is tmp.encoder  # the model is built once
    seen = _count_images(sim.encoder)
    shared = {**sim.sample_values(_batch(clips)), **tmp.sample_values(_batch(clips.clone()))}
    assert seen[0] == 6  # 2 clips x 3 frames, encoded once: the second metric reused the first's work
    assert ctx.shared.computed == {tmp._kind: 2} and ctx.shared.reused == {tmp._kind: 2}
    alone = {}
    for name in ("clip_similarity", "clip_temporal"):  # each with its own memo (lent the same model)
        own = MetricContext()
        own.shared._models.update(ctx.shared._models)
        alone.update(build_metric({"name": name, **CLIP}, own).sample_values(_batch(clips)))
    assert seen[0] == 6 + 2 * 6  # without sharing, each metric encodes every frame
    for k, v in alone.items():
        assert torch.equal(shared[k], v), k
    assert ctx.shared.bytes == 0 and not ctx.shared._entries  # read by both: nothing left behind


@pytest.fixture
def dis_calls(monkeypatch):
    calls = [0]
    inner = flow_mod.dis_flow

    def counting(a, b, *args, **kw):
        calls[0] += 1
        return inner(a, b, *args, **kw)

    monkeypatch.setattr(flow_mod, "dis_flow", counting)
    return calls


@pytest.mark.parametrize("order", [("flow_warping_error", "motion"), ("motion", "flow_warping_error")])
def test_flow_metrics_share_flows(clips, dis_calls, order):
    pairs = 2 * 2  # 2 clips x 2 consecutive pairs
    alone = {}
    for name in order:
        alone.update(build_metric(name, MetricContext()).sample_values(_batch(clips)))
    assert dis_calls[0] == 3 * pairs  # warping: forward + backward; motion: forward again
    dis_calls[0] = 0
    ctx = MetricContext()
    first, second = (build_metric(n, ctx) for n in order)
    assert first.flow.estimator is second.flow.estimator
    shared = {**first.sample_values(_batch(clips)), **second.sample_values(_batch(clips))}
    assert dis_calls[0] == 2 * pairs  # each forward and each backward flow computed once
    for k, v in alone.items():
        assert torch.equal(shared[k], v), k
    assert ctx.shared.bytes == 0 and not ctx.shared._entries


def test_one_reader_keeps_nothing_and_budget_bounds_memory():
    work = SharedWork(max_bytes=3 * 8 * 4)  # room for three results of 4 float64
    solo = work.register("solo")
    videos = torch.arange(5 * 2, dtype=torch.uint8).reshape(5, 2)
    out = work.per_clip("solo", solo, videos, lambda idx: [np.full(4, float(i)) for i in idx])
    assert [float(o[0]) for o in out] == [0, 1, 2, 3, 4] and work.bytes == 0 and not work._entries

    a, b = work.register("pair"), work.register("pair")
    computed = []

    def compute(idx):
        computed.extend(idx)
        return [np.full(4, float(i)) for i in idx]

    work.per_clip("pair", a, videos, compute)  # five results, room for three: the two oldest dropped
    assert work.bytes == 3 * 32 and computed == [0, 1, 2, 3, 4]
    out = work.per_clip("pair", b, videos, compute)
    assert [float(o[0]) for o in out] == [0, 1, 2, 3, 4]
    assert computed == [0, 1, 2, 3, 4, 0, 1]  # b recomputed only what was dropped ...
    assert work.bytes == 0 and not work._entries  # ... and kept nothing for a, which had it all


def test_metrics_without_a_shared_context_keep_nothing(clips):
    m = build_metric("motion")
    m.update(_batch(clips))
    assert m.context.shared.bytes == 0 and not m.context.shared._entries


def test_fvd_and_kvd_share_the_i3d():
    ctx = MetricContext()
    opts = {"features": "random-i3d", "resize": 32}
    fvd, kvd = build_metric({"name": "fvd", **opts}, ctx), build_metric({"name": "kvd", **opts}, ctx)
    assert fvd.extractor is kvd.extractor
    assert fvd.describe()["covariance"] == "unbiased" and "covariance" not in kvd.describe()
    other = build_metric({"name": "fvd", **opts, "layer": "pool"}, ctx)
    assert other.extractor is not fvd.extractor and other.extractor.dim == 1024

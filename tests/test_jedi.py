"""JEDi: V-JEPA features (checkpoint formats, preprocessing, forward pass) and the polynomial MMD.

The published files (vith16.pth.tar ~2.5 GB, ssv2-probe.pth.tar) cannot be fetched here: the tests
synthesize both in their published layout (keys under 'target_encoder' with DDP 'module.' and
'backbone.' prefixes; the probe under 'classifier' with 'module.') at a small width, and check
the features against an independent float64 NumPy re-computation.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features.vjepa import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VIT_H,
    AttentiveClassifier,
    VJEPAEncoder,
    build_vjepa_features,
    init_random_,
    vjepa_preprocess,
)
from vdmbench.metrics.base import ClipBatch, MetricContext
from vdmbench.metrics.jedi import JEDi, bootstrap_jedi, jedi_from_moments, jedi_pairwise

# Real key names and layout at a small width: 32x32 frames -> 2x2 patches of 16, tubelet 2, 4 frames.
TINY = replace(VIT_H, embed_dim=16, depth=2, num_heads=2, mlp_hidden=32, probe_mlp_hidden=24, img_size=32,
               num_frames=4)


def clips(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, t, h, w, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def synthesized(cfg=TINY, seed: int = 5) -> tuple[dict, dict]:
    """Random encoder and probe state dicts (LayerNorm scales near 1, everything else random)."""
    gen = torch.Generator().manual_seed(seed)

    def fill(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in module.state_dict().items():
            t = torch.randn(v.shape, generator=gen)
            out[k] = 1 + 0.2 * t if "norm" in k and k.endswith("weight") else 0.3 * t
        return out

    return fill(VJEPAEncoder(cfg)), fill(AttentiveClassifier(cfg))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    enc, probe = synthesized()
    root = tmp_path_factory.mktemp("vjepa")
    # As facebookresearch/jepa saves them: several state dicts and training scalars in one pickle.
    torch.save({"encoder": {f"module.backbone.{k}": v + 1 for k, v in enc.items()},  # not the one JEDi uses
                "target_encoder": {f"module.backbone.{k}": v for k, v in enc.items()},
                "epoch": 300, "lr": 1e-4, "batch_size": 24}, root / "vith16.pth.tar")
    torch.save({"classifier": {f"module.{k}": v for k, v in probe.items()}, "epoch": 20}, root / "ssv2-probe.pth.tar")
    return root, enc, probe


def build_tiny(root, **kw):
    return build_vjepa_features("vjepa", weights=str(root / "vith16.pth.tar"),
                                probe_weights=str(root / "ssv2-probe.pth.tar"), config=TINY, cache_dir=root, **kw)


# --- an independent float64 NumPy re-computation -------------------------------------------------------

def resample_axis(a: np.ndarray, axis: int, n_out: int, scale: float) -> np.ndarray:
    """Linear resampling along `axis` with torch's scale-factor rule (align_corners=False):
    src = (i + 0.5) / scale - 0.5, clamped at 0, neighbours clamped to the last sample."""
    n_in = a.shape[axis]
    a = np.moveaxis(a, axis, 0)
    out = np.zeros((n_out, *a.shape[1:]))
    for i in range(n_out):
        src = max((i + 0.5) / scale - 0.5, 0.0)
        lo = min(int(math.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        out[i] = a[lo] * (1 - (src - lo)) + a[hi] * (src - lo)
    return np.moveaxis(out, 0, axis)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def attention(q, k, v, heads):
    hd = q.shape[-1] // heads
    out = np.zeros_like(q)
    for j in range(heads):
        sl = slice(j * hd, (j + 1) * hd)
        logits = q[..., sl] @ np.swapaxes(k[..., sl], -1, -2) / math.sqrt(hd)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        out[..., sl] = (a / a.sum(-1, keepdims=True)) @ v[..., sl]
    return out


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def features_np(enc: dict, probe: dict, videos: np.ndarray, cfg=TINY) -> np.ndarray:
    p = {k: v.double().numpy() for k, v in enc.items()}
    c = {k: v.double().numpy() for k, v in probe.items()}
    x = videos.astype(np.float64) / 255.0  # [B, T, H, W, 3]
    x = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    b, t, h, w, _ = x.shape
    pt, ps, d = cfg.tubelet_size, cfg.patch_size, cfg.embed_dim
    nt, nh, nw = t // pt, h // ps, w // ps
    wproj = p["patch_embed.proj.weight"]  # [D, 3, pt, ps, ps]
    tokens = np.zeros((b, nt * nh * nw, d))
    for i in range(nt):
        for r in range(nh):
            for s in range(nw):
                patch = x[:, i * pt:(i + 1) * pt, r * ps:(r + 1) * ps, s * ps:(s + 1) * ps, :]  # [B, pt, ps, ps, 3]
                tokens[:, (i * nh + r) * nw + s] = np.einsum("btyxc,dctyx->bd", patch, wproj) + p["patch_embed.proj.bias"]
    gt, gh, gw = cfg.grid
    pos = p["pos_embed"].reshape(gt, gh, gw, d)
    if (t, h, w) != (cfg.num_frames, cfg.img_size, cfg.img_size):
        for axis, (n_out, n_in) in enumerate(((nt, gt), (nh, gh), (nw, gw))):
            pos = resample_axis(pos, axis, n_out, n_out / n_in)
    tokens = tokens + pos.reshape(-1, d)
    for blk in range(cfg.depth):
        q_ = f"blocks.{blk}."
        y = layer_norm(tokens, p[q_ + "norm1.weight"], p[q_ + "norm1.bias"], 1e-6)
        qkv = y @ p[q_ + "attn.qkv.weight"].T + p[q_ + "attn.qkv.bias"]
        att = attention(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], cfg.num_heads)
        tokens = tokens + att @ p[q_ + "attn.proj.weight"].T + p[q_ + "attn.proj.bias"]
        y = layer_norm(tokens, p[q_ + "norm2.weight"], p[q_ + "norm2.bias"], 1e-6)
        tokens = tokens + gelu(y @ p[q_ + "mlp.fc1.weight"].T + p[q_ + "mlp.fc1.bias"]) @ p[q_ + "mlp.fc2.weight"].T \
            + p[q_ + "mlp.fc2.bias"]
    tokens = layer_norm(tokens, p["norm.weight"], p["norm.bias"], 1e-6)
    # Attentive pooler: one query token attends to the normalized tokens (LayerNorm eps 1e-5).
    a = "pooler.cross_attention_block."
    kv_in = layer_norm(tokens, c[a + "norm1.weight"], c[a + "norm1.bias"], 1e-5)
    query = np.broadcast_to(c["pooler.query_tokens"], (b, 1, d))
    q = query @ c[a + "xattn.q.weight"].T + c[a + "xattn.q.bias"]
    kv = kv_in @ c[a + "xattn.kv.weight"].T + c[a + "xattn.kv.bias"]
    y = attention(q, kv[..., :d], kv[..., d:], cfg.num_heads) @ c[a + "xattn.proj.weight"].T + c[a + "xattn.proj.bias"]
    query = query + y
    z = layer_norm(query, c[a + "norm2.weight"], c[a + "norm2.bias"], 1e-5)
    query = query + gelu(z @ c[a + "mlp.fc1.weight"].T + c[a + "mlp.fc1.bias"]) @ c[a + "mlp.fc2.weight"].T \
        + c[a + "mlp.fc2.bias"]
    return query[:, 0]


# --- features ------------------------------------------------------------------------------------------

def test_published_key_layout_of_vit_h_and_the_probe():
    with torch.device("meta"):
        enc, probe = VJEPAEncoder(VIT_H), AttentiveClassifier(VIT_H)
    e = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert len(e) == 32 * 12 + 5 and e["pos_embed"] == (1, 8 * 14 * 14, 1280)
    assert e["patch_embed.proj.weight"] == (1280, 3, 2, 16, 16) and e["blocks.31.attn.qkv.bias"] == (3840,)
    assert e["blocks.0.mlp.fc1.weight"] == (5120, 1280) and e["norm.weight"] == (1280,)
    assert sum(math.prod(s) for s in e.values()) == 633_655_040  # ViT-H/16 + its 16x224x224 table
    c = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    assert c["pooler.query_tokens"] == (1, 1, 1280) and c["pooler.cross_attention_block.xattn.kv.weight"] == (2560, 1280)
    assert c["linear.weight"] == (174, 1280) and len(c) == 17


def test_synthesized_checkpoints_load_strictly_and_match_float64_reference(files):
    root, enc, probe = files
    extractor, info = build_tiny(root)
    assert info["weights_sha256"] and info["probe_sha256"] and info["comparable"] is False  # small config
    for shape in ((2, 4, 32, 32), (2, 6, 48, 32)):  # trained size; then the position table resampled
        videos = clips(*shape, seed=shape[1])
        got = extractor(videos)
        want = features_np(enc, probe, videos.numpy())
        err = float(np.abs(got.numpy() - want).max())
        assert got.dtype == torch.float64 and got.shape == (2, TINY.embed_dim)
        assert err < 1e-4 * max(1.0, float(np.abs(want).max())), f"{shape}: max abs diff {err:.2e}"
        assert float(np.abs(want[0] - want[1]).max()) > 1e-3  # two clips, two features: the test can fail


def test_mean_pooling_needs_no_probe(files):
    root, enc, _ = files
    extractor, info = build_vjepa_features("vjepa", weights=str(root / "vith16.pth.tar"), pooling="mean", config=TINY,
                                           cache_dir=root / "no-probe-here")
    assert "probe_weights" not in info
    videos = clips(1, 4, 32, 32, seed=2)
    model = VJEPAEncoder(TINY)
    model.load_state_dict(enc)
    with torch.no_grad():
        want = model(vjepa_preprocess(videos)).mean(1).double()
    assert torch.allclose(extractor(videos), want, atol=1e-6)


@pytest.mark.parametrize("which, change, message", [
    ("probe", lambda s: s.pop("module.pooler.query_tokens"), "missing key 'pooler.query_tokens'"),
    ("encoder", lambda s: s.update({"module.backbone.pos_embed": torch.zeros(1, 9, 16)}),
     "key 'pos_embed' has shape [1, 9, 16], expected [1, 8, 16]"),
])
def test_wrong_keys_give_a_one_line_error(tmp_path, which, change, message):
    enc, probe = synthesized()
    e = {f"module.backbone.{k}": v for k, v in enc.items()}
    c = {f"module.{k}": v for k, v in probe.items()}
    change(c if which == "probe" else e)
    torch.save({"target_encoder": e}, tmp_path / "vith16.pth.tar")
    torch.save({"classifier": c}, tmp_path / "ssv2-probe.pth.tar")
    with pytest.raises(WeightsError) as err:
        build_tiny(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert ("ssv2-probe.pth.tar" if which == "probe" else "vith16.pth.tar") in str(err.value)


def test_checkpoint_without_the_expected_entry_is_named(tmp_path):
    torch.save({"predictor": {"a": torch.zeros(1)}}, tmp_path / "vith16.pth.tar")
    with pytest.raises(WeightsError, match="no state dict under 'target_encoder' or 'encoder' .*predictor"):
        build_tiny(tmp_path)


def test_preprocessing_normalizes_per_channel_and_resizes_nearest():
    videos = clips(2, 3, 5, 7, seed=8)
    got = vjepa_preprocess(videos)
    assert got.shape == (2, 3, 3, 5, 7)
    want = (videos.numpy() / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)  # [B, T, H, W, 3]
    assert float(np.abs(got.permute(0, 2, 3, 4, 1).double().numpy() - want).max()) < 1e-6
    resized = vjepa_preprocess(videos, (10, 14))  # nearest: output pixel i takes input floor(i * in / out)
    rows, cols = np.arange(10) * 5 // 10, np.arange(14) * 7 // 14
    assert torch.equal(resized, got[:, :, :, rows][:, :, :, :, cols])
    with pytest.raises(MetricInputError, match="uint8"):
        vjepa_preprocess(torch.rand(1, 4, 32, 32, 3))


def test_random_backend_is_labelled_deterministic_and_sees_time_order():
    cfg = replace(TINY, embed_dim=24, num_heads=3)
    a, info = build_vjepa_features("random-vjepa", seed=1, config=cfg)
    b, _ = build_vjepa_features("random-vjepa", seed=1, config=cfg)
    videos = clips(2, 4, 32, 32, seed=3)
    fa = a(videos)
    assert info["comparable"] is False and info["label"] == "not comparable with published numbers"
    assert torch.equal(fa, b(videos))
    assert float((fa - a(videos.flip(1))).abs().max()) > 1e-4
    enc, probe = init_random_(VJEPAEncoder(cfg), 1), init_random_(AttentiveClassifier(cfg), 2)
    want = features_np(enc.state_dict(), probe.state_dict(), videos.numpy(), cfg)
    assert float(np.abs(fa.numpy() - want).max()) < 1e-5


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "jepa"}, "features must be one of"),
    ({"backend": "random-vjepa", "pooling": "cls"}, "pooling must be one of"),
    ({"backend": "random-vjepa", "resize": [1, 2, 3]}, "resize must be"),
])
def test_bad_options_are_config_errors(kwargs, message):
    backend = kwargs.pop("backend")
    with pytest.raises(ConfigError, match=message):
        build_vjepa_features(backend, **kwargs)


# --- the distance ----------------------------------------------------------------------------------------

def test_known_answer_of_videojedis_own_example():
    a = np.arange(1, 10).reshape(3, 3)
    b = np.array([[7, 6, 5], [4, 3, 2], [1, 1, 8], [0, 2, 5]])

    def k_mean(x, y):  # exact rational mean of ((x . y) / 3)^2
        vals = [Fraction(int(np.dot(u, v)), 3) ** 2 for u in x for v in y]
        return sum(vals) / len(vals)

    exact = 100 * (k_mean(a, a) + k_mean(b, b) - 2 * k_mean(a, b))
    assert float(exact) == pytest.approx(27072.2222, abs=1e-3)  # videojedi's comment: mmd_poly(a, b) = 270.7
    assert jedi_pairwise(a, b) == pytest.approx(float(exact), rel=1e-12)
    s = (lambda x: x.T @ x / len(x))
    assert jedi_from_moments(s(a.astype(float)), s(b.astype(float)), 3) == pytest.approx(float(exact), rel=1e-12)


def test_moments_equal_the_pairwise_formula_and_bootstrap_equals_resampling():
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(40, 7)), rng.normal(0.3, 1.2, size=(30, 7))

    def s(x):
        return x.T @ x / len(x)

    assert jedi_from_moments(s(fake), s(real), 7) == pytest.approx(jedi_pairwise(fake, real), rel=1e-10)
    assert jedi_pairwise(fake, fake) == pytest.approx(0.0, abs=1e-12)
    boot = bootstrap_jedi(fake, s(real), 5, seed=3)
    draw = np.random.default_rng(3)
    for value in boot:
        idx = draw.integers(0, len(fake), len(fake))
        assert value == pytest.approx(jedi_pairwise(fake[idx], real), rel=1e-9)


def test_metric_streams_batches_and_reads_the_reference_set(tmp_path):
    def reference():
        yield ClipBatch(videos=real[:3])
        yield ClipBatch(videos=real[3:])

    fake, real = clips(5, 4, 32, 32, seed=11), clips(4, 4, 32, 32, seed=12)
    ctx = MetricContext(cache_dir=tmp_path, reference=reference, reference_id="ref-1")
    metric = JEDi(ctx, features="random-vjepa", n_boot=50)
    for part in (fake[:2], fake[2:]):
        metric.update(part)
    out = metric.compute()
    ex = metric.extractor
    # Features batched as the metric saw them (the extractor's float32 rounding depends on the batch).
    want = jedi_pairwise(torch.cat([ex(fake[:2]), ex(fake[2:])]).numpy(), torch.cat([ex(real[:3]), ex(real[3:])]).numpy())
    assert out["jedi"] == pytest.approx(want, rel=1e-9) and out["jedi"] > 0
    assert out["jedi_ci_low"] <= out["jedi_ci_high"]
    d = metric.describe()
    assert d["comparable"] is False and d["label"] == "not comparable with published JEDi"
    assert d["n"] == 5 and d["n_reference"] == 4
    # update_real instead of the reference set; the same clips on both sides give 0.
    same = JEDi(MetricContext(), features="random-vjepa", ci=False)
    same.update(fake)
    same.update_real(fake)
    assert same.compute()["jedi"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(MetricInputError, match="uint8"):
        same.update(fake.float() / 255)

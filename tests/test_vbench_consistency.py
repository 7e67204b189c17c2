"""VBench's subject_consistency (DINO) and background_consistency (CLIP ViT-B/32).

The networks are DINO's ViT (small widths for speed, DINO's real key names; the real ViT-B/16
key set is checked separately) and the real CLIP ViT-B/32, both with seeded random weights saved
in the published formats and loaded through the real loaders. Per-video and run values are
compared with a re-computation written here from VBench's code: its torchvision transforms on the
float32 tensor its load_video returns, one frame at a time for DINO (a float64 forward written
from DINO's vision_transformer.py), F.normalize + F.cosine_similarity + max(0, .), and the sums
`video_sim / (T - 1)` per video and `sim / cnt` over all frame pairs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from tests._clips import moving_squares
from tests._openai_clip_files import clip_metric_context, float64_reference, vit_b32_archive
from vdmbench.core.errors import MetricInputError, WeightsError
from vdmbench.features import dino
from vdmbench.metrics import ClipBatch, MetricContext, build_metric

TINY = dino.DinoArch(patch_size=16, embed_dim=48, depth=2, num_heads=3)


# -- the reference: VBench's code, written out ---------------------------------------------------

def vbench_load_video(clip: torch.Tensor) -> torch.Tensor:
    # vbench/utils.py load_video: torch.Tensor(uint8 array) is float32; then (T, C, H, W).
    return torch.Tensor(clip.numpy()).permute(0, 3, 1, 2)


def vbench_dino_transform(n_px: int):
    # VBench's dino_transform with its pinned torchvision (< 0.16): tensor resizes do not antialias.
    return T.Compose([T.Resize(size=n_px, antialias=False), T.Lambda(lambda x: x.float().div(255.0)),
                      T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])


def vbench_clip_transform(n_px: int):
    return T.Compose([T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC, antialias=False),
                      T.CenterCrop(n_px), T.Lambda(lambda x: x.float().div(255.0)),
                      T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


def dino_forward_float64(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int, patch: int = 16) -> torch.Tensor:
    """DINO's VisionTransformer.forward (vision_transformer.py) in float64, from its state dict."""
    sd = {k: v.to(torch.float64) for k, v in sd.items()}
    x = x.to(torch.float64)
    b, _, w, h = x.shape  # DINO's names: w is the height, h the width
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=patch).flatten(2).transpose(1, 2)
    t = torch.cat((sd["cls_token"].expand(b, -1, -1), t), dim=1)
    pos = sd["pos_embed"]
    n = pos.shape[1] - 1
    if not (t.shape[1] - 1 == n and w == h):
        dim = t.shape[-1]
        w0, h0 = w // patch + 0.1, h // patch + 0.1
        grid = F.interpolate(pos[:, 1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), dim).permute(0, 3, 1, 2),
                             scale_factor=(w0 / math.sqrt(n), h0 / math.sqrt(n)), mode="bicubic")
        pos = torch.cat((pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)
    t = t + pos
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        p = f"blocks.{i}."
        y = F.layer_norm(t, t.shape[-1:], sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-6)
        bb, nn_, c = y.shape
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(bb, nn_, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
        y = F.linear((attn @ v).transpose(1, 2).reshape(bb, nn_, c), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        t = t + y
        y = F.layer_norm(t, t.shape[-1:], sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-6)
        y = F.linear(F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        t = t + y
    return F.layer_norm(t, t.shape[-1:], sd["norm.weight"], sd["norm.bias"], 1e-6)[:, 0]


def vbench_video_sim(features: list[torch.Tensor]) -> tuple[float, int]:
    """vbench/subject_consistency.py's loop: (video_sim, number of pairs) from per-frame features [1, D]."""
    video_sim, cnt = 0.0, 0
    first = former = None
    for i, feat in enumerate(features):
        feat = F.normalize(feat, dim=-1, p=2)
        if i == 0:
            first = feat
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, feat).item())
            sim_fir = max(0.0, F.cosine_similarity(first, feat).item())
            video_sim += (sim_pre + sim_fir) / 2
            cnt += 1
        former = feat
    return video_sim, cnt


def random_dino_state(arch: dino.DinoArch, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in dino.DinoVisionTransformer(arch).state_dict().items()}
    state = {}
    for k, shape in shapes.items():
        if "norm" in k and k.endswith("weight"):
            state[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("bias"):
            state[k] = 0.05 * torch.randn(shape, generator=g)
        elif k in ("cls_token", "pos_embed"):
            state[k] = 0.5 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            state[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return state


@pytest.fixture
def tiny_dino(tmp_path, monkeypatch):
    monkeypatch.setitem(dino.ARCHS, "dino_test_tiny", TINY)
    state = random_dino_state(TINY, seed=7)
    path = tmp_path / "dino_vitbase16_pretrain.pth"
    torch.save(state, path)  # DINO's format: a plain state dict
    return path, state


def clips_set() -> list[torch.Tensor]:
    """Batches of synthetic 24-fps-style clips: non-square, odd sizes, static and moving, two lengths."""
    rng = np.random.default_rng(5)
    moving = moving_squares(2, 5, 41, 67, seed=3, speed=6.0, pan=2.0)  # upscaled, wide
    tall = moving_squares(1, 3, 243, 227, seed=4, speed=20.0)  # downscaled, tall
    static = torch.from_numpy(np.repeat(rng.integers(0, 256, (1, 1, 37, 53, 3), dtype=np.uint8), 4, axis=1))
    return [moving, tall, static]


# -- DINO -------------------------------------------------------------------------------------------

def test_dino_vitb16_has_dinos_keys_and_shapes() -> None:
    with torch.device("meta"):
        sd = dino.DinoVisionTransformer(dino.ARCHS["dino_vitb16"]).state_dict()
    assert len(sd) == 4 + 12 * 12 + 2  # cls, pos, patch w/b; 12 tensors per block; final norm
    assert sd["pos_embed"].shape == (1, 197, 768) and sd["cls_token"].shape == (1, 1, 768)
    assert sd["patch_embed.proj.weight"].shape == (768, 3, 16, 16)
    assert sd["blocks.11.attn.qkv.weight"].shape == (2304, 768) and "blocks.11.attn.qkv.bias" in sd
    assert sd["blocks.0.mlp.fc1.weight"].shape == (3072, 768) and sd["norm.bias"].shape == (768,)
    assert dino.DINO_VITB16.vbench_path == "dino_model/dino_vitbase16_pretrain.pth"


@pytest.mark.parametrize("h,w", [(224, 298), (224, 224), (301, 224)])
def test_dino_forward_matches_dinos_code_in_float64(tiny_dino, h: int, w: int) -> None:
    path, state = tiny_dino
    net, info = dino.load_dino("dino_test_tiny", weights=str(path), device="cpu")
    assert info["weights_source"] == "explicit" and not info["comparable"]  # not the ViT-B/16 VBench uses
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h + w))
    with torch.no_grad():
        got = net(x)
    torch.testing.assert_close(got.double(), dino_forward_float64(state, x, TINY.num_heads), rtol=1e-5, atol=1e-5)


def test_dino_position_grid_uses_the_scale_factor_not_the_size(tiny_dino) -> None:
    # timm resizes the grid to a target size; DINO passes scale_factor=(n + 0.1) / 14, which moves the
    # bicubic sampling positions: the two grids differ, so a size-based ViT would not reproduce VBench.
    _, state = tiny_dino
    pos = state["pos_embed"][:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    by_factor = F.interpolate(pos, scale_factor=(14.1 / 14, 18.1 / 14), mode="bicubic")
    by_size = F.interpolate(pos, size=(14, 18), mode="bicubic", align_corners=False)
    assert by_factor.shape == by_size.shape and (by_factor - by_size).abs().max() > 1e-3
    net, _ = dino.load_dino("dino_test_tiny", weights=str(tiny_dino[0]), device="cpu")
    tokens = torch.zeros(1, 1 + 14 * 18, TINY.embed_dim)
    grid = net.interpolate_pos_encoding(tokens, 224, 288)[:, 1:].reshape(1, 14, 18, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(grid, by_factor)


def test_dino_loader_is_strict(tiny_dino, tmp_path) -> None:
    _, state = tiny_dino
    torch.save({k: v for k, v in state.items() if k != "blocks.1.norm2.bias"}, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="missing key 'blocks.1.norm2.bias'"):
        dino.load_dino("dino_test_tiny", weights=str(tmp_path / "missing.pth"))
    torch.save({f"teacher.backbone.{k}": v for k, v in state.items()}, tmp_path / "full.pth")
    with pytest.raises(WeightsError, match="full DINO training checkpoint"):
        dino.load_dino("dino_test_tiny", weights=str(tmp_path / "full.pth"))
    torch.save({**state, "pos_embed": torch.zeros(1, 50, TINY.embed_dim)}, tmp_path / "shape.pth")
    with pytest.raises(WeightsError, match=r"'pos_embed' has shape \[1, 50, 48\]"):
        dino.load_dino("dino_test_tiny", weights=str(tmp_path / "shape.pth"))
    with pytest.raises(WeightsError, match="not DINO dino_vitb16 weights: missing key .blocks.2"):  # ViT-B/16 from a tiny file
        dino.load_dino("dino_vitb16", weights=str(tiny_dino[0]))


@pytest.mark.parametrize("h,w", [(41, 67), (243, 227), (224, 300), (37, 37)])
def test_dino_transform_equals_vbench(h: int, w: int) -> None:
    clip = torch.from_numpy(np.random.default_rng(h).integers(0, 256, (2, h, w, 3), dtype=np.uint8))
    expected = vbench_dino_transform(224)(vbench_load_video(clip))
    got = dino.vbench_dino_transform(clip, 224)
    assert got.shape == expected.shape and min(got.shape[-2:]) == 224
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6)


# -- the metrics --------------------------------------------------------------------------------------

def vbench_subject_reference(state, batches) -> tuple[list[float], float]:
    """VBench's subject_consistency over the clips: per-video values and sim / cnt."""
    transform = vbench_dino_transform(224)
    per_video, sim, cnt = [], 0.0, 0
    for videos in batches:
        for clip in videos:
            images = transform(vbench_load_video(clip))
            feats = [dino_forward_float64(state, images[i].unsqueeze(0), TINY.num_heads) for i in range(len(images))]
            video_sim, n = vbench_video_sim(feats)
            per_video.append(video_sim / (len(images) - 1))
            sim, cnt = sim + video_sim, cnt + n
    return per_video, sim / cnt


def run_metric(metric, batches) -> tuple[list[float], list[float]]:
    values, weights = [], []
    for videos in batches:
        out = metric.sample_values(ClipBatch(videos=videos, fps=[24.0] * len(videos)))
        metric.update(ClipBatch(videos=videos, fps=[24.0] * len(videos)), values=out)
        values += out[metric.name].tolist()
        weights += out[f"{metric.name}_weight"].tolist()
    return values, weights


def test_subject_consistency_equals_vbench(tiny_dino) -> None:
    path, state = tiny_dino
    batches = clips_set()
    m = build_metric({"name": "subject_consistency", "model": "dino_test_tiny", "weights": str(path)},
                     MetricContext(seed=0))
    values, weights = run_metric(m, batches)
    expected, expected_run = vbench_subject_reference(state, batches)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    assert weights == [4.0, 4.0, 2.0, 3.0]  # frame pairs
    assert values[-1] == 1.0  # a static clip: exactly 1
    assert values[0] < 0.999 and values[2] < 0.999  # moving clips are not
    run = m.compute()
    assert float(run["subject_consistency"]) == pytest.approx(expected_run, abs=1e-5)
    # VBench weighs by frame pairs: the plain mean over videos is a different number here.
    assert abs(float(np.mean(values)) - expected_run) > 1e-4
    assert float(run["subject_consistency_weight"]) == 13.0
    assert m.describe()["protocol"] == "VBench subject_consistency" and not m.comparable


def vbench_background_reference(model64, batches) -> tuple[list[float], float]:
    transform = vbench_clip_transform(224)
    per_video, sim, cnt = [], 0.0, 0
    for videos in batches:
        for clip in videos:
            images = transform(vbench_load_video(clip))
            with torch.no_grad():
                feats = model64.encode_image(images.double())
            video_sim, n = vbench_video_sim([feats[i].unsqueeze(0) for i in range(len(feats))])
            per_video.append(video_sim / n)
            sim, cnt = sim + video_sim, cnt + n
    return per_video, sim / cnt


def test_background_consistency_equals_vbench() -> None:
    path, _ = vit_b32_archive()
    batches = clips_set()
    batches[0] = batches[0][:1]  # one wide moving clip is enough here (CLIP ViT-B/32 in float64 is slow)
    ctx = clip_metric_context()
    m = build_metric({"name": "background_consistency", "weights": str(path)}, ctx)
    values, weights = run_metric(m, batches)
    assert m.info["weights_pinned"] is False  # a random file: not the hash OpenAI publishes
    # The same fp16 weights, upcast, run by open_clip in float64 (not through vdmbench's loader).
    expected, expected_run = vbench_background_reference(float64_reference(), batches)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    assert weights == [4.0, 2.0, 3.0]
    assert values[-1] == 1.0 and values[0] < 0.999
    assert float(m.compute()["background_consistency"]) == pytest.approx(expected_run, abs=1e-5)
    # One CLIP per run: a second metric on the same context borrows the loaded model.
    again = build_metric({"name": "background_consistency", "weights": str(path)}, ctx)
    assert again.model is m.model


def test_bad_inputs_give_one_line_errors(tiny_dino) -> None:
    m = build_metric({"name": "subject_consistency", "model": "dino_test_tiny", "weights": str(tiny_dino[0])})
    one_frame = torch.zeros(1, 1, 32, 32, 3, dtype=torch.uint8)
    with pytest.raises(MetricInputError, match="at least 2 frames"):
        m.sample_values(ClipBatch(videos=one_frame))
    with pytest.raises(MetricInputError, match=r"floats in \[0, 1\]"):
        m.sample_values(ClipBatch(videos=torch.rand(1, 3, 32, 32, 3)))
    with pytest.raises(Exception, match="pretrained must be 'dino' or 'random'"):
        build_metric({"name": "subject_consistency", "pretrained": "imagenet"})


def test_random_weights_are_labelled_not_comparable() -> None:
    m = build_metric({"name": "subject_consistency", "pretrained": "random", "model": "dino_vits16"},
                     MetricContext(seed=2))
    d = m.describe()
    assert not m.comparable and "not comparable" in d["label"] and d["weights"] == "random (seed 2)"


def test_dino_weights_are_found_in_vbenchs_cache(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "vbench" / "dino_model"
    cache.mkdir(parents=True)
    torch.save({"cls_token": torch.zeros(1)}, cache / "dino_vitbase16_pretrain.pth")
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    found = dino.find_weights()
    assert found.source == "vbench-cache" and found.path == cache / "dino_vitbase16_pretrain.pth"
    assert not found.pinned  # DINO publishes no checksum: recorded, not checked
    with pytest.raises(WeightsError, match="missing key 'pos_embed'"):
        dino.load_dino("dino_vitb16")

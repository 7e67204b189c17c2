"""VBench's imaging_quality: the resize rule on large and small frames, per-video and run values
against a float64 re-computation of vbench/imaging_quality.py (with pyiqa's MUSIQ re-computed in
tests/_musiq_reference.py), weights found where VBench keeps them, and random weights labelled."""

import numpy as np
import pytest
import torch
import torchvision.transforms as T

from tests import _musiq_reference as ref
from tests._clips import moving_squares
from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features.musiq import MUSIQ_SPAQ, MusiqConfig, random_musiq
from vdmbench.metrics import ClipBatch, MetricContext, build_metric
from vdmbench.metrics.vbench_imaging_quality import vbench_preprocess, vbench_resize_size

SMALL = MusiqConfig(hidden_size=128, mlp_dim=192, num_heads=2, num_layers=2)  # 2 heads of 64


@pytest.fixture(autouse=True)
def no_real_caches(tmp_path, monkeypatch):
    """Weights only where a test puts them: no user cache, no VBench cache, no $VDMBENCH_WEIGHTS."""
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A narrow MUSIQ with seeded random weights, saved as pyiqa publishes it (plain state dict)."""
    model = random_musiq(11, SMALL)
    with torch.no_grad():  # embeddings large enough to matter; a MOS-like offset
        enc = model.transformer_encoder
        g = torch.Generator().manual_seed(0)
        for t in (enc.posembed_input.position_emb, enc.scaleembed_input.scale_emb, enc.cls):
            t.normal_(0, 0.5, generator=g)
        model.head.bias.fill_(50.0)
    path = tmp_path_factory.mktemp("w") / MUSIQ_SPAQ.filename
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def metric(path, ctx=None, **options):
    return build_metric({"name": "imaging_quality", "weights": str(path), **options},
                        ctx or MetricContext(batch_size=4))


def batch(clips, fps=24.0):
    return ClipBatch(videos=clips, fps=[fps] * len(clips), prompts=[""] * len(clips))


# -- the resize rule -------------------------------------------------------------------------------

def test_resize_sizes_follow_vbench_including_its_float_truncation():
    assert vbench_resize_size(1080, 1920, "longer") == (288, 512)
    assert vbench_resize_size(720, 1280, "longer") == (288, 512)
    assert vbench_resize_size(600, 520, "longer") == (512, 443)
    # 512 / 561 * 561 = 511.99999999999994 in floats; VBench's int() makes it 511.
    assert vbench_resize_size(561, 300, "longer") == (511, 273)
    for h, w in [(512, 512), (480, 320), (37, 53), (512, 100)]:  # at most 512: kept as is
        assert vbench_resize_size(h, w, "longer") is None
    assert vbench_resize_size(720, 1280, "shorter") == (512, 910)
    assert vbench_resize_size(480, 1280, "shorter") is None
    assert vbench_resize_size(4000, 600, "None") is None


def test_preprocessing_is_vbenchs_torchvision_resize_then_division():
    rng = np.random.default_rng(0)
    big = torch.from_numpy(rng.integers(0, 256, (2, 30, 600, 3), dtype=np.uint8))
    got = vbench_preprocess(big)
    assert got.shape == (2, 3, 25, 512) and got.dtype == torch.float32
    # VBench's literal code path: torch.Tensor(uint8) -> Resize(antialias=False) -> / 255.
    vb = T.Resize(size=(25, 512), antialias=False)(torch.Tensor(big.numpy()).permute(0, 3, 1, 2)) / 255.
    assert torch.equal(got, vb)
    want = ref.vbench_frame(big[1].numpy())
    assert np.abs(got[1].numpy() - want).max() < 1e-5  # torch's source coordinates are float32
    # Antialiasing (torchvision >= 0.17's default for tensors) gives other pixels.
    assert (vbench_preprocess(big, antialias=True) - got).abs().max() > 0.05
    small = big[:, :, :500]  # 30 x 500: not resized, only scaled
    assert torch.equal(vbench_preprocess(small), small.permute(0, 3, 1, 2).float() / 255.)


def test_center_crop_mode_crops_to_512_and_pads_a_short_side_like_torchvision():
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 561, 700, 3), dtype=np.uint8))
    got = vbench_preprocess(frames, "shorter_centercrop")  # shorter side 561 -> 511: one row of zeros
    resized = T.Resize(size=(511, 638), antialias=False)(frames.permute(0, 3, 1, 2).float())
    assert torch.equal(got, T.CenterCrop(512)(resized) / 255.)
    assert got.shape[-2:] == (512, 512) and float(got[0, :, -1].abs().sum()) == 0.0


# -- values ----------------------------------------------------------------------------------------

def test_per_video_and_run_values_equal_a_float64_recomputation(checkpoint):
    path, state = checkpoint
    moving = moving_squares(1, 2, 37, 53, seed=3, speed=6.0)[0]
    static = moving_squares(1, 1, 37, 53, seed=4)[0].expand(2, -1, -1, -1).contiguous()
    large = moving_squares(1, 1, 30, 600, seed=5)[0]  # resized to 25 x 512 first
    m = metric(path)
    first = m.sample_values(batch(torch.stack([moving, static])))
    second = m.sample_values(batch(large[None]))
    m.update(batch(torch.stack([moving, static])), first)
    m.update(batch(large[None]), second)
    per_video = [ref.vbench_video_value(state, c.numpy(), heads=2) for c in (moving, static[:1], large)]
    got = torch.cat([first["imaging_quality_musiq"], second["imaging_quality_musiq"]])
    assert np.abs(got.numpy() - per_video).max() < 1e-4  # MUSIQ's scale (about 50 here)
    got_iq = torch.cat([first["imaging_quality"], second["imaging_quality"]]).numpy()
    assert np.abs(got_iq - np.array(per_video) / 100.).max() < 1e-5
    run = m.compute()
    assert abs(float(run["imaging_quality"]) - np.mean(per_video) / 100.) < 1e-5  # plain mean over videos
    assert len(set(np.round(per_video, 3))) == 3  # the three clips really score differently


def test_a_video_is_the_mean_of_its_frames_whatever_their_order_or_repetition(checkpoint):
    path, _ = checkpoint
    m = metric(path)
    clip = moving_squares(1, 2, 33, 40, seed=8, speed=8.0)
    frames = m.frame_scores(clip)[0]
    assert abs(float(frames[0] - frames[1])) > 1e-3  # moving frames score differently
    for other in (clip[:, [1, 0]], clip[:, [0, 0, 1, 1]]):
        v = m.sample_values(batch(other))
        assert abs(float(v["imaging_quality_musiq"]) - float(frames.mean())) < 1e-4
        assert abs(float(v["imaging_quality"]) - float(frames.mean()) / 100) < 1e-6
    noise = torch.randint(-40, 41, clip.shape, generator=torch.Generator().manual_seed(0))
    noisy = (clip.int() + noise).clamp(0, 255).to(torch.uint8)
    assert abs(float(m.sample_values(batch(noisy))["imaging_quality_musiq"]) - float(frames.mean())) > 1e-3


# -- weights, options, inputs ----------------------------------------------------------------------

def test_weights_are_found_in_vbenchs_cache_layout(checkpoint, tmp_path):
    path, _ = checkpoint
    where = tmp_path / "vbench" / "pyiqa_model" / MUSIQ_SPAQ.filename
    where.parent.mkdir(parents=True)
    where.write_bytes(path.read_bytes())
    m = build_metric("imaging_quality", MetricContext())
    d = m.describe()
    assert d["weights_source"] == "vbench-cache" and d["weights"] == str(where) and d["comparable"] is True
    assert len(d["weights_sha256"]) == 64 and d["preprocessing_mode"] == "longer"


def test_missing_or_wrong_weights_say_what_to_do(checkpoint, tmp_path):
    with pytest.raises(WeightsError) as e:
        build_metric("imaging_quality", MetricContext())
    msg = str(e.value)
    assert MUSIQ_SPAQ.filename in msg and MUSIQ_SPAQ.url in msg and "pyiqa_model/" in msg
    path, state = checkpoint
    with pytest.raises(WeightsError, match="expected 00000000"):
        metric(path, weights_sha256="0" * 64)
    broken = tmp_path / "broken.pth"
    torch.save({k: v for k, v in state.items() if k != "embedding.bias"}, broken)
    with pytest.raises(WeightsError, match="missing key 'embedding.bias'"):
        metric(broken)


def test_random_weights_are_seeded_and_labelled_not_comparable():
    a = build_metric({"name": "imaging_quality", "pretrained": "random"}, MetricContext(seed=0))
    b = build_metric({"name": "imaging_quality", "pretrained": "random"}, MetricContext(seed=0))
    c = build_metric({"name": "imaging_quality", "pretrained": "random"}, MetricContext(seed=1))
    assert torch.equal(a.model.embedding.weight, b.model.embedding.weight)
    assert not torch.equal(a.model.embedding.weight, c.model.embedding.weight)
    d = a.describe()
    assert a.comparable is False and d["comparable"] is False
    assert "not comparable with published numbers" in d["label"]


def test_bad_options_and_inputs_are_refused(checkpoint):
    path, _ = checkpoint
    with pytest.raises(ConfigError, match="preprocessing_mode must be one of"):
        metric(path, preprocessing_mode="longest")
    with pytest.raises(ConfigError, match="pretrained must be 'spaq' or 'random'"):
        metric(path, pretrained="koniq")
    m = metric(path)
    with pytest.raises(MetricInputError, match="uint8"):
        m.sample_values(batch(torch.rand(1, 2, 16, 16, 3)))


def test_gpu_numerics_are_full_float32_unless_vbenchs_own_are_asked_for(checkpoint):
    """On CUDA the forward runs without TF32 (restoring the caller's settings after); with
    vbench_gpu_compat, under torch's defaults as VBench does. Checked through the flags, no GPU needed."""
    path, _ = checkpoint
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # as a library might have left it
    try:
        m = metric(path, MetricContext())
        m.context.device = "cuda"
        with m._numerics():
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cudnn.deterministic is True
        assert torch.get_float32_matmul_precision() == "high"
        compat = metric(path, MetricContext(), vbench_gpu_compat=True)
        compat.context.device = "cuda"
        with compat._numerics():
            assert torch.backends.cudnn.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
        assert compat.describe()["vbench_gpu_compat"] is True
    finally:
        torch.set_float32_matmul_precision(before)

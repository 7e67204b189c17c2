"""AMT-S as VBench vendors it: architecture and key names, strict loading of AMT's checkpoint
format ({'state_dict': ...}), VBench's interpolation procedure and its GPU-memory scale rule.

The network runs on real-size inputs of the smallest valid size (sides > 112 pixels, padded to
128): smaller ones make VBench's correlation pyramid NaN (checked below)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests._vbench_amt_reference import vbench_interpolate
from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features.amt import (
    AMT_S_WEIGHTS,
    AMTS,
    BidirCorrBlock,
    build_amt_s,
    coords_grid,
    interpolate_midframes,
    load_amt_s,
    padding_for,
    vbench_scale,
)

GIB = 1024**3


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-stable convolutions, and fair on a shared machine
    yield
    torch.set_num_threads(old)


def random_amt(seed: int = 0) -> AMTS:
    torch.manual_seed(seed)
    return AMTS().eval()


@pytest.fixture
def checkpoint(tmp_path):
    """Seeded random AMT-S saved in AMT's published format: {'state_dict': ...} via torch.save."""
    net = random_amt(3)
    path = tmp_path / "amt-s.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    return path, net


def test_published_architecture_and_key_names():
    net = AMTS()
    sd = net.state_dict()
    # AMT's README lists AMT-S with 2.99M parameters.
    assert sum(p.numel() for p in net.parameters()) == 2_990_543
    assert len(sd) == 213
    shapes = {
        "feat_encoder.conv1.weight": (32, 3, 7, 7),
        "feat_encoder.layer2.0.downsample.0.weight": (64, 32, 1, 1),
        "feat_encoder.conv2.weight": (84, 96, 1, 1),
        "encoder.pyramid4.1.1.weight": (56,),
        "decoder4.convblock.0.0.weight": (112, 113, 3, 3),
        "decoder4.convblock.1.conv2.0.weight": (20, 20, 3, 3),
        "decoder4.convblock.2.weight": (112, 48, 4, 4),
        "decoder3.convblock.0.0.weight": (132, 136, 3, 3),
        "decoder1.convblock.2.weight": (60, 24, 4, 4),
        "update4.convc1.weight": (64, 392, 1, 1),
        "update2.gru.0.weight": (76, 92, 3, 3),
        "update3.feat_head.2.weight": (32, 76, 3, 3),
        "comb_block.1.weight": (18,),
        "comb_block.2.weight": (3, 18, 3, 3),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert AMT_S_WEIGHTS.filename == "amt-s.pth" and AMT_S_WEIGHTS.vbench_path == "amt_model/amt-s.pth"


def test_checkpoint_loads_strictly_and_reproduces_the_network(checkpoint):
    path, original = checkpoint
    net, info = build_amt_s(weights=str(path), sha256=None, pretrained="vbench", seed=0, device="cpu")
    assert info["pretrained"] == "vbench" and info["weights"] == str(path) and len(info["weights_sha256"]) == 64
    for k, v in original.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    g = torch.Generator().manual_seed(5)
    x0, x1 = torch.rand(1, 3, 128, 128, generator=g), torch.rand(1, 3, 128, 128, generator=g)
    embt = torch.full((1, 1, 1, 1), 0.5)
    with torch.no_grad():
        assert torch.equal(net(x0, x1, embt), original(x0, x1, embt))


def test_wrong_checkpoints_give_one_line_errors_naming_the_key(tmp_path, checkpoint):
    _, net = checkpoint
    sd = net.state_dict()
    renamed = dict(sd)
    renamed["decoder1.convblock.2.weight_x"] = renamed.pop("decoder1.convblock.2.weight")
    torch.save({"state_dict": renamed}, tmp_path / "renamed.pth")
    with pytest.raises(WeightsError, match=r"missing key 'decoder1\.convblock\.2\.weight'.*unexpected key "
                                           r"'decoder1\.convblock\.2\.weight_x'") as e:
        load_amt_s(str(tmp_path / "renamed.pth"))
    assert "\n" not in str(e.value)
    reshaped = dict(sd)
    reshaped["comb_block.1.weight"] = torch.zeros(17)
    torch.save({"state_dict": reshaped}, tmp_path / "reshaped.pth")
    with pytest.raises(WeightsError, match=r"'comb_block\.1\.weight' has shape \[17\]"):
        load_amt_s(str(tmp_path / "reshaped.pth"))
    with pytest.raises(ConfigError, match="pretrained"):
        build_amt_s(weights=None, sha256=None, pretrained="imagenet", seed=0, device="cpu")


def test_weights_resolver_finds_vbenchs_cache_and_says_where_to_put_the_file(tmp_path, monkeypatch, checkpoint):
    path, _ = checkpoint
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench"))
    with pytest.raises(WeightsError, match=r"amt-s\.pth not found.*huggingface\.co/lalala125/AMT") as e:
        build_amt_s(weights=None, sha256=None, pretrained="vbench", seed=0, device="cpu")
    assert str(tmp_path / "vbench" / "amt_model" / "amt-s.pth") in str(e.value)
    (tmp_path / "vbench" / "amt_model").mkdir(parents=True)
    (tmp_path / "vbench" / "amt_model" / "amt-s.pth").write_bytes(path.read_bytes())
    _, info = build_amt_s(weights=None, sha256=None, pretrained="vbench", seed=0, device="cpu")
    assert info["weights_source"] == "vbench-cache"
    with pytest.raises(WeightsError, match="sha256"):
        build_amt_s(weights=None, sha256="0" * 64, pretrained="vbench", seed=0, device="cpu")


def test_random_weights_are_seeded_and_labelled():
    a, info = build_amt_s(weights=None, sha256=None, pretrained="random", seed=7, device="cpu")
    b, _ = build_amt_s(weights=None, sha256=None, pretrained="random", seed=7, device="cpu")
    c, _ = build_amt_s(weights=None, sha256=None, pretrained="random", seed=8, device="cpu")
    assert info == {"weights": "random (seed 7)", "pretrained": "random"}
    key = "update3.flow_head.2.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])


def test_zero_weights_average_the_two_frames_at_any_scale():
    """Known answer: with every weight zero the flows are 0, the blend mask sigmoid(0) = 1/2 and the
    residuals 0, so AMT-S returns (img0 + img1) / 2 (up to the float rounding of the warps)."""
    net = AMTS().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    g = torch.Generator().manual_seed(1)
    embt = torch.full((2, 1, 1, 1), 0.5)
    for size, scale in (((128, 144), 1.0), ((256, 256), 0.5)):
        x0, x1 = torch.rand(2, 3, *size, generator=g), torch.rand(2, 3, *size, generator=g)
        with torch.no_grad():
            out = net(x0, x1, embt, scale_factor=scale)
        assert out.shape == x0.shape
        assert (out - (x0 + x1) / 2).abs().max() < 1e-4


def test_one_pixel_correlation_level_is_nan_which_is_why_small_clips_are_refused():
    """VBench's correlation lookup divides by (W - 1): a coarsest pyramid level 1 pixel wide (padded
    side under 128) gives NaN features; 2 pixels (padded 128) is the smallest that is finite."""
    for side, finite in ((112, False), (128, True)):
        f = torch.rand(1, 84, side // 8, side // 8)
        coords = coords_grid(1, side // 8, side // 8, torch.device("cpu"))
        out, out_t = BidirCorrBlock(f, f, num_levels=4, radius=3)(coords, coords)
        assert bool(torch.isfinite(out).all()) is finite and bool(torch.isfinite(out_t).all()) is finite
    frames = torch.zeros(3, 112, 200, 3, dtype=torch.uint8)
    with pytest.raises(MetricInputError, match=r"at least 128x128.*got 112x200") as e:
        interpolate_midframes(random_amt(), frames)
    assert "\n" not in str(e.value)


def test_interpolation_equals_vbenchs_pairwise_procedure_bit_for_bit():
    net = random_amt(11)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (121, 131, 3), dtype=np.uint8)  # odd, non-square
    frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(3)])  # moving
    ours = interpolate_midframes(net, torch.from_numpy(frames), scale=1.0).numpy()
    ref = np.stack(vbench_interpolate(net, frames, 1.0))
    assert ours.shape == (2, 121, 131, 3) and ours.dtype == np.uint8
    assert np.array_equal(ours, ref)  # one pair at a time, contiguous NCHW: VBench's frames exactly
    # Batched pairs: the same frames up to convolution rounding (a grey level at a few pixels).
    batched = interpolate_midframes(net, torch.from_numpy(frames), scale=1.0, batch_size=2).numpy()
    diff = np.abs(batched.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_vbench_gpu_scale_rule():
    def formula(h, w, vram):  # VBench's lines, in numpy
        scale = 1024 * 512 / (h * w) * np.sqrt((vram - 2500 * 1024**2) / (1500 * 1024**2))
        scale = 1 if scale > 1 else scale
        return 1 / np.floor(1 / np.sqrt(scale) * 16) * 16

    cases = [(320, 512, 24 * GIB), (2160, 3840, 24 * GIB), (1080, 1920, 8 * GIB), (1080, 1920, 80 * GIB),
             (2160, 3840, 4 * GIB), (720, 1280, 3 * GIB)]
    for h, w, vram in cases:
        assert vbench_scale(h, w, vram) == formula(h, w, vram)
    assert vbench_scale(320, 512, 24 * GIB) == 1.0
    assert vbench_scale(2160, 3840, 24 * GIB) == 0.5  # 4K on a 24 GiB card: half resolution
    assert vbench_scale(1080, 1920, 8 * GIB) == 16 / 22
    assert [padding_for(s) for s in (1.0, 0.5, 16 / 22)] == [16, 32, 22]
    assert math.isclose(vbench_scale(1080, 1920, 8 * GIB), 0.7272727, rel_tol=1e-6)
    with pytest.raises(ConfigError, match="gpu_memory_gb"):
        vbench_scale(320, 512, 2 * GIB)  # below VBench's 2500 MiB bias: its sqrt would be NaN

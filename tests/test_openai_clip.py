"""OpenAI CLIP checkpoints through open_clip (vdmbench.features.openai_clip), and VBench's CLIP transforms.

The checkpoint is a random-weight ViT-B-32 in OpenAI's format (TorchScript archive, fp16 tensors;
tests/_openai_clip_files.py); the transforms are compared with VBench's own torchvision pipelines
(vbench/utils.py clip_transform / clip_transform_Image), written out here.
"""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from tests._openai_clip_files import float64_reference, vit_b32_archive
from vdmbench.core.errors import ConfigError, WeightsError
from vdmbench.features import openai_clip as oc

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def vbench_clip_transform_reference(n_px: int, antialias: bool = False) -> T.Compose:
    # VBench's clip_transform; antialias=False is what its pinned torchvision (< 0.16) does on tensors.
    return T.Compose([
        T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC, antialias=antialias),
        T.CenterCrop(n_px),
        T.Lambda(lambda x: x.float().div(255.0)),
        T.Normalize(MEAN, STD),
    ])


def vbench_clip_transform_image_reference(n_px: int) -> T.Compose:
    return T.Compose([T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(n_px),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def frames(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    return torch.from_numpy(g.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("h,w", [(37, 53), (300, 227), (225, 401), (224, 224), (227, 224)])
def test_clip_transform_equals_vbench_pipeline(h: int, w: int) -> None:
    clip = frames(2, h, w, seed=h)
    # VBench: load_video returns torch.Tensor(uint8 array) = float32 in [0, 255], [T, C, H, W].
    expected = vbench_clip_transform_reference(224)(torch.Tensor(clip.numpy()).permute(0, 3, 1, 2))
    got = oc.vbench_clip_transform(clip, 224)
    assert got.shape == (2, 3, 224, 224) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6)
    # The same from float input and from [N, 3, H, W].
    torch.testing.assert_close(oc.vbench_clip_transform(clip.float().permute(0, 3, 1, 2), 224), got)


def test_clip_transform_is_float_resize_without_antialias() -> None:
    clip = frames(1, 300, 451, seed=3)
    got = oc.vbench_clip_transform(clip, 224)
    with_aa = oc.vbench_clip_transform(clip, 224, antialias=True)
    expected_aa = vbench_clip_transform_reference(224, antialias=True)(clip.float().permute(0, 3, 1, 2))
    torch.testing.assert_close(with_aa, expected_aa, rtol=0, atol=2e-6)
    assert (got - with_aa).abs().max() > 0.05  # antialiasing matters: VBench's pinned torchvision had none
    # No rounding to uint8 after the resize: values between grey levels survive (a uint8 resize would not).
    raw = got * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    levels = raw * 255.0
    assert (levels - levels.round()).abs().max() > 0.1
    # Bicubic overshoot is kept (no clamp to [0, 255]) on a hard edge being downscaled.
    edge = torch.zeros(1, 300, 450, 3, dtype=torch.uint8)
    edge[:, :, 225:] = 255
    raw = oc.vbench_clip_transform(edge, 224) * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert float(raw.max()) > 1.0 and float(raw.min()) < 0.0


@pytest.mark.parametrize("h,w", [(37, 53), (300, 227), (225, 401)])
def test_clip_transform_image_equals_vbench_pil_pipeline(h: int, w: int) -> None:
    clip = frames(2, h, w, seed=w)
    ref = vbench_clip_transform_image_reference(224)
    expected = torch.stack([ref(Image.fromarray(f)) for f in clip.numpy()])
    torch.testing.assert_close(oc.vbench_clip_transform_image(clip, 224), expected, rtol=0, atol=1e-6)


def test_center_crop_rounds_half_to_even_like_torchvision() -> None:
    assert oc.center_crop_box(225, 224, 224) == (0, 0)  # 0.5 -> 0
    assert oc.center_crop_box(227, 229, 224) == (2, 2)  # 1.5 -> 2, 2.5 -> 2
    assert oc.short_side_size(300, 227, 224) == (int(224 * 300 / 227), 224)


def test_pinned_sha256_is_the_one_openai_publishes_in_the_url() -> None:
    for name in ("ViT-B-32", "ViT-L-14"):
        spec = oc.SPECS[name]
        assert spec.sha256 and len(spec.sha256) == 64 and f"/{spec.sha256}/" in spec.url
        assert spec.url == open_clip.get_pretrained_url(name, "openai")  # open_clip names the same file
        assert spec.vbench_path == f"clip_model/{name}.pt"


def test_torchscript_archive_loads_as_fp32_open_clip_model() -> None:
    path, state = vit_b32_archive()
    assert {v.dtype for k, v in state.items() if k.endswith("attn.in_proj_weight")} == {torch.float16}
    model, info = oc.load_openai_clip("ViT-B-32", weights=str(path), pretrained="openai", device="cpu", seed=0)
    assert not model.training and info["comparable"] and info["precision"] == "fp32"
    assert info["weights_sha256"] and info["weights_source"] == "explicit"
    loaded = model.state_dict()
    for k, v in state.items():
        if k == "attn_mask":
            continue
        assert loaded[k].dtype == torch.float32, k
        assert torch.equal(loaded[k], v.float()), k  # the fp16 weights, upcast exactly
    # The model computes: an image embedding equals the fp16 weights run in fp32 by open_clip itself.
    # The reference: the archive's tensors put into open_clip's CLIP directly, run in float64.
    ref = float64_reference()
    px = oc.vbench_clip_transform(frames(2, 64, 80), 224)
    with torch.no_grad():
        torch.testing.assert_close(oc.encode_image(model, px).double(), ref.encode_image(px.double()),
                                   rtol=1e-5, atol=1e-5)
        text = oc.encode_text(model, ["a cat", "Van Gogh style"])
        torch.testing.assert_close(text.double(), ref.encode_text(open_clip.tokenize(["a cat", "Van Gogh style"])),
                                   rtol=1e-5, atol=1e-5)
    assert torch.equal(model.attn_mask, oc.causal_text_mask(77))
    assert oc.logit_scale(model) == pytest.approx(float(np.exp(np.float64(np.float16(4.6052)))), rel=1e-6)
    assert oc.logit_scale(model) != pytest.approx(100.0, rel=1e-5)  # fp16's ln(100) is not exactly 100


def test_plain_state_dict_file_loads_the_same(tmp_path) -> None:
    _, state = vit_b32_archive()
    plain = tmp_path / "ViT-B-32-state.pt"
    torch.save({k: v for k, v in state.items() if k != "attn_mask"}, plain)
    model, _ = oc.load_openai_clip("ViT-B-32", weights=str(plain), pretrained="openai", device="cpu", seed=0)
    assert torch.equal(model.state_dict()["visual.proj"], state["visual.proj"].float())


def shapes_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Same keys, shapes and dtypes in a few bytes (one stored element per tensor): for refusals.
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}


def test_wrong_keys_and_shapes_are_refused_with_the_key(tmp_path) -> None:
    state = shapes_only(vit_b32_archive()[1])
    missing = {k: v for k, v in state.items() if k != "visual.ln_post.weight"}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="missing key 'visual.ln_post.weight'"):
        oc.load_openai_clip("ViT-B-32", weights=str(tmp_path / "missing.pt"), device="cpu")
    extra = {**state, "visual.head.weight": torch.zeros(2)}
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(WeightsError, match="unexpected key 'visual.head.weight'"):
        oc.load_openai_clip("ViT-B-32", weights=str(tmp_path / "extra.pt"), device="cpu")
    bad = {**state, "visual.proj": torch.zeros(768, 10)}
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(WeightsError, match=r"'visual.proj' has shape \[768, 10\], expected \[768, 512\]"):
        oc.load_openai_clip("ViT-B-32", weights=str(tmp_path / "shape.pt"), device="cpu")
    with pytest.raises(WeightsError, match="not OpenAI CLIP ViT-L-14 weights"):
        oc.load_openai_clip("ViT-L-14", weights=str(tmp_path / "shape.pt"), device="cpu")


def test_hashes_are_checked(tmp_path, monkeypatch) -> None:
    path, _ = vit_b32_archive()
    with pytest.raises(WeightsError, match="expected 00000000"):
        oc.load_openai_clip("ViT-B-32", weights=str(path), weights_sha256="00000000", device="cpu")
    # A file in VBench's cache is checked against OpenAI's pinned hash: this random one is refused.
    cache = tmp_path / "vbench"
    (cache / "clip_model").mkdir(parents=True)
    (cache / "clip_model" / "ViT-B-32.pt").write_bytes(b"not the real file")
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match=oc.SPECS["ViT-B-32"].sha256):
        oc.find_weights("ViT-B-32")


def test_random_weights_are_labelled() -> None:
    model, info = oc.load_openai_clip("ViT-B-32", pretrained="random", device="cpu", seed=3)
    assert not info["comparable"] and "not comparable" in info["label"] and info["weights"] == "random (seed 3)"
    assert model.state_dict()["visual.proj"].dtype == torch.float32 and not model.training
    assert torch.equal(model.attn_mask, oc.causal_text_mask(77))  # the mask the meta-built loader writes
    with pytest.raises(ConfigError, match="unknown model"):
        oc.load_openai_clip("ViT-H-14", pretrained="random", device="cpu")
    with pytest.raises(ConfigError, match="'openai' or 'random'"):
        oc.load_openai_clip("ViT-B-32", pretrained="laion2b", device="cpu")


def test_vbench_gpu_compat_holds_weights_like_openais_fp16_model() -> None:
    # What load_openai_clip builds for vbench_gpu_compat on CUDA, built here on the CPU.
    path, state = vit_b32_archive()
    model = oc.build_openai_clip("ViT-B-32", dict(state), str(path), fp16=True)
    assert model.visual.conv1.weight.dtype == torch.float16 and model.visual.proj.dtype == torch.float16
    assert model.visual.ln_pre.weight.dtype == torch.float32  # LayerNorm computed in fp32, as OpenAI's
    assert model.visual.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert torch.equal(model.visual.proj.float(), state["visual.proj"].float())
    # Off CUDA the option changes nothing: the same fp32 numbers everywhere by default.
    _, info = oc.load_openai_clip("ViT-B-32", weights=str(path), device="cpu", vbench_gpu_compat=True)
    assert info["precision"] == "fp32" and info["vbench_gpu_compat"] is True


def test_openai_clips_own_download_folder_is_used_and_checked(tmp_path, monkeypatch) -> None:
    # VBench's default mode calls clip.load("ViT-B/32"), which downloads to ~/.cache/clip.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "no-vbench"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    (tmp_path / ".cache" / "clip").mkdir(parents=True)
    (tmp_path / ".cache" / "clip" / "ViT-B-32.pt").write_bytes(b"a partial download")
    assert oc.openai_clip_download_dir() == tmp_path / ".cache" / "clip"
    with pytest.raises(WeightsError, match=f"ViT-B-32.pt has sha256 .*expected {oc.SPECS['ViT-B-32'].sha256}"):
        oc.find_weights("ViT-B-32")

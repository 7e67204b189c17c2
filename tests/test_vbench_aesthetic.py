"""VBench's aesthetic_quality: the LAION head's published file format and cache path, strict loading,
and per-video / run values against an independent float64 re-computation of VBench's
laion_aesthetic (all frames, clip_transform(224), CLIP encode_image, L2 norm, head, / 10, mean).

CLIP ViT-L/14 takes seconds per frame on a busy CPU, so the forward tests run the same code path
with a ViT-B-32 (OpenAI's key names, fp16 tensors, seeded random) and a head of its width (512);
the head's real 768-wide format is checked by loading, without a forward. The CLIP file is the plain
state dict the loader also accepts (torch.jit.load of OpenAI's TorchScript archive costs seconds;
tests/test_openai_clip*.py cover that format); the head file is exactly LAION's format."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._openai_clip_files import fp16_clip_model
from vdmbench.core.errors import WeightsError
from vdmbench.features.laion_aesthetic import (
    AESTHETIC_HEAD,
    head_from_state_dict,
    load_aesthetic_head,
    random_aesthetic_head,
)
from vdmbench.features.weights import resolve
from vdmbench.metrics import ClipBatch, MetricContext, build_metric

MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, as in VBench's clip_transform
STD = (0.26862954, 0.26130258, 0.27577711)


def _head_file(path, width, seed=5, key_prefix=""):
    g = torch.Generator().manual_seed(seed)
    state = {f"{key_prefix}weight": torch.randn(1, width, generator=g) * 0.3,
             f"{key_prefix}bias": torch.tensor([5.0])}
    torch.save(state, path)  # what LAION publishes: torch.save of nn.Linear's state dict
    return path, state


def _clips():
    g = torch.Generator().manual_seed(0)
    first = torch.randint(0, 256, (37, 53, 3), generator=g)
    moving = torch.stack([torch.roll(first, shifts=4 * k, dims=1) for k in range(2)])  # a pan
    still = torch.randint(0, 256, (1, 50, 31, 3), generator=g, dtype=torch.uint8).repeat(3, 1, 1, 1)
    return moving.to(torch.uint8), still


def _reference_scores(clip_state, head_state, frames):
    """float64, from VBench's code: resize the short side to 224 (bicubic, no antialias) on float
    [0, 255], center crop (round), /255, normalize, encode_image, L2 normalize, head, /10, mean."""
    import open_clip
    from open_clip.model import CLIP

    state = {k: v for k, v in clip_state.items() if k != "attn_mask"}
    with torch.device("meta"):  # no random initialisation: every image-side weight comes from the file
        model = CLIP(**open_clip.get_model_config("ViT-B-32"), quick_gelu=True)
    model = model.to_empty(device="cpu")
    model.load_state_dict(state, strict=False)  # all but the text tower's causal mask (unused here)
    model = model.double().eval()
    x = frames.permute(0, 3, 1, 2).to(torch.float64)
    h, w = x.shape[-2:]
    size = (int(224 * h / w), 224) if w <= h else (224, int(224 * w / h))
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=False)
    top, left = int(round((size[0] - 224) / 2)), int(round((size[1] - 224) / 2))
    x = x[..., top:top + 224, left:left + 224] / 255.0
    x = (x - torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = F.normalize(model.encode_image(x), dim=-1)
    scores = feats @ head_state["weight"].double().T + head_state["bias"].double()
    return float((scores[:, 0] / 10).mean())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aes")
    clip_state = {k: v.detach().clone() for k, v in fp16_clip_model().state_dict().items() if k != "attn_mask"}
    torch.save(clip_state, folder / "ViT-B-32.pt")
    head, state = _head_file(folder / "sa_0_4_vit_l_14_linear.pth", 512)
    return folder / "ViT-B-32.pt", clip_state, head, state


def test_per_video_and_run_values_equal_vbench_formula_in_float64(files, monkeypatch):
    archive, clip_state, head, state = files
    m = build_metric({"name": "aesthetic_quality", "clip_model": "ViT-B-32", "weights": str(head),
                      "clip_weights": str(archive)}, MetricContext())
    # One frame per encode chunk at the end (VBench's squeeze() would make it 0-d and fail there).
    monkeypatch.setattr("vdmbench.metrics.vbench_aesthetic.VBENCH_FRAME_BATCH", 2)
    moving, still = _clips()
    per_video = []
    for clip in (moving, still):  # different shapes: separate batches, as the runner groups them
        batch = ClipBatch(videos=clip[None], fps=[24.0])
        v = m.sample_values(batch)["aesthetic_quality"]
        m.update(batch, values={"aesthetic_quality": v})
        per_video.append(float(v[0]))
    # A static clip's mean over its identical frames is its first frame's score.
    expected = [_reference_scores(clip_state, state, moving), _reference_scores(clip_state, state, still[:1])]
    assert per_video == pytest.approx(expected, abs=1e-5)
    assert float(m.compute()["aesthetic_quality"]) == pytest.approx(np.mean(expected), abs=1e-5)  # mean over videos
    assert abs(per_video[0] - per_video[1]) > 1e-3  # different content, different score
    assert m.comparable is False  # not ViT-L/14
    assert m.describe()["clip_weights_sha256"] and m.describe()["head_source"] == "explicit"


def test_the_head_loads_strictly_in_the_published_format(tmp_path):
    path, state = _head_file(tmp_path / "sa_0_4_vit_l_14_linear.pth", 768)
    head, info = load_aesthetic_head(path)  # ViT-L/14's width: the published shape [1, 768]
    assert info["head_source"] == "explicit" and len(info["head_sha256"]) == 64
    assert torch.equal(head.weight, state["weight"]) and torch.equal(head.bias, state["bias"])
    bad, _ = _head_file(tmp_path / "prefixed.pth", 768, key_prefix="linear.")
    with pytest.raises(WeightsError, match="unexpected key 'linear.weight'"):
        load_aesthetic_head(bad)
    with pytest.raises(WeightsError, match=r"'weight' has shape \[1, 512\], expected \[1, 768\]"):
        head_from_state_dict({"weight": torch.zeros(1, 512), "bias": torch.zeros(1)}, "x.pth")
    with pytest.raises(WeightsError, match="missing key 'bias'"):
        head_from_state_dict({"weight": torch.zeros(1, 768)}, "x.pth")


def test_a_head_of_the_wrong_width_fails_before_clip_is_loaded(files):
    head512 = files[2]
    with pytest.raises(WeightsError, match=r"expected \[1, 768\]"):
        build_metric({"name": "aesthetic_quality", "weights": str(head512), "clip_weights": "/nonexistent/ViT-L-14.pt"})


def test_the_head_is_found_in_vbenchs_cache(tmp_path, monkeypatch):
    assert AESTHETIC_HEAD.vbench_path == "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth"
    target = tmp_path / "vbench" / AESTHETIC_HEAD.vbench_path
    target.parent.mkdir(parents=True)
    _head_file(target, 768)
    env = {"VBENCH_CACHE_DIR": str(tmp_path / "vbench")}
    found = resolve(AESTHETIC_HEAD, cache_dir=tmp_path / "empty", env=env)
    assert found.source == "vbench-cache" and found.path == target and not found.pinned
    with pytest.raises(WeightsError, match="sa_0_4_vit_l_14_linear.pth not found"):
        resolve(AESTHETIC_HEAD, cache_dir=tmp_path / "empty", env={"VBENCH_CACHE_DIR": str(tmp_path / "none")})


def test_random_weights_are_seeded_and_labelled_not_comparable():
    a = build_metric({"name": "aesthetic_quality", "pretrained": "random", "clip_model": "ViT-B-32"}, MetricContext(seed=3))
    assert a.comparable is False and "not comparable with published numbers (random weights)" in a.describe()["label"]
    assert a.describe()["clip_weights"] == "random (seed 3)" and a.describe()["head_weights"] == "random (seed 3)"
    again = random_aesthetic_head(3, 512)
    assert torch.equal(a.head.weight, again.weight) and not torch.equal(again.weight, random_aesthetic_head(4, 512).weight)

"""VBench's overall_consistency and temporal_style (ViCLIP), checked against VBench's own steps.

A ViCLIP of the published layout (the real key names; small widths and depths, since ViT-L/14 on
8 x 256 patches takes tens of seconds per clip on one CPU core) with seeded random weights, saved
as VBench's checkpoint is ({'model': state_dict} in a .pth), loaded through the real loader.
The reference side is written here from VBench's code: frame indices with numpy as
get_frame_indices(sample="middle") does, torchvision's Compose as clip_transform(224) builds it,
and a float64 forward pass of ViCLIP's vision and text towers with explicit attention.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

from vdmbench.core.errors import ConfigError, MetricInputError, WeightsError
from vdmbench.features.viclip import (
    VICLIP_SPEC,
    ViCLIP,
    ViclipConfig,
    build_viclip,
    clip_tokenizer,
    clip_transform,
    load_viclip_state,
    middle_frame_indices,
    tokenize,
)
from vdmbench.metrics.base import ClipBatch, MetricContext
from vdmbench.metrics.vbench_viclip import OverallConsistency, TemporalStyle

torch.set_num_threads(1)

SMALL = {"vision_width": 32, "vision_layers": 2, "vision_heads": 2, "embed_dim": 24,
         "text_width": 32, "text_layers": 2, "text_heads": 4}
MEAN = (0.48145466, 0.4578275, 0.40821073)  # VBench's clip_transform constants
STD = (0.26862954, 0.26130258, 0.27577711)
PROMPTS = ["a cat walking on the grass, in cyberpunk style", "a red ball bouncing, camera pans left"]


@pytest.fixture(autouse=True)
def no_weight_caches(tmp_path, monkeypatch):
    """Only the files a test puts there: no user cache, no VBench cache."""
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench-cache"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small ViCLIP with seeded random weights, saved the way VBench's checkpoint is."""
    model, _ = build_viclip(ViclipConfig.from_options(SMALL), pretrained="random", seed=11)
    path = tmp_path_factory.mktemp("viclip") / VICLIP_SPEC.filename
    torch.save({"model": model.state_dict()}, path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def clips(seed: int = 0) -> torch.Tensor:
    """Two 13-frame 37x53 clips (odd, non-square): one static, one with a square moving right."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (37, 53, 3), generator=g, dtype=torch.uint8)
    static = base.expand(13, -1, -1, -1).clone()
    moving = torch.full((13, 37, 53, 3), 40, dtype=torch.uint8)
    for t in range(13):
        moving[t, 10:22, 3 * t:3 * t + 12] = torch.tensor([230, 30, 60], dtype=torch.uint8)
    return torch.stack([static, moving])


def metric(cls, checkpoint, **options):
    return cls(MetricContext(seed=0), weights=str(checkpoint[0]), architecture=SMALL, **options)


# --- the reference, written from VBench's code ------------------------------------------------


def vbench_indices(num_frames: int, vlen: int) -> list[int]:
    acc = min(num_frames, vlen)
    intervals = np.linspace(start=0, stop=vlen, num=acc + 1).astype(int)
    ranges = [(intervals[i], intervals[i + 1] - 1) for i in range(acc)]
    idx = [(a + b) // 2 for a, b in ranges]
    if len(idx) < num_frames:
        idx = idx + [idx[-1]] * (num_frames - len(idx))
    return [int(i) for i in idx]


def vbench_clip_transform(antialias: bool = False):
    # VBench's clip_transform(224); antialias False is what torchvision < 0.16 (VBench's pin) does.
    return Compose([Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=antialias), CenterCrop(224),
                    Lambda(lambda x: x.float().div(255.0)), Normalize(MEAN, STD)])


def ref_block(x, sd, p, heads, mask=None):
    """One pre-LN residual attention block in float64; x [L, C]."""
    def ln(y, name):
        return F.layer_norm(y, y.shape[-1:], sd[f"{p}.{name}.weight"], sd[f"{p}.{name}.bias"], eps=1e-5)

    h = ln(x, "ln_1")
    q, k, v = (h @ sd[f"{p}.attn.in_proj_weight"].T + sd[f"{p}.attn.in_proj_bias"]).chunk(3, dim=-1)
    d = q.shape[-1] // heads
    q, k, v = (t.reshape(-1, heads, d).transpose(0, 1) for t in (q, k, v))  # [H, L, d]
    logits = q @ k.transpose(1, 2) / math.sqrt(d)
    if mask is not None:
        logits = logits + mask
    att = (logits.softmax(-1) @ v).transpose(0, 1).reshape(-1, heads * d)
    x = x + att @ sd[f"{p}.attn.out_proj.weight"].T + sd[f"{p}.attn.out_proj.bias"]
    h = ln(x, "ln_2") @ sd[f"{p}.mlp.c_fc.weight"].T + sd[f"{p}.mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    return x + h @ sd[f"{p}.mlp.c_proj.weight"].T + sd[f"{p}.mlp.c_proj.bias"]


def ref_video_embedding(video: torch.Tensor, sd: dict, cfg: ViclipConfig) -> torch.Tensor:
    """VBench: read 8 'middle' frames, clip_transform, encode_vision(test=True), normalize."""
    frames = video[vbench_indices(8, video.shape[0])].permute(0, 3, 1, 2)  # decord + torch bridge layout
    x = vbench_clip_transform()(frames).unsqueeze(0).permute(0, 2, 1, 3, 4).double()  # [1, 3, 8, 224, 224]
    sd = {k.removeprefix("vision_encoder."): v.double() for k, v in sd.items() if k.startswith("vision_encoder.")}
    x = F.conv3d(x, sd["conv1.weight"], stride=(1, cfg.patch_size, cfg.patch_size))  # [1, C, T, g, g]
    _, c, t, gh, gw = x.shape
    x = x.permute(0, 2, 3, 4, 1).reshape(t, gh * gw, c)
    x = torch.cat([sd["class_embedding"].expand(t, 1, c), x], dim=1) + sd["positional_embedding"]
    cls = x[:1, :1]
    patches = x[:, 1:].permute(1, 0, 2) + sd["temporal_positional_embedding"]  # '(b t) n m -> (b n) t m'
    x = torch.cat([cls[0], patches.reshape(-1, c)], dim=0)  # '(b n) t m -> b (n t) m'
    x = F.layer_norm(x, (c,), sd["ln_pre.weight"], sd["ln_pre.bias"], eps=1e-5)
    for i in range(cfg.vision_layers):
        x = ref_block(x, sd, f"transformer.resblocks.{i}", cfg.vision_heads)
    x = F.layer_norm(x, (c,), sd["ln_post.weight"], sd["ln_post.bias"], eps=1e-5)
    emb = x[0] @ sd["proj"]
    return emb / emb.norm()


def ref_text_embedding(prompt: str, sd: dict, cfg: ViclipConfig, tokenizer) -> torch.Tensor:
    tokens = tokenize(tokenizer, [prompt], 32)[0]
    sd = {k.removeprefix("text_encoder."): v.double() for k, v in sd.items() if k.startswith("text_encoder.")}
    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding"]
    mask = torch.full((32, 32), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg.text_layers):
        x = ref_block(x, sd, f"transformer.resblocks.{i}", cfg.text_heads, mask)
    x = F.layer_norm(x, x.shape[-1:], sd["ln_final.weight"], sd["ln_final.bias"], eps=1e-5)
    emb = x[int(tokens.argmax())] @ sd["text_projection"]
    return emb / emb.norm()


# --- tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return clip_tokenizer()


def test_tokenizer_gives_clips_tokens(tokenizer):
    tok = tokenizer
    ids = tokenize(tok, ["a photo of a cat"], 32)
    # OpenAI CLIP's ids: <|startoftext|> a photo of a cat <|endoftext|>, zero padded.
    assert ids.shape == (1, 32) and ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[0, 7:].abs().sum() == 0
    long = tokenize(tok, [" ".join(["cat"] * 50)], 32)[0]  # VBench truncates to 32, end token kept last
    assert long.tolist() == [49406] + [2368] * 30 + [49407]
    # open_clip's vocabulary file is OpenAI CLIP's, the one VBench downloads (its published sha256)
    from open_clip.tokenizer import default_bpe

    from vdmbench.core.hashing import sha256_file

    assert sha256_file(default_bpe()) == "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


def test_frame_indices_are_vbenchs_middle_sampling():
    assert middle_frame_indices(8, 16) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert middle_frame_indices(8, 24) == [1, 4, 7, 10, 13, 16, 19, 22]
    assert middle_frame_indices(8, 5) == [0, 1, 2, 3, 4, 4, 4, 4]  # padded with the last frame
    for vlen in (1, 2, 7, 8, 9, 13, 25, 49, 97, 121, 200):
        assert middle_frame_indices(8, vlen) == vbench_indices(8, vlen), vlen
    with pytest.raises(MetricInputError):
        middle_frame_indices(8, 0)


@pytest.mark.parametrize("antialias", [False, True])
def test_transform_equals_vbenchs_clip_transform(antialias):
    g = torch.Generator().manual_seed(1)
    # odd, non-square, portrait and landscape, a crop offset of exactly 0.5 (225), a larger frame
    for h, w in [(37, 53), (61, 41), (225, 225), (301, 227), (240, 427)]:
        frames = torch.randint(0, 256, (2, h, w, 3), generator=g, dtype=torch.uint8)
        expected = vbench_clip_transform(antialias)(frames.permute(0, 3, 1, 2))
        got = clip_transform(frames, 224, antialias=antialias)
        assert got.shape == (2, 3, 224, 224) and torch.equal(got, expected), (h, w)
    frames = torch.randint(0, 256, (1, 240, 427, 3), generator=g, dtype=torch.uint8)
    # sensitivity: the antialias setting changes the pixels of a downscaled frame
    assert not torch.equal(clip_transform(frames, 224, antialias=False), clip_transform(frames, 224, antialias=True))


def test_per_video_values_equal_a_float64_recomputation_of_vbench(checkpoint, tokenizer):
    cfg = ViclipConfig.from_options(SMALL)
    videos = clips()
    m = metric(OverallConsistency, checkpoint)
    batch = ClipBatch(videos, prompts=PROMPTS, fps=[24.0, 24.0])
    values = m.sample_values(batch)["overall_consistency"]
    sd = checkpoint[1]
    expected = torch.stack([ref_video_embedding(v, sd, cfg) @ ref_text_embedding(p, sd, cfg, tokenizer)
                            for v, p in zip(videos, PROMPTS)])
    assert values.dtype == torch.float64 and torch.allclose(values, expected, atol=1e-5, rtol=0), (values, expected)
    assert abs(values[0] - values[1]) > 1e-3  # static and moving clips differ
    m.update(batch, {"overall_consistency": values})
    m.update(ClipBatch(videos[:1], prompts=PROMPTS[:1], fps=[24.0]))
    # VBench's aggregate: np.mean over videos
    assert torch.allclose(m.compute()["overall_consistency"], (2 * expected[0] + expected[1]) / 3, atol=1e-5, rtol=0)


def test_invariances_and_sensitivity(checkpoint):
    videos = clips()
    m = metric(TemporalStyle, checkpoint)

    def score(v, prompt=PROMPTS[1], fps=24.0):
        return float(m.sample_values(ClipBatch(v[None], prompts=[prompt], fps=[fps]))["temporal_style"][0])

    moving = videos[1]
    base = score(moving)
    assert score(moving, fps=8.0) == base  # the 'middle' sampling ignores the frame rate
    assert score(moving.flip(0)) != pytest.approx(base, abs=1e-4)  # frame order matters (temporal embedding)
    assert score(moving, prompt=PROMPTS[0]) != pytest.approx(base, abs=1e-4)
    # A 3-frame clip is padded with its last frame: the same as the 8-frame clip a, b, c, c, c, c, c, c.
    short = moving[:3]
    padded = torch.cat([short, short[-1:].expand(5, -1, -1, -1)])
    assert score(short) == pytest.approx(score(padded), abs=1e-6)
    # Frames that VBench does not sample do not count.
    idx = middle_frame_indices(8, 13)
    other = moving.clone()
    other[[i for i in range(13) if i not in idx]] = 0
    assert score(other) == pytest.approx(base, abs=1e-6)


def test_both_dimensions_share_the_model_and_the_video_embeddings(checkpoint):
    ctx = MetricContext(seed=0)
    oc = OverallConsistency(ctx, weights=str(checkpoint[0]), architecture=SMALL)
    ts = TemporalStyle(ctx, weights=str(checkpoint[0]), architecture=SMALL)
    assert oc.encoder is ts.encoder
    batch = ClipBatch(clips(), prompts=PROMPTS, fps=[24.0, 24.0])
    a = oc.sample_values(batch)["overall_consistency"]
    b = ts.sample_values(batch)["temporal_style"]
    kinds = [k for k in ctx.shared.computed if k.startswith("viclip-video")]
    assert len(kinds) == 1 and ctx.shared.computed[kinds[0]] == 2 and ctx.shared.reused[kinds[0]] == 2
    assert torch.equal(a, b)  # same clips, same prompts: the same number


def test_strict_loading_names_the_wrong_key(checkpoint, tmp_path):
    path, sd = checkpoint
    model, info = build_viclip(ViclipConfig.from_options(SMALL), weights=str(path))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    assert info["weights_sha256"] and info["pretrained"] == "vbench"
    renamed = dict(sd)
    renamed["vision_encoder.projection"] = renamed.pop("vision_encoder.proj")
    torch.save({"model": renamed}, tmp_path / "renamed.pth")
    with pytest.raises(WeightsError, match=r"missing key 'vision_encoder.proj'.*unexpected key 'vision_encoder.projection'"):
        build_viclip(ViclipConfig.from_options(SMALL), weights=str(tmp_path / "renamed.pth"))
    wider = ViclipConfig.from_options({**SMALL, "vision_width": 64})
    with pytest.raises(WeightsError, match=r"'vision_encoder.class_embedding' has shape \[32\], expected \[64\]"):
        build_viclip(wider, weights=str(path))  # a file of another size
    with pytest.raises(WeightsError, match="not found.*ViCLIP/ViClip-InternVid-10M-FLT.pth"):
        OverallConsistency(MetricContext(), architecture=SMALL)  # no file anywhere: never downloaded unpinned


def test_vbenchs_cache_layout_is_used(checkpoint, tmp_path):
    target = tmp_path / "vbench-cache" / "ViCLIP" / VICLIP_SPEC.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint[0].read_bytes())
    m = OverallConsistency(MetricContext(), architecture=SMALL)
    assert m.info["weights_source"] == "vbench-cache" and m.comparable


def test_published_architecture_key_set():
    """The real ViT-L/14 ViCLIP, built without memory: VBench's key names and shapes."""
    with torch.device("meta"):
        model = ViCLIP()
        sd = model.state_dict()
        assert len(sd) == 447 and sum(v.numel() for v in sd.values()) == 427_590_145
        assert tuple(sd["vision_encoder.conv1.weight"].shape) == (1024, 3, 1, 14, 14)
        assert tuple(sd["vision_encoder.positional_embedding"].shape) == (257, 1024)  # (224/14)^2 + 1
        assert tuple(sd["vision_encoder.temporal_positional_embedding"].shape) == (1, 8, 1024)
        assert tuple(sd["vision_encoder.proj"].shape) == (1024, 768)
        assert tuple(sd["vision_encoder.transformer.resblocks.23.attn.in_proj_weight"].shape) == (3072, 1024)
        assert tuple(sd["text_encoder.positional_embedding"].shape) == (32, 768)  # max_txt_l = 32
        assert tuple(sd["text_encoder.token_embedding.weight"].shape) == (49408, 768)
        assert tuple(sd["text_encoder.text_projection"].shape) == (768, 768)
        assert "text_encoder.transformer.resblocks.11.mlp.c_proj.weight" in sd and sd["temp"].shape == ()
        load_viclip_state(model, dict(sd), "meta")  # the full key set loads strictly
        missing = {k: v for k, v in sd.items() if k != "temp"}
        with pytest.raises(WeightsError, match="missing key 'temp'"):
            load_viclip_state(model, missing, "meta")


def test_options_and_labels(checkpoint):
    rnd = OverallConsistency(MetricContext(seed=3), pretrained="random", architecture=SMALL)
    assert not rnd.comparable and "not comparable with published numbers" in rnd.describe()["label"]
    batch = ClipBatch(clips(), prompts=PROMPTS, fps=[24.0, 24.0])
    again = OverallConsistency(MetricContext(seed=3), pretrained="random", architecture=SMALL)
    assert torch.equal(rnd.sample_values(batch)["overall_consistency"],
                       again.sample_values(batch)["overall_consistency"])  # seeded
    # VBench's patch embedding as a convolution: the same number on the CPU
    conv = metric(OverallConsistency, checkpoint, vbench_gpu_compat=True).sample_values(batch)["overall_consistency"]
    plain = metric(OverallConsistency, checkpoint).sample_values(batch)["overall_consistency"]
    assert torch.allclose(conv, plain, atol=1e-6, rtol=0)
    with pytest.raises(MetricInputError, match="prompts for every clip"):
        rnd.sample_values(ClipBatch(clips(), prompts=[], fps=[24.0, 24.0]))
    with pytest.raises(MetricInputError, match="uint8"):
        rnd.sample_values(ClipBatch(clips().float() / 255, prompts=PROMPTS, fps=[24.0, 24.0]))
    with pytest.raises(ConfigError, match="pretrained must be"):
        OverallConsistency(MetricContext(), pretrained="openai", architecture=SMALL)
    with pytest.raises(ConfigError, match="unknown architecture keys"):
        OverallConsistency(MetricContext(), pretrained="random", architecture={"width": 3})

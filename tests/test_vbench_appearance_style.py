"""VBench's appearance_style: CLIP ViT-B/32 (random weights in OpenAI's TorchScript fp16 format, loaded
through the real loader) against a re-computation written from vbench/appearance_style.py: PIL frames
through its clip_transform_Image, CLIP's forward (logit_scale.exp() * normalized image @ text) / 100
per frame in float64, the mean per video and `sim / cnt` over all frames of all videos."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from tests._clips import moving_squares
from tests._openai_clip_files import clip_metric_context, float64_reference, vit_b32_archive
from vdmbench.core.errors import ConfigError, MetricInputError
from vdmbench.metrics import ClipBatch, build_metric
from vdmbench.metrics.vbench_appearance_style import style_of

CLIP_IMAGE = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


def vbench_appearance_reference(model64, batches, styles) -> tuple[list[float], float]:
    per_video, sim, cnt = [], 0.0, 0
    for videos, style in zip(batches, styles):
        text = open_clip.tokenize([style])  # stands in for clip.tokenize: the same BPE, lower-cased, 77 tokens
        with torch.no_grad():  # VBench encodes the text again with every frame: the same value
            txt = model64.encode_text(text)
            txt = txt / txt.norm(dim=-1, keepdim=True)
        for clip in videos:
            cur_video = []
            for frame in clip.numpy():  # load_video(return_tensor=False) -> Image.fromarray per frame
                image = CLIP_IMAGE(Image.fromarray(frame)).double()
                with torch.no_grad():
                    img = model64.encode_image(image.unsqueeze(0))
                    img = img / img.norm(dim=-1, keepdim=True)
                    logits_per_text = model64.logit_scale.exp() * txt @ img.t()
                cur_sim = float(logits_per_text[0][0]) / 100
                cur_video.append(cur_sim)
                sim, cnt = sim + cur_sim, cnt + 1
            per_video.append(float(np.mean(cur_video)))
    return per_video, sim / cnt


def batches() -> list[torch.Tensor]:
    return [moving_squares(1, 3, 41, 67, seed=8, speed=5.0, pan=1.5), moving_squares(1, 4, 243, 227, seed=9)]


def test_appearance_style_equals_vbench() -> None:
    path, _ = vit_b32_archive()
    clips = batches()
    styles = ["Van Gogh style", "by Hokusai, in the style of Ukiyo"]
    m = build_metric({"name": "appearance_style", "weights": str(path)}, clip_metric_context())
    values, weights = [], []
    for videos, style in zip(clips, styles):
        batch = ClipBatch(videos=videos, prompts=[f"a boat, {style}"] * len(videos), fps=[24.0] * len(videos))
        # The suite params of VBench-imported prompts, as the runner passes them (prompt_params).
        batch.prompt_params = [{"vbench": {"appearance_style": {"appearance_style": style}}}] * len(videos)  # type: ignore[attr-defined]
        out = m.sample_values(batch)
        m.update(batch, values=out)
        values += out["appearance_style"].tolist()
        weights += out["appearance_style_weight"].tolist()
    expected, expected_run = vbench_appearance_reference(float64_reference(), clips, styles)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    assert weights == [3.0, 4.0]
    run = m.compute()
    assert float(run["appearance_style"]) == pytest.approx(expected_run, abs=1e-5)
    assert abs(float(np.mean(values)) - expected_run) > 1e-6  # frame-weighted, not the mean of videos
    assert float(run["appearance_style_weight"]) == 7.0


def test_the_style_text_and_the_logit_scale_matter() -> None:
    path, _ = vit_b32_archive()
    clip = batches()[0][:1]
    a = build_metric({"name": "appearance_style", "weights": str(path), "style": "oil painting"}, clip_metric_context())
    b = build_metric({"name": "appearance_style", "weights": str(path), "style": "pixel art"}, clip_metric_context())
    va, vb = (float(x.sample_values(ClipBatch(videos=clip))["appearance_style"][0]) for x in (a, b))
    assert abs(va - vb) > 1e-4
    # VBench's value is logits / 100, with ln(100) stored at fp16 resolution in the file: 4.60546875,
    # exp() / 100 = 1.0002986 times the cosine, not the cosine itself.
    model = float64_reference()
    with torch.no_grad():
        img = model.encode_image(CLIP_IMAGE(Image.fromarray(clip[0, 0].numpy())).double().unsqueeze(0))
        txt = model.encode_text(open_clip.tokenize(["oil painting"]))
        cos = float(torch.nn.functional.cosine_similarity(img, txt))
        scale = float(model.logit_scale.exp()) / 100
    assert scale == pytest.approx(np.exp(np.float64(np.float16(4.6052))) / 100, abs=1e-9)
    assert scale == pytest.approx(1.0002986, abs=1e-6)
    v0 = float(a.sample_values(ClipBatch(videos=clip[:, :1]))["appearance_style"][0])
    assert v0 == pytest.approx(cos * scale, abs=1e-6)
    assert abs(v0 - cos) > 1e-7 or abs(cos) < 1e-3


def test_style_comes_from_option_or_params_else_a_clear_error() -> None:
    assert style_of({"vbench": {"appearance_style": {"appearance_style": "watercolor painting"}}}) == "watercolor painting"
    assert style_of({"vbench": {"color": {"color": "red"}}}) is None and style_of(None) is None
    path, _ = vit_b32_archive()
    m = build_metric({"name": "appearance_style", "weights": str(path)}, clip_metric_context())
    with pytest.raises(MetricInputError, match="no style text for 'a cat'.*style: 'Van Gogh style'"):
        m.sample_values(ClipBatch(videos=torch.zeros(1, 2, 16, 16, 3, dtype=torch.uint8), prompts=["a cat"]))
    with pytest.raises(ConfigError, match="style must be a non-empty text"):
        build_metric({"name": "appearance_style", "weights": str(path), "style": "  "}, clip_metric_context())

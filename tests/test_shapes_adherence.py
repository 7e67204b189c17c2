import numpy as np
import pytest
import torch

from vdmbench.core.errors import MetricInputError
from vdmbench.data import shapes as S
from vdmbench.metrics import ClipBatch, build_metric
from vdmbench.metrics.editing import ShapesEditing
from vdmbench.metrics.reconstruction import Reconstruction


@pytest.mark.parametrize("kw,size", [({}, (8, 32, 32)), ({"textured_p": 1.0}, (8, 32, 32)), ({}, (16, 48, 64))])
def test_real_clips_score_at_least_095_per_attribute(kw, size):
    clips = [S.render(S.sample_scene(np.random.default_rng([11, 5, i]), **kw), *size) for i in range(60)]
    m = build_metric("shapes_adherence")
    m.update(ClipBatch(videos=torch.stack([c.frames for c in clips]), prompts=[c.caption for c in clips]))
    out = m.compute()
    for attr in ("shapes_color", "shapes_shape", "shapes_direction"):
        assert out[attr] >= 0.95, (attr, out)


def test_wrong_prompt_and_noise_score_low():
    clip = S.render_prompt("a red circle moving left", 0, 8, 32, 32)
    m = build_metric("shapes_adherence")
    v = m.sample_values(ClipBatch(videos=clip.frames[None].repeat(2, 1, 1, 1, 1),
                                  prompts=["a red circle moving left", "a blue square moving up"]))
    assert v["shapes_adherence"].tolist() == [1.0, 0.0]
    noise = torch.randint(0, 256, (4, 8, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    v = m.sample_values(ClipBatch(videos=noise, prompts=["a red circle moving left"] * 4))
    assert float(v["shapes_shape"].mean()) <= 0.25
    with pytest.raises(MetricInputError, match="direction"):
        m.sample_values(ClipBatch(videos=noise[:1], prompts=["a red circle"]))


def test_reconstruction_scores_only_generated_frames():
    gt = S.render_prompt("a red circle moving right", 0, 8, 32, 32).frames[None]
    pred = gt.clone()
    pred[0, :4] = 0  # damage only the given frames: no effect
    m = Reconstruction()
    v = m.sample_values(ClipBatch(videos=pred, ground_truth=gt, cond_indices=[(0, 1, 2, 3)]))
    assert v["psnr"].item() == 100.0 and v["ssim"].item() == pytest.approx(1.0)
    pred[0, 5] = 255
    v = m.sample_values(ClipBatch(videos=pred, ground_truth=gt, cond_indices=[(0, 1, 2, 3)]))
    assert v["psnr"].item() < 30 and v["ssim"].item() < 0.9
    with pytest.raises(MetricInputError, match="ground_truth"):
        m.sample_values(ClipBatch(videos=pred))


def test_editing_metric_balances_adherence_and_preservation():
    src = S.render(S.Scene((S.ShapeObject("square", "blue", "medium", "left"),), "stripes", 1), 8, 32, 32).frames
    good = S.render(S.Scene((S.ShapeObject("circle", "red", "medium", "left"),), "stripes", 1), 8, 32, 32).frames
    m = ShapesEditing()
    v = m.sample_values(ClipBatch(videos=torch.stack([good, src]), prompts=["a red circle moving left"] * 2,
                                  source=torch.stack([src, src])))
    # the unchanged copy keeps the requested motion but fails color and shape
    assert v["edit_adherence"].tolist() == pytest.approx([1.0, 1 / 3])
    assert v["edit_preservation_psnr"].tolist() == [100.0, 100.0]
    assert v["edit_score"].tolist() == pytest.approx([1.0, 1 / 3])

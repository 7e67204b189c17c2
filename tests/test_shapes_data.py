import numpy as np
import pytest
import torch

from vdmbench.config.suite import load_suite
from vdmbench.data import shapes as S
from vdmbench.data.conditioning import prepare, reference_clips


def test_same_seed_same_clip_and_streams_are_disjoint():
    a = S.render(S.sample_scene(np.random.default_rng([3, S.TRAIN, 5])), 8, 32, 32)
    b = S.render(S.sample_scene(np.random.default_rng([3, S.TRAIN, 5])), 8, 32, 32)
    assert torch.equal(a.frames, b.frames) and a.caption == b.caption
    train = next(S.training_stream(7, 4, 16, 16, 6))
    again = next(S.training_stream(7, 4, 16, 16, 6))
    assert torch.equal(train[0], again[0]) and train[1] == again[1]
    held = S.heldout_set(6, 7, 4, 16, 16)
    assert not any(torch.equal(h.frames, t) for h in held for t in train[0])
    # resuming the stream at sample 6 continues it exactly
    two = S.training_stream(7, 4, 16, 16, 6)
    next(two)
    assert torch.equal(next(two)[0], next(S.training_stream(7, 4, 16, 16, 6, start=6))[0])


@pytest.mark.parametrize("t,h,w", [(1, 8, 8), (8, 32, 32), (16, 48, 64)])
def test_any_size_exact_ground_truth(t, h, w):
    scene = S.Scene((S.ShapeObject("square", "red", "medium", "right", (0.0, 0.5)),
                     S.ShapeObject("circle", "blue", "small", "down-left", (0.5, 0.5))), "stripes", 3)
    clip = S.render(scene, t, h, w)
    assert clip.frames.shape == (t, h, w, 3) and clip.frames.dtype == torch.uint8
    assert clip.masks.shape == (t, 2, h, w) and clip.centers.shape == (t, 2, 2)
    for i in range(t):  # masks are exact: the visible pixels carry exactly the object's color
        for j, color in enumerate(("red", "blue")):
            px = clip.frames[i][clip.masks[i, j]]
            assert (px == torch.tensor(S.COLORS[color], dtype=torch.uint8)).all()
    if t > 1:  # moving right: x grows, y constant; all objects stay inside the frame
        dx = clip.centers[1:, 0, 0] - clip.centers[:-1, 0, 0]
        assert (dx > 0).all() and torch.allclose(clip.centers[:, 0, 1], clip.centers[0, 0, 1])
        assert clip.masks.flatten(2).any(-1).all()


def test_caption_parse_round_trip():
    for i in range(50):
        scene = S.sample_scene(np.random.default_rng([1, 2, i]), second_object_p=0.5)
        parsed = S.parse_caption(scene.caption)
        assert [(p["shape"], p["color"], p["direction"]) for p in parsed] == \
               [(o.shape, o.color, o.direction) for o in scene.objects]
    assert S.parse_caption("A big red circle moving upper left")[0] == \
        {"shape": "circle", "color": "red", "size": "large", "direction": "up-left"}
    assert S.parse_caption("a green square, not moving")[0]["direction"] == "still"
    scene = S.scene_from_prompt("a red circle moving left", seed=4, params={"background": "noise"})
    assert (scene.objects[0].color, scene.objects[0].shape, scene.objects[0].direction) == ("red", "circle", "left")
    assert scene.background == "noise" and scene.caption == "a red circle moving left"
    with pytest.raises(ValueError, match="unknown color"):
        S.scene_from_prompt("a circle", 0, {"objects": [{"color": "mauve"}]})


@pytest.mark.parametrize("name,k", [("shapes-prediction", 4), ("shapes-interpolation", 2), ("shapes-editing", 8)])
def test_conditioning_shapes(name, k):
    suite = load_suite(name)
    prompt, seed = suite.samples()[0]
    c = prepare(suite, prompt, seed)
    assert c.cond_frames.shape == (k, 32, 32, 3) and c.cond_frames.dtype == torch.uint8
    assert c.ground_truth.frames.shape == (8, 32, 32, 3)
    if name == "shapes-editing":
        assert c.strength == 0.6 and c.cond_indices == ()
        assert torch.equal(c.source.frames, c.cond_frames) and not torch.equal(c.source.frames, c.ground_truth.frames)
    else:
        assert torch.equal(c.ground_truth.frames[list(c.cond_indices)], c.cond_frames)
    again = prepare(suite, prompt, seed)
    assert torch.equal(again.cond_frames, c.cond_frames)


def test_reference_clips_deterministic():
    suite = load_suite("shapes-t2v")
    a = [c for _, c in zip(range(3), reference_clips(suite))]
    b = [c for _, c in zip(range(3), reference_clips(suite))]
    assert all(torch.equal(x, y) and x.shape == (8, 32, 32, 3) for x, y in zip(a, b))

"""MUSIQ as pyiqa builds it: the pieces that decide its numbers (hashed positions, multi-scale
patches, resize sizes) against hand-written references, the network against a float64
re-computation, and the published checkpoint's layout (a plain state dict, pyiqa's key names)."""

import numpy as np
import pytest
import torch

from tests import _musiq_reference as ref
from vdmbench.core.errors import WeightsError
from vdmbench.features.musiq import (
    MUSIQ_SPAQ,
    MusiqConfig,
    config_from_state,
    hashed_positions,
    load_musiq,
    multiscale_patches,
    random_musiq,
    resize_longer_side,
)
from vdmbench.features.weights import load_state_dict

SMALL = MusiqConfig(hidden_size=128, mlp_dim=192, num_heads=2, num_layers=2)


def lively(model):
    """Random weights with embeddings large enough that positions, scales and masks matter."""
    with torch.no_grad():
        enc = model.transformer_encoder
        for t in (enc.posembed_input.position_emb, enc.scaleembed_input.scale_emb, enc.cls):
            t.normal_(0, 0.5, generator=torch.Generator().manual_seed(t.numel()))
    return model


@pytest.fixture(scope="module")
def small():
    return lively(random_musiq(7, SMALL))


def test_hashed_positions_are_the_grid_cells_of_rows_and_columns():
    # Known answers: 10 patches map one to one, 5 skip every other cell, 20 repeat each cell.
    assert hashed_positions(10, 1, 10).tolist() == list(range(10))
    assert hashed_positions(10, 1, 5).tolist() == [0, 2, 4, 6, 8]
    assert hashed_positions(10, 1, 20).tolist() == [c // 2 for c in range(20)]
    assert hashed_positions(10, 3, 1).tolist() == [0, 30, 60]
    for ch in range(1, 17):  # every patch grid a <= 512-pixel frame can have at 32-pixel patches
        for cw in range(1, 17):
            want = [ref.grid_cell(r, ch, 10) * 10 + ref.grid_cell(c, cw, 10) for r in range(ch) for c in range(cw)]
            assert hashed_positions(10, ch, cw).tolist() == want, (ch, cw)


def test_scale_sizes_follow_pythons_round_half_to_even():
    # 3 x 64 at longer side 224: 3 * 3.5 = 10.5 -> 10 (round half to even, as pyiqa's round()).
    img = torch.zeros(1, 3, 3, 64)
    assert resize_longer_side(img, 224).shape[-2:] == (10, 224)
    assert resize_longer_side(img, 384).shape[-2:] == (18, 384)
    assert resize_longer_side(torch.zeros(1, 3, 70, 45), 384).shape[-2:] == (384, 247)


@pytest.mark.parametrize("h,w", [(37, 61), (70, 45), (3, 64), (520, 130)])
def test_multiscale_tokens_equal_the_reference(h, w):
    rng = np.random.default_rng(h * w)
    img = rng.uniform(0, 1, (3, h, w))
    got = multiscale_patches(torch.from_numpy((img - 0.5) * 2)[None], MusiqConfig())
    pix, pos, scale, mask = ref.multiscale(img)
    # Lengths: 49 (224, padded), 144 (384, padded), then every original-resolution patch.
    assert got.pixels.shape[1] == len(pos) == 49 + 144 + -(-h // 32) * -(-w // 32)
    assert got.position[0].tolist() == pos.tolist()
    assert got.scale[0].tolist() == scale.tolist()
    assert got.mask[0].tolist() == mask.tolist()
    assert np.abs(got.pixels[0].numpy() - pix).max() < 1e-12


def test_padding_tokens_are_masked_zero_patches_at_position_and_scale_zero():
    got = multiscale_patches(torch.rand(1, 3, 40, 100) * 2 - 1, MusiqConfig())
    # 224-scale: 224 x 90 -> 7 x 3 = 21 real patches of 49; 384-scale: 384 x 154 -> 12 x 5 = 60 of 144.
    m = got.mask[0]
    assert m[:49].sum() == 21 and m[49:193].sum() == 60 and m[193:].all() and len(m) == 193 + 2 * 4
    pad = ~m
    assert (got.pixels[0][pad] == 0).all() and (got.position[0][pad] == 0).all() and (got.scale[0][pad] == 0).all()
    assert got.scale[0][m].unique().tolist() == [0, 1, 2]


def test_the_network_equals_a_float64_recomputation(small):
    img = np.random.default_rng(5).uniform(0, 1, (3, 37, 61))  # odd, non-square: padded patches
    want = ref.musiq_score(small.state_dict(), img, heads=SMALL.num_heads)
    with torch.no_grad():
        fp32 = float(small(torch.from_numpy(img).float()[None])[0])
        fp64 = float(small.double()(torch.from_numpy(img)[None])[0])
    small.float()
    assert abs(fp64 - want) < 1e-9  # the same computation, step for step
    assert abs(fp32 - want) < 1e-5
    # The network really looks at the pixels: a flipped image scores differently.
    flipped = ref.musiq_score(small.state_dict(), img[:, :, ::-1].copy(), heads=SMALL.num_heads)
    assert abs(flipped - want) > 1e-4


def test_a_frame_scores_the_same_alone_and_in_a_batch(small):
    x = torch.rand(2, 3, 45, 70, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batch = small(x)
        alone = torch.stack([small(x[i:i + 1])[0] for i in range(2)])
    assert torch.allclose(batch, alone, atol=1e-5) and batch.shape == (2,)


def test_the_published_checkpoint_layout_loads_strictly_through_the_real_loader(tmp_path):
    """Full published architecture: pyiqa's key names and shapes, saved as pyiqa publishes it (a
    plain state dict, torch.save), read back by load_state_dict + load_musiq (strict)."""
    model = lively(random_musiq(3))
    state = model.state_dict()
    assert sum(v.numel() for v in state.values()) == 27_125_825  # ~103.5 MiB in float32, as the file
    for key, shape in {
        "conv_root.weight": (64, 3, 7, 7), "gn_root.bias": (64,), "block1.conv2.weight": (64, 64, 3, 3),
        "block1.conv_proj.weight": (256, 64, 1, 1), "block1.gn_proj.weight": (256,),
        "embedding.weight": (384, 16384), "transformer_encoder.posembed_input.position_emb": (1, 100, 384),
        "transformer_encoder.scaleembed_input.scale_emb": (3, 384), "transformer_encoder.cls": (1, 1, 384),
        "transformer_encoder.transformer.encoderblock_13.attention.query.weight": (384, 384),
        "transformer_encoder.transformer.encoderblock_13.mlp.fc1.weight": (1152, 384),
        "transformer_encoder.encoder_norm.weight": (384,), "head.weight": (1, 384), "head.bias": (1,),
    }.items():
        assert tuple(state[key].shape) == shape, key
    # root 3, block1 12, token embedding 2, position/scale/class 3, 16 per block, final norm 2, head 2
    assert len(state) == 3 + 12 + 2 + 3 + 14 * 16 + 2 + 2
    path = tmp_path / MUSIQ_SPAQ.filename
    torch.save(state, path)
    loaded = load_musiq(load_state_dict(path), source=str(path))
    assert config_from_state(state) == MusiqConfig()
    img = np.random.default_rng(0).uniform(0, 1, (3, 35, 50))
    with torch.no_grad():
        got = float(loaded(torch.from_numpy(img).float()[None])[0])
    assert abs(got - ref.musiq_score(state, img, heads=6)) < 1e-5
    # pyiqa strips DataParallel's prefix; so does the loader.
    again = load_musiq({f"module.{k}": v for k, v in state.items()})
    assert torch.equal(again.head.weight, loaded.head.weight)


def test_wrong_checkpoints_are_refused_with_the_key_named(small):
    state = small.state_dict()
    missing = {k: v for k, v in state.items() if k != "block1.gn3.weight"}
    with pytest.raises(WeightsError, match=r"missing key 'block1.gn3.weight'"):
        load_musiq(missing, source="x.pth")
    with pytest.raises(WeightsError, match=r"unexpected key 'head.0.weight'"):  # AVA's 10-class head
        load_musiq({**state, "head.0.weight": torch.zeros(10, 128)}, source="x.pth")
    bad = dict(state)
    bad["head.weight"] = torch.zeros(10, 128)
    with pytest.raises(WeightsError, match=r"'head.weight' has shape \[10, 128\], expected \[1, 128\]"):
        load_musiq(bad, source="x.pth")
    with pytest.raises(WeightsError, match="x.pth: not a pyiqa MUSIQ checkpoint"):
        load_musiq({"fc.weight": torch.zeros(2, 2)}, source="x.pth")

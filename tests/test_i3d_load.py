"""features: i3d builds the model on the meta device and assigns the checkpoint's tensors (issue #21:
nothing computed twice; the random init it used to do was overwritten by the load). The features
must be those of the plain construct-then-copy load, bit for bit."""

from __future__ import annotations

import pytest
import torch

from tests._clips import moving_squares
from vdmbench.core.errors import WeightsError
from vdmbench.features.i3d import InceptionI3d, build_i3d_features, fvd_preprocess, init_random_


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d") / "rgb_random.pt"
    state = init_random_(InceptionI3d(), 5).state_dict()
    # the piergiaj file has no step counters; float64 values check the cast to the model's dtype
    torch.save({k: v.double() if v.is_floating_point() else v for k, v in state.items()
                if not k.endswith("num_batches_tracked")}, path)
    return path


def test_assigned_load_gives_the_plain_loads_features(weights):
    torch.set_num_threads(1)
    extractor, _ = build_i3d_features("i3d", weights=str(weights), resize=32, batch_size=2)
    plain = InceptionI3d()
    state = torch.load(weights, weights_only=True)
    plain.load_state_dict(state, strict=False)  # copies into the float32 parameters
    plain = plain.eval().to(memory_format=torch.channels_last_3d)
    clips = moving_squares(2, 16, 32, 32, seed=1)
    with torch.no_grad():
        expected = plain(fvd_preprocess(clips, 32, channels_last=True))[0].double()
    got = extractor(clips)
    assert torch.equal(got, expected)
    assert got.abs().max() > 0 and not torch.equal(got[0], got[1])


def test_assigned_model_holds_real_float32_tensors(weights):
    # the extractor closes over its model; reach it through the forward's closure
    extractor, _ = build_i3d_features("i3d", weights=str(weights), resize=32)
    model = next(c.cell_contents for c in extractor.forward.__closure__ if isinstance(c.cell_contents, InceptionI3d))
    tensors = list(model.parameters()) + list(model.buffers())
    assert all(not t.is_meta for t in tensors)
    assert {t.dtype for t in model.parameters()} == {torch.float32}
    assert all(isinstance(p, torch.nn.Parameter) for p in model.parameters())


def test_misshapen_checkpoint_is_still_a_one_line_error(tmp_path, weights):
    state = torch.load(weights, weights_only=True)
    key = next(k for k in state if k.endswith("conv3d.weight"))
    state[key] = state[key][:, :1]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(WeightsError, match="misshapen"):
        build_i3d_features("i3d", weights=str(bad))

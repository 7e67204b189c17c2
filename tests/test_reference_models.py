"""Reference models: determinism, checkpoints, conditioning and a tiny training run (CPU, quick)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from vdmbench.adapters import build_adapter
from vdmbench.adapters.base import GenerationRequest
from vdmbench.core.errors import AdapterError, WeightsError
from vdmbench.data import shapes as S
from vdmbench.data.shapes import vocabulary
from vdmbench.reference import train
from vdmbench.reference.diffusion import (
    VideoDiffusion,
    load_weights,
    make_scheduler,
    save_weights,
    training_loss,
)
from vdmbench.reference.text import Vocabulary


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The suite shares 2 cores with other work: intra-op threads only contend there.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = {"channels": [16, 32], "groups": 4, "heads": 2}


def tiny(arch="unet3d", lowres=False, seed=0):
    torch.manual_seed(seed)
    m = VideoDiffusion(arch, TINY, vocabulary(), text_dim=16, lowres=lowres, resolution=(4, 16, 16))
    with torch.no_grad():  # zero-initialized outputs would make every sample identical
        for p in m.parameters():
            if p.ndim >= 2 and float(p.abs().max()) == 0:
                p.normal_(0, 0.05)
    return m.eval()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(tiny(), path, extra={"train": {"steps": 0}})
    return path


def req(**kw):
    base = dict(prompt="a red circle moving left", seed=3, num_frames=4, height=16, width=16, fps=8, steps=4)
    return GenerationRequest(**{**base, **kw})


def test_text_encoder_counts_unknown_words():
    v = Vocabulary(vocabulary())
    tok = v.encode(["a red circle moving left", "a crimson blob moving left", ""])
    assert tok.unknown == ((), ("crimson", "blob"), ())
    assert (tok.ids[1] == 1).sum() == 2  # <unk>
    assert tok.ids[2, 0] == 2 and tok.mask[2].sum() == 1  # the empty caption is <null>


def test_text_encoder_tells_every_word_apart_at_init():
    # Regression: with std-0.02 word vectors "left" and "right" came out of the encoder nearly
    # equal, and the trained models ignored the direction of motion altogether.
    torch.manual_seed(0)
    m = VideoDiffusion("unet3d", TINY, vocabulary(), text_dim=64)
    words = vocabulary()
    with torch.no_grad():
        feats, _, pooled, _ = m.encode_text([f"a red circle moving {w}" for w in words], "cpu")
    last = feats[:, 4]  # the varied word's own output feature
    dist = torch.cdist(last, last) + torch.eye(len(words)) * 1e9
    assert float(dist.min()) > 0.5 * float(last.norm(dim=1).mean())
    pd = torch.cdist(pooled, pooled) + torch.eye(len(words)) * 1e9
    assert float(pd.min()) > 0.1 * float(pooled.norm(dim=1).mean())


def test_captions_use_an_before_vowels_and_every_word_is_known():
    obj = S.ShapeObject(shape="circle", color="orange", size="small", direction="left")
    assert S.caption(S.Scene((obj,))) == "an orange circle moving left"
    assert S.caption(S.Scene((obj,), size_in_caption=True)) == "a small orange circle moving left"
    v = Vocabulary(vocabulary())
    caps = [S.sample_scene(S._rng(0, S.TRAIN, i), second_object_p=0.5).caption for i in range(300)]
    assert not any(v.encode(caps).unknown[i] for i in range(len(caps)))


@pytest.mark.parametrize("arch", ["unet3d", "temporal_attention"])
def test_same_seed_bit_identical_and_seeds_differ(arch, tmp_path):
    path = save_weights(tiny(arch), tmp_path / f"{arch}.safetensors")
    a = build_adapter({"name": "t", "adapter": "reference", "params": {"weights": str(path)}})
    v1, v2, v3 = a.generate([req(), req(seed=4), req()])
    assert torch.equal(v1.frames, v3.frames)  # whatever ran in between
    assert not torch.equal(v1.frames, v2.frames)
    b = build_adapter({"name": "t2", "adapter": "reference", "params": {"weights": str(path)}})
    assert torch.equal(b.generate([req()])[0].frames, v1.frames)  # a fresh instance too
    assert v1.frames.shape == (4, 16, 16, 3) and v1.frames.dtype == torch.uint8


def test_checkpoint_round_trip_and_strict_load(tiny_weights, tmp_path):
    model, meta = load_weights(tiny_weights)
    assert meta["arch"] == "unet3d" and json.loads(meta["train"]) == {"steps": 0}
    sd = load_file(str(tiny_weights))
    assert all(t.dtype == torch.float16 for t in sd.values() if t.is_floating_point())
    for k, t in model.state_dict().items():
        assert torch.equal(t.half(), sd[k])
    # a missing tensor (or a foreign architecture) is refused, never half-loaded
    from safetensors.torch import save_file
    bad = tmp_path / "bad.safetensors"
    save_file({k: v for k, v in list(sd.items())[1:]}, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(bad)
    with pytest.raises(WeightsError, match="safetensors"):
        load_weights(tmp_path / "w.pt")


def test_random_init_is_labelled_and_tasks_condition(tiny_weights):
    r = build_adapter({"name": "r", "adapter": "reference", "params": {"weights": None, "steps": 2}})
    assert "RANDOM" in r.info["label"]
    a = build_adapter({"name": "t", "adapter": "reference", "params": {"weights": str(tiny_weights)}})
    gt = S.render_prompt("a red circle moving left", 0, 4, 16, 16).frames
    v = a.generate([req(task="prediction", cond_frames=gt[:2], cond_indices=(0, 1))])[0]
    assert torch.equal(v.frames[:2], gt[:2])  # given frames come back exactly
    v = a.generate([req(task="interpolation", cond_frames=gt[[0, 3]], cond_indices=(0, 3))])[0]
    assert torch.equal(v.frames[[0, 3]], gt[[0, 3]])
    e1, e2 = a.generate([req(task="editing", cond_frames=gt, strength=0.3),
                         req(task="editing", cond_frames=gt, strength=1.0)])
    # low strength stays closer to the source than full re-noising
    d = lambda v: (v.frames.float() - gt.float()).abs().mean()
    assert d(e1) < d(e2)
    bad = a.generate([req(task="prediction"), req(height=10)])
    assert all(isinstance(x, AdapterError) for x in bad)


def test_cascade_adapter(tmp_path):
    torch.manual_seed(0)
    base = VideoDiffusion("unet3d", TINY, vocabulary(), text_dim=16, resolution=(4, 8, 8))
    save_weights(base, tmp_path / "base.safetensors")
    save_weights(tiny(lowres=True), tmp_path / "sr.safetensors")
    a = build_adapter({"name": "c", "adapter": "reference", "params": {
        "arch": "cascade", "base_weights": str(tmp_path / "base.safetensors"),
        "sr_weights": str(tmp_path / "sr.safetensors"), "steps": 3}})
    v1, v2 = a.generate([req(height=16, width=16), req(height=16, width=16)])
    assert v1.frames.shape == (4, 16, 16, 3) and torch.equal(v1.frames, v2.frames)


def test_tiny_training_lowers_loss_and_resumes_exactly(tmp_path):
    args = ["--frames", "4", "--height", "16", "--width", "16", "--batch-size", "8", "--lr", "3e-3",
            "--warmup", "5", "--net-config", json.dumps(TINY), "--text-dim", "16", "--device", "cpu",
            "--log-every", "5", "--seed", "1"]

    def fixed_loss(path):
        model, _ = load_weights(path)
        sched = make_scheduler()
        frames, caps = next(S.training_stream(99, 4, 16, 16, 32))
        with torch.no_grad():
            return float(training_loss(model, sched, frames, caps, torch.Generator().manual_seed(0)))

    assert train.main(["--out", str(tmp_path / "a"), "--steps", "0", *args]) == 0
    before = fixed_loss(tmp_path / "a" / "final.safetensors")
    assert train.main(["--out", str(tmp_path / "b"), "--steps", "40", "--snapshot", "20", *args]) == 0
    after = fixed_loss(tmp_path / "b" / "model.safetensors")
    assert after < 0.8 * before, (before, after)
    assert (tmp_path / "b" / "ema-step20.safetensors").is_file()
    log = [json.loads(x) for x in (tmp_path / "b" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(5, 45, 5))
    # 20 steps, stop, resume to 40 == 40 steps straight
    assert train.main(["--out", str(tmp_path / "c"), "--steps", "20", *args]) == 0
    assert train.main(["--out", str(tmp_path / "c"), "--steps", "40", *args]) == 0
    b, c = load_file(str(tmp_path / "b" / "model.safetensors")), load_file(str(tmp_path / "c" / "model.safetensors"))
    assert all(torch.equal(b[k], c[k]) for k in b)
    # other settings in the same folder are refused
    assert train.main(["--out", str(tmp_path / "c"), "--steps", "50", *args[:-1], "2"]) == 2
    # --init starts a new run from given weights (a second stage): step 0 equals those weights
    init = tmp_path / "b" / "final.safetensors"
    assert train.main(["--out", str(tmp_path / "d"), "--steps", "0", "--init", str(init), *args]) == 0
    d, e = load_file(str(tmp_path / "d" / "model.safetensors")), load_file(str(init))
    assert all(torch.equal(d[k], e[k].float()) for k in e)
    other = ["--out", str(tmp_path / "e"), "--steps", "0", "--init", str(init), *args, "--text-dim", "8"]
    assert train.main(other) == 2  # weights of another shape: a clear refusal


def test_unknown_words_are_stored_with_each_sample_and_survive_the_cache(tiny_weights, tmp_path):
    """Which prompt words the model read as <unk> is data: samples.notes (and the cached clip's)."""
    from vdmbench.config.suite import parse_suite
    from vdmbench.run.runner import Runner, RunOptions
    from vdmbench.store.database import Store

    suite = parse_suite({"name": "unk", "num_frames": 4, "height": 16, "width": 16, "fps": 8, "steps": 2,
                         "seeds": [0], "metrics": ["flicker"],
                         "prompts": [{"id": "known", "text": "a red circle moving left"},
                                     {"id": "odd", "text": "a crimson blob moving left"}]})
    model = {"name": "tiny", "adapter": "reference", "params": {"weights": str(tiny_weights)}}
    options = RunOptions(results_dir=tmp_path, progress=False, workers=0)
    with pytest.warns(UserWarning, match="crimson, blob"):
        first = Runner(suite, model, options).run()
    second = Runner(suite, model, RunOptions(results_dir=tmp_path, progress=False, workers=0, resume=False)).run()
    assert (first.generated, second.cached) == (2, 2)
    rows = Store(options.db_path)._query(
        "SELECT run_id, prompt_id, coalesce(notes::VARCHAR, '') AS notes FROM samples ORDER BY run_id, prompt_id")
    for run in (first.run_id, second.run_id):
        notes = dict(zip(rows[rows.run_id == run].prompt_id, rows[rows.run_id == run].notes))
        assert notes["known"] == ""
        assert json.loads(notes["odd"]) == {"unknown_words": ["crimson", "blob"]}

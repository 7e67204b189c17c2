"""The diffusers adapter on a tiny, randomly initialized TextToVideoSDPipeline built offline here,
saved with save_pretrained and loaded by path: the real diffusers code path, no mocks."""

import json
import warnings
from typing import ClassVar

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from vdmbench.adapters import build_adapter
from vdmbench.adapters.base import GenerationRequest
from vdmbench.adapters.diffusers import (
    DiffusersAdapter,
    frames_to_video,
    infer_tasks,
    split_batch,
)
from vdmbench.core.errors import AdapterError, ConfigError


def _tokenizer(folder):
    """A CLIP BPE tokenizer from a vocabulary of single letters and a few merges, written here."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    for tok in ("re", "red</w>", "ci", "cir"):
        vocab[tok] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nr e\nre d</w>\nc i\nci r\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16), len(vocab)


def tiny_pipeline(folder):
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        TextToVideoSDPipeline,
        UNet3DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vocab_size = _tokenizer(folder)
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8,), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=4, sample_size=16,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=16, projection_dim=8, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TextToVideoSDPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                     scheduler=scheduler)


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-t2v")
    tiny_pipeline(folder).save_pretrained(folder / "pipe")
    return folder / "pipe"


@pytest.fixture(scope="module")
def adapter(pipe_dir):
    cfg = {"name": "tiny", "adapter": "diffusers",
           "params": {"model": str(pipe_dir), "device": "cpu", "dtype": "float32", "batch_size": 4, "steps": 2}}
    return build_adapter(cfg)


def req(seed=0, prompt="a red circle", **kw):
    base = dict(prompt=prompt, seed=seed, num_frames=4, height=16, width=16, fps=8.0)
    return GenerationRequest(**{**base, **kw})


def test_loaded_by_path_infers_task_and_is_in_eval_mode(adapter):
    assert adapter.capabilities.tasks == ("t2v",)
    assert type(adapter.pipe).__name__ == "TextToVideoSDPipeline"
    assert not adapter.pipe.unet.training and not adapter.pipe.vae.training


def test_output_is_uint8_thwc_and_deterministic_per_seed(adapter):
    a, b, c = adapter.generate([req(0), req(0), req(1)])
    for v in (a, b, c):
        assert v.frames.dtype == torch.uint8 and tuple(v.frames.shape) == (4, 16, 16, 3) and v.fps == 8.0
    assert torch.equal(a.frames, b.frames)  # same seed, same batch: identical
    assert not torch.equal(a.frames, c.frames)
    again = adapter.generate([req(0)])[0]  # alone instead of in a batch of 3: the same noise
    assert (again.frames.int() - a.frames.int()).abs().max() <= 1


def test_mixed_sizes_in_one_call_and_per_request_errors(adapter):
    out = adapter.generate([req(0), req(0, num_frames=3, height=8, width=24), req(0, task="i2v")])
    assert tuple(out[0].frames.shape) == (4, 16, 16, 3)
    assert tuple(out[1].frames.shape) == (3, 8, 24, 3)
    assert isinstance(out[2], AdapterError) and "cannot do task 'i2v'" in str(out[2])


def test_size_and_frame_constraints_give_clear_errors(pipe_dir):
    a = DiffusersAdapter("strict", model=str(pipe_dir), device="cpu", size_multiple=8, frame_step=4,
                         max_frames=9, steps=1)
    bad_size, bad_frames, too_long, ok = a.generate(
        [req(height=12), req(num_frames=4), req(num_frames=13), req(num_frames=5)]
    )
    assert isinstance(bad_size, AdapterError) and "multiple of 8" in str(bad_size)
    assert isinstance(bad_frames, AdapterError) and "k*4+1" in str(bad_frames) and "e.g. 5" in str(bad_frames)
    assert isinstance(too_long, AdapterError) and "maximum 9" in str(too_long)
    assert ok.num_frames == 5


def test_size_policy_model_uses_the_models_own_frames_size_fps(pipe_dir):
    a = DiffusersAdapter("native", model=str(pipe_dir), device="cpu", size_policy="model", num_frames=3,
                         height=8, width=16, fps=12, steps=1)
    v = a.generate([req(num_frames=6, height=32, width=32)])[0]
    assert tuple(v.frames.shape) == (3, 8, 16, 3) and v.fps == 12.0
    with pytest.raises(ConfigError, match="size_policy 'model' needs"):
        DiffusersAdapter("x", model=str(pipe_dir), device="cpu", size_policy="model")


def test_steps_and_guidance_come_from_request_else_model(pipe_dir):
    a = DiffusersAdapter("d", model=str(pipe_dir), device="cpu", steps=3, guidance=5.0)
    assert (a.settings(req()).steps, a.settings(req()).guidance) == (3, 5.0)
    assert (a.settings(req(steps=7, guidance=1.5)).steps, a.settings(req(steps=7, guidance=1.5)).guidance) == (7, 1.5)
    fewer = a.generate([req(steps=1)])[0]
    more = a.generate([req(steps=2)])[0]
    assert not torch.equal(fewer.frames, more.frames)  # the request's steps reached the pipeline


def test_pipeline_assembled_in_code_is_put_in_eval_mode(tmp_path):
    pipe = tiny_pipeline(tmp_path)
    pipe.unet.train()
    a = DiffusersAdapter("in-code", pipe=pipe, device="cpu", steps=1, dtype="float32")
    assert not a.pipe.unet.training and not a.pipe.text_encoder.training


def test_bad_configs_are_config_errors(tmp_path, pipe_dir):
    with pytest.raises(ConfigError, match="cannot load the diffusers pipeline"):
        DiffusersAdapter("missing", model=str(tmp_path / "nope"), device="cpu", load_kwargs={"local_files_only": True})
    with pytest.raises(ConfigError, match="cannot do tasks"):
        DiffusersAdapter("t", model=str(pipe_dir), device="cpu", tasks=["i2v"])
    with pytest.raises(ConfigError, match="NoSuchPipeline"):
        DiffusersAdapter("t", model=str(pipe_dir), pipeline="NoSuchPipeline", device="cpu")
    with pytest.raises(ConfigError, match="dtype"):
        DiffusersAdapter("t", model=str(pipe_dir), device="cpu", dtype="float8")


def test_output_layouts_normalize_to_uint8():
    from PIL import Image

    f = np.random.default_rng(0).random((2, 3, 4, 5, 3), dtype=np.float32)
    assert [tuple(x.shape) for x in split_batch(f, 2)] == [(3, 4, 5, 3)] * 2
    v = frames_to_video(split_batch(f, 2)[1], 8)
    assert v.frames.dtype == torch.uint8 and tuple(v.frames.shape) == (3, 4, 5, 3)
    pil = [Image.fromarray((f[0, i] * 255).astype(np.uint8)) for i in range(3)]
    assert tuple(frames_to_video(split_batch(pil, 1)[0], 8).frames.shape) == (3, 4, 5, 3)
    chw = torch.rand(3, 3, 4, 5)
    assert tuple(frames_to_video(chw, 8).frames.shape) == (3, 4, 5, 3)
    with pytest.raises(AdapterError, match="below 0"):
        frames_to_video(torch.full((2, 4, 4, 3), -0.5), 8)
    with pytest.raises(AdapterError, match="into 3 videos"):
        split_batch(f, 3)


def test_task_inference_from_the_call_signature():
    assert infer_tasks({"prompt", "num_frames"}) == ("t2v",)
    assert infer_tasks({"image", "prompt"}) == ("i2v",)  # CogVideoX-I2V, LTX-I2V
    assert infer_tasks({"image", "motion_bucket_id"}) == ("i2v",)  # SVD: no prompt at all
    assert infer_tasks({"video", "prompt", "strength"}) == ("editing",)


def test_end_to_end_run_through_the_cli(vdmbench_cli, tmp_path, pipe_dir):
    cfg = tmp_path / "cfg" / "adapters"
    cfg.mkdir(parents=True)
    (cfg / "tiny-diffusers.yaml").write_text(
        f"name: tiny-diffusers\nadapter: diffusers\n"
        f"params: {{model: '{pipe_dir}', device: cpu, dtype: float32, steps: 1, batch_size: 4}}\n"
    )
    p = vdmbench_cli("run", "suite=tiny", "model=tiny-diffusers", f"hydra.searchpath=[file://{tmp_path / 'cfg'}]")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "12 samples ok, 0 failed" in p.stdout


def test_a_missing_accelerate_says_install_accelerate(pipe_dir, monkeypatch):
    import sys

    for mod in [m for m in sys.modules if m == "accelerate" or m.startswith("accelerate.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "accelerate", None)  # `import accelerate` now raises ImportError
    with pytest.raises(ConfigError) as err:
        DiffusersAdapter("local", model=str(pipe_dir), device="cpu", dtype="float32")
    message = str(err.value)
    assert "install accelerate: pip install accelerate" in message and "\n" not in message
    assert "Hub" not in message and "cannot load" not in message


def test_an_error_raised_from_a_missing_accelerate_is_reported_as_such():
    from vdmbench.adapters.diffusers import _mentions_accelerate

    try:
        try:
            raise ModuleNotFoundError("No module named 'accelerate'", name="accelerate")
        except ImportError as inner:
            raise RuntimeError("Failed to import diffusers.models.autoencoders.autoencoder_kl") from inner
    except RuntimeError as e:
        assert _mentions_accelerate(e)
    assert not _mentions_accelerate(OSError("model_index.json not found"))


class ImageOnlyPipeline:
    """The call signature of an image-to-video pipeline (SVD: an image, no prompt)."""

    components: ClassVar[dict] = {}

    def to(self, device):
        return self

    def __call__(self, image, num_frames=4, height=16, width=16, generator=None, output_type="pil",
                 num_inference_steps=2):
        return None


def test_t2v_on_an_image_only_pipeline_is_refused_when_configured():
    with pytest.raises(ConfigError) as err:
        DiffusersAdapter("svd", pipe=ImageOnlyPipeline(), device="cpu", tasks=["t2v"])
    message = str(err.value)
    assert "\n" not in message
    assert "ImageOnlyPipeline cannot do tasks ['t2v']" in message and "tasks it supports: i2v" in message
    assert DiffusersAdapter("svd", pipe=ImageOnlyPipeline(), device="cpu").capabilities.tasks == ("i2v",)


def test_t2v_override_on_an_image_only_model_config_is_refused(monkeypatch):
    import vdmbench.adapters.diffusers as mod

    monkeypatch.setattr(mod.DiffusersAdapter, "_load", lambda self, *a: ImageOnlyPipeline())
    cfg = {"name": "tiny-i2v", "adapter": "diffusers", "tasks": ["i2v"],
           "params": {"model": "org/tiny-i2v", "device": "cpu", "tasks": ["t2v"]}}  # +model.params.tasks=[t2v]
    with pytest.raises(ConfigError, match=r"ImageOnlyPipeline cannot do tasks \['t2v'\].*supports: i2v"):
        build_adapter(cfg)

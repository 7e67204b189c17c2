"""The `transformers` judge backend with a tiny Qwen2.5-VL built offline from its config class
(seeded random weights, saved with save_pretrained in the published safetensors layout, loaded back
through AutoProcessor / AutoModelForImageTextToText): greedy answers and P(yes) against an
independent forward pass in float64, batched = one at a time, and a rerun that never loads the model.

The language-model head is set so that only "Yes" and "No" can win (their rows are +u and -u, every
other row 0), so the answer depends on the frames through the whole network but is always readable."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from vdmbench.judges import build_judge  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_qwen(folder, seed: int = 0):
    """A byte-level BPE tokenizer with the Qwen special tokens, Qwen2-VL image/video processors and
    a 2-layer Qwen2.5-VL, saved to `folder`. Returns the ids of "Yes" and "No"."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    vocab = {t: i for i, t in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for word in ("Ye", "Yes", "No"):
        vocab[word] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[("Y", "e"), ("Ye", "s"), ("N", "o")]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  chat_template=TEMPLATE)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56),
                                    tokenizer=tok, video_processor=Qwen2VLVideoProcessor(), chat_template=TEMPLATE)
    special = {"eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"], "bos_token_id": None}
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "vocab_size": len(tok), "max_position_embeddings": 1024,
                     "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
                     **special},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [1]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False, **special)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    yes_id, no_id = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # Steer the head so that clip 0 gets Yes and clip 1 gets No: with h0, h1 the head's inputs for
    # them, u = the part of h0 - h1 orthogonal to their mean gives h0.u > 0 > h1.u.
    judge = judge_at(folder, None)
    h0, h1 = (head_input(model, processor, judge, v, "Is there a dog?") for v in clips(2))
    m, d = (h0 + h1) / 2, h0 - h1
    u = d - (d @ m) / (m @ m) * m
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.weight[yes_id] = u.float() * 50
        model.lm_head.weight[no_id] = -u.float() * 50
    model.save_pretrained(folder)
    return yes_id, no_id


def prompt_inputs(processor, judge, frames, question):
    from PIL import Image

    shown = judge.show(frames)
    system, user = judge.templates["yes_no"].render(question=question, n_frames=len(shown.indices))
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": [{"type": "image"} for _ in shown.pixels] + [{"type": "text", "text": user}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=[[Image.fromarray(p) for p in shown.pixels]], return_tensors="pt")


def head_input(model, processor, judge, frames, question) -> torch.Tensor:
    """What the language-model head sees at the last prompt position (float64)."""
    seen = []
    hook = model.lm_head.register_forward_hook(lambda mod, args, out: seen.append(args[0][0, -1].double()))
    with torch.no_grad():
        model(**prompt_inputs(processor, judge, frames, question))
    hook.remove()
    return seen[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qwen2.5-vl")
    yes_id, no_id = tiny_qwen(folder)
    return folder, yes_id, no_id


def clips(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(0, 256, (5, 40, 56, 3), generator=g, dtype=torch.uint8) for _ in range(n)]


def judge_at(folder, cache, **cfg):
    return build_judge({"backend": "transformers", "model": str(folder), "frames": 2, "frame_size": 56,
                        "max_tokens": 1, "batch_size": 4, **cfg}, cache_dir=cache)


def independent_log_probs(judge, frames, question):
    """Log-probabilities of the first answer token from one plain forward pass, in float64."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(judge.config.model)
    model = AutoModelForImageTextToText.from_pretrained(judge.config.model).eval()
    with torch.no_grad():
        logits = model(**prompt_inputs(processor, judge, frames, question)).logits[0, -1]
    return logits.double().log_softmax(-1)


def test_answers_and_p_yes_match_an_independent_forward_pass(tiny, tmp_path):
    folder, yes_id, no_id = tiny
    judge = judge_at(folder, tmp_path / "cache")
    videos = clips(3)
    answers = judge.ask_batch([(v, ["Is there a dog?", "Is it night?"]) for v in videos])
    assert answers[0][0].answer is True and answers[1][0].answer is False  # the steered head (tiny_qwen)
    assert all(a.status == "ok" for clip in answers for a in clip)
    seen = set()
    for v, clip in zip(videos, answers):
        for a in clip:
            lp = independent_log_probs(judge, v, a.question)
            says_yes = bool(lp[yes_id] > lp[no_id])
            assert a.answer is says_yes and a.raw == ("Yes" if says_yes else "No")
            # top_logprobs holds the winner and zero-logit tokens; "Yes" is among them only when it wins
            assert a.p_yes == pytest.approx(math.exp(lp[yes_id]) if says_yes else 0.0, rel=1e-4, abs=1e-7)
            seen.add(says_yes)
    assert seen == {True, False}  # the frames decide: both answers occur
    assert judge.usage.calls == 6 and judge.usage.completion_tokens == 6
    assert judge.revision().startswith("sha256:")


def test_batched_answers_equal_one_at_a_time_and_a_rerun_never_loads_the_model(tiny, tmp_path):
    folder, _, _ = tiny
    videos = clips(2)
    items = [(v, ["Is there a dog?", "Is the dog to the left of the car?"]) for v in videos]
    batched = judge_at(folder, tmp_path / "b4", batch_size=4).ask_batch(items)
    single = judge_at(folder, tmp_path / "b1", batch_size=1).ask_batch(items)
    for ca, cb in zip(batched, single):
        for a, b in zip(ca, cb):
            assert a.answer == b.answer
            assert (a.p_yes or 0.0) == pytest.approx(b.p_yes or 0.0, abs=1e-5)
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    again = judge_at(moved, tmp_path / "b4")  # same weights elsewhere: the same revision, the same answers
    assert again.ask_batch(items) == batched
    assert again._loaded is None and again.usage.calls == 0 and again.usage.cached == 4
    with torch.no_grad():  # other weights: another revision, asked again
        st = __import__("safetensors.torch", fromlist=["load_file"])
        weights = st.load_file(moved / "model.safetensors")
        weights["lm_head.weight"] = -weights["lm_head.weight"]
        st.save_file(weights, moved / "model.safetensors", metadata={"format": "pt"})
    flipped = judge_at(moved, tmp_path / "b4")
    answers = flipped.ask_batch(items)
    assert flipped.usage.calls == 4
    assert [a.answer for c in answers for a in c] == [not a.answer for c in batched for a in c]
    assert np.isfinite([a.p_yes or 0.0 for c in answers for a in c]).all()

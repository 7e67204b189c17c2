"""Judge backend `transformers`: a local vision-language model in this process (Qwen2.5-VL class),
batched, on CPU or GPU.

`model` is a folder in the Hugging Face layout (config.json, *.safetensors, the processor's files)
or a hub id already in the local Hugging Face cache; nothing is downloaded by vdmbench. Questions
go through the processor's own chat template, `batch_size` at a time (left-padded), decoded
greedily at temperature 0 (sampled with the configured seed otherwise). The raw logits of each
generated token give the same `top_logprobs` an OpenAI-compatible server returns, so replies are
read and cached exactly as the `openai` backend's are.

The revision in every cache key: the configured `revision`, else the snapshot sha of a hub-cache
path (`.../snapshots/<sha>/`), else the sha256 of the folder's weight, config, tokenizer and
template files (read once per judge; a folder is known by this content, not by its path).
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from vdmbench.core.errors import ConfigError, WeightsError
from vdmbench.judges.base import Judge, JudgeConfig, Reply, _Call
from vdmbench.judges.frames import Shown

_SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{40})(/|$)")
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class TransformersJudge(Judge):
    backend = "transformers"

    def __init__(self, config: JudgeConfig | dict[str, Any], cache_dir: Any = None, **_: Any) -> None:
        super().__init__(config, cache_dir)
        self._loaded: tuple[Any, Any] | None = None  # (model, processor): loaded on the first call
        self._load_lock = threading.Lock()
        self._revision: str | None = None

    def revision(self) -> str | None:
        if self._revision is None:
            self._revision = self.config.revision or _weights_revision(self.config.model)
        return self._revision

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        if Path(self.config.model).is_dir():  # a folder is known by its files' content, not its path
            ident["model"] = "local folder"
        return ident

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._loaded is None:
                import torch

                try:
                    from transformers import AutoModelForImageTextToText, AutoProcessor
                except ImportError as e:
                    raise ConfigError("judge backend 'transformers' needs transformers (>= 4.50), which is not "
                                      f"installed or too old ({e}); install it: pip install 'vdmbench[diffusers]'"
                                      ) from None

                c = self.config
                dtype = getattr(torch, _DTYPES[c.dtype]) if c.dtype != "auto" else "auto"
                try:
                    processor = AutoProcessor.from_pretrained(c.model, revision=c.revision)
                    model = AutoModelForImageTextToText.from_pretrained(c.model, revision=c.revision, dtype=dtype)
                except (OSError, ValueError) as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise WeightsError(f"judge: cannot load the model {c.model!r} ({first}); give a local folder in the "
                                       "Hugging Face layout, or download it first (huggingface-cli download "
                                       f"{c.model})") from None
                model = model.to(c.device or "cpu").eval()  # type: ignore[arg-type]
                processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
                self._loaded = (model, processor)
            return self._loaded

    def _send(self, system: str, user: str, shown: Sequence[Shown], *, deadline_at: float,
              max_tokens: int) -> Reply:
        replies: list[Reply] = []
        self._generate([_Call("", system, user, tuple(shown), max_tokens)], replies.append)
        return replies[0]

    def _send_many(self, calls: Sequence[_Call], arrived: Callable[[_Call, Any], None]) -> None:
        # Batches of calls sharing max_tokens; each batch's replies are stored before the next runs.
        by_tokens: dict[int, list[_Call]] = {}
        for call in calls:
            by_tokens.setdefault(call.max_tokens, []).append(call)
        for group in by_tokens.values():
            for start in range(0, len(group), self.config.batch_size):
                batch = group[start:start + self.config.batch_size]
                out: list[Reply] = []
                self._generate(batch, out.append)
                for call, reply in zip(batch, out):
                    arrived(call, reply)

    def _generate(self, calls: Sequence[_Call], emit: Callable[[Reply], None]) -> None:
        import torch
        from PIL import Image

        model, processor = self._load()
        c = self.config
        texts, images = [], []
        for call in calls:
            pictures = [Image.fromarray(p) for s in call.shown for p in s.pixels]
            parts: list[dict[str, Any]] = [{"type": "image"} for _ in pictures]
            parts.append({"type": "text", "text": call.user})
            messages = ([{"role": "system", "content": [{"type": "text", "text": call.system}]}] if call.system else [])
            messages.append({"role": "user", "content": parts})
            texts.append(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
            images.append(pictures)
        has_images = any(images)
        inputs = processor(text=texts, images=images if has_images else None, return_tensors="pt", padding=True)
        inputs = inputs.to(model.device)
        sample = c.temperature > 0
        options: dict[str, Any] = {"max_new_tokens": calls[0].max_tokens, "do_sample": sample,
                                   "output_logits": True, "return_dict_in_generate": True,
                                   "pad_token_id": processor.tokenizer.pad_token_id}
        if sample:
            options["temperature"] = c.temperature
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed or 0)  # only sampling reads it; forked, so the caller's RNG is untouched
            out = model.generate(**inputs, **options)
        prompt_len = inputs["input_ids"].shape[1]
        new = out.sequences[:, prompt_len:]
        logprobs = torch.stack(out.logits, dim=1).float().log_softmax(dim=-1)  # [B, steps, vocab]
        tok = processor.tokenizer
        for row in range(len(calls)):
            ids = new[row].tolist()
            stop = next((k for k, t in enumerate(ids) if t in (tok.eos_token_id, tok.pad_token_id)), len(ids))
            tokens: list[dict[str, Any]] = []
            for step in range(stop) if c.logprobs != "off" else ():
                top = logprobs[row, step].topk(c.top_logprobs)
                tokens.append({
                    "token": tok.decode([ids[step]]), "logprob": float(logprobs[row, step, ids[step]]),
                    "top_logprobs": [{"token": tok.decode([int(i)]), "logprob": float(v)}
                                     for v, i in zip(top.values, top.indices)],
                })
            text = tok.decode(ids[:stop], skip_special_tokens=True)
            emit(Reply(text=text, choice={"logprobs": {"content": tokens} if tokens else None},
                       prompt_tokens=int(inputs["attention_mask"][row].sum()), completion_tokens=stop,
                       model=c.model))


def _weights_revision(model: str) -> str | None:
    m = _SNAPSHOT.search(str(Path(model).resolve()) if Path(model).exists() else "")
    if m:
        return m.group(1)
    folder = Path(model)
    if not folder.is_dir():
        try:  # a hub id: the snapshot in the local Hugging Face cache names its commit
            from huggingface_hub import snapshot_download

            m = _SNAPSHOT.search(snapshot_download(model, local_files_only=True))
        except Exception:  # not cached (from_pretrained says so when it loads), or no hub client
            return None
        return m.group(1) if m else None
    h = hashlib.sha256()  # weights, configs, tokenizer, processor and chat template: all that decides answers
    files = [f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix in (".safetensors", ".bin", ".json",
                                                                                  ".jinja", ".txt", ".model")]
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"

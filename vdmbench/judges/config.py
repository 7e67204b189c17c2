"""What a judge is configured with: the `judge:` mapping a suite writes as a metric option.

    judge: {backend: openai, base_url: http://localhost:8000/v1, model: Qwen/Qwen2.5-VL-7B-Instruct,
            api_key_env: VLLM_API_KEY, frames: 8, frame_size: 448}

The key itself never appears here: only the name of the variable that holds it. Every field that
changes what the judge is shown or how it decodes is part of each call's cache key
(`JudgeConfig.identity`); operational knobs (concurrency, rates, retries, deadlines, prices) are not,
so changing them never asks (pays for) a question again.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from vdmbench.config.schema import Problem, Schema, expected

BACKENDS = ("openai", "transformers")


class JudgeConfig(Schema):
    what: ClassVar[str] = "a judge"
    none_means_default: ClassVar[frozenset[str]] = frozenset(
        {"base_url", "api_key_env", "revision", "seed", "rate_limit", "cost_per_1k_input", "cost_per_1k_output",
         "cache_dir", "device"})

    backend: Literal["openai", "transformers"] = expected("openai or transformers", default="openai")
    model: str = expected("a model name as the server knows it (e.g. Qwen/Qwen2.5-VL-7B-Instruct)", min_length=1)
    base_url: str | None = expected("an http(s) URL ending in /v1 (openai backend)", default=None)
    api_key_env: str | None = expected("the NAME of the variable holding the key (never the key)", default=None,
                                       pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    revision: str | None = expected("the model's revision or sha, where known (part of the cache key)", default=None)
    # What the judge is shown.
    frames: int = expected("an integer >= 1 (frames sent per clip, uniformly spaced)", default=8, ge=1, le=64)
    frame_size: int = expected("an integer >= 16 (longest side in pixels; smaller frames are not enlarged)",
                               default=448, ge=16, le=4096)
    image_format: Literal["png", "jpeg"] = expected("png or jpeg", default="png")
    jpeg_quality: int = expected("an integer in 1..100", default=90, ge=1, le=100)
    # How it decodes.
    temperature: float = expected("a number >= 0", default=0.0, ge=0.0)
    seed: int | None = expected("an integer (sent where the server takes one) or null", default=0)
    max_tokens: int = expected("an integer >= 1 (tokens of an answer)", default=8, ge=1)
    logprobs: Literal["auto", "on", "off"] = expected(
        "auto (ask for them, go on without where the server refuses), on or off", default="auto")
    top_logprobs: int = expected("an integer in 1..20", default=5, ge=1, le=20)
    # Operational: not in the cache key.
    concurrency: int = expected("an integer >= 1 (calls in flight at once)", default=4, ge=1)
    rate_limit: float | None = expected("a number > 0 of calls per second, or null", default=None, gt=0)
    max_retries: int = expected("an integer >= 0 (retries on 429, 5xx and transport errors)", default=5, ge=0)
    backoff: float = expected("a number of seconds >= 0, doubled per retry", default=1.0, ge=0)
    max_backoff: float = expected("a number of seconds >= 0", default=30.0, ge=0)
    timeout: float = expected("a number of seconds > 0 per HTTP attempt", default=60.0, gt=0)
    deadline: float = expected("a number of seconds > 0 per call, retries included", default=300.0, gt=0)
    cost_per_1k_input: float | None = expected("a price per 1000 prompt tokens, or null", default=None, ge=0)
    cost_per_1k_output: float | None = expected("a price per 1000 completion tokens, or null", default=None, ge=0)
    cache_dir: str | None = expected("a folder (default: the run's cache folder /judge)", default=None)
    device: str | None = expected("a torch device (transformers backend; default: the run's)", default=None)
    batch_size: int = expected("an integer >= 1 (questions per forward pass, transformers backend)", default=8, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = expected(
        "auto (the checkpoint's), float32, bfloat16 or float16 (transformers backend)", default="auto")

    @model_validator(mode="after")
    def _consistent(self) -> JudgeConfig:
        if self.backend == "openai" and not self.base_url:
            raise Problem("the openai backend needs base_url (e.g. http://localhost:8000/v1)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise Problem(f"base_url must be an http(s) URL, got {self.base_url!r}")
        return self

    @classmethod
    def parse(cls, data: Any, source: str = "judge") -> JudgeConfig:
        if isinstance(data, JudgeConfig):
            return data
        return cls.check(dict(data) if isinstance(data, dict) else data, source)

    def identity(self) -> dict[str, Any]:
        """What makes an answer what it is: model, what the judge sees, how it decodes."""
        return {
            "backend": self.backend, "model": self.model, "revision": self.revision,
            "frames": self.frames, "frame_size": self.frame_size, "image_format": self.image_format,
            "jpeg_quality": self.jpeg_quality if self.image_format == "jpeg" else None,
            "temperature": self.temperature, "seed": self.seed, "max_tokens": self.max_tokens,
            "logprobs": self.logprobs != "off", "top_logprobs": self.top_logprobs if self.logprobs != "off" else None,
            # Numerics of an in-process model (its weights' hash is the revision, see local.py).
            **({"dtype": self.dtype} if self.backend == "transformers" else {}),
        }

    def public(self) -> dict[str, Any]:
        """The configuration as it may be stored and shown (holds the variable's name, never a key)."""
        return self.model_dump(exclude_none=True)

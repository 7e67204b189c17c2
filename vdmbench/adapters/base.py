"""The adapter contract: a backend turns GenerationRequests into Videos.

An adapter is one class in `vdmbench/adapters/<type>.py` exposing `ADAPTER = TheClass`, plus a
YAML in the top-level `adapters/` folder that names the type and its parameters. The class is
constructed as `TheClass(name=..., **params)`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from vdmbench.config.suite import TASKS
from vdmbench.core.provenance import redact_config
from vdmbench.core.video import Video

__all__ = ["TASKS", "Adapter", "Capabilities", "GenerationRequest", "cache_key", "config_hash"]



@dataclass(frozen=True)
class GenerationRequest:
    """Everything needed to produce one clip. Same request + same seed -> same video."""

    prompt: str
    seed: int
    num_frames: int
    height: int
    width: int
    fps: float
    task: str = "t2v"
    steps: int | None = None
    guidance: float | None = None
    # Conditioning for non-t2v tasks: uint8 [K, H, W, 3] frames and their positions in the clip
    # (prediction: first k; interpolation: first and last; i2v: frame 0; editing: the whole source).
    cond_frames: torch.Tensor | None = None
    cond_indices: tuple[int, ...] = ()
    strength: float | None = None  # editing: fraction of the diffusion trajectory to re-noise
    extra: dict[str, Any] = field(default_factory=dict)

    def cache_fields(self) -> dict[str, Any]:
        """JSON-safe description used for the content-addressed cache key."""
        d = asdict(self)
        cond = d.pop("cond_frames")
        d["cond_sha256"] = (
            hashlib.sha256(cond.contiguous().numpy().tobytes()).hexdigest() if cond is not None else None
        )
        d["cond_indices"] = list(self.cond_indices)
        return d


@dataclass(frozen=True)
class Capabilities:
    tasks: tuple[str, ...] = ("t2v",)
    max_frames: int | None = None
    max_height: int | None = None
    max_width: int | None = None
    batch_size: int = 1
    deterministic: bool = True  # same seed gives the same video on the same machine
    paid: bool = False  # every request costs money (hosted APIs)


@runtime_checkable
class Adapter(Protocol):
    name: str
    capabilities: Capabilities

    def generate(self, requests: list[GenerationRequest]) -> list[Video | Exception]:
        """One Video per request, in order; a failed request yields an AdapterError in its slot."""
        ...


def check_request(caps: Capabilities, req: GenerationRequest, adapter_name: str) -> None:
    """Raise AdapterError if the adapter cannot serve this request at all."""
    from vdmbench.core.errors import AdapterError

    if req.task not in caps.tasks:
        raise AdapterError(
            f"adapter {adapter_name!r} cannot do task {req.task!r} (it supports {', '.join(caps.tasks)})"
        )
    for what, value, limit in (
        ("frames", req.num_frames, caps.max_frames),
        ("height", req.height, caps.max_height),
        ("width", req.width, caps.max_width),
    ):
        if limit is not None and value > limit:
            raise AdapterError(f"adapter {adapter_name!r}: {what}={value} exceeds its maximum {limit}")


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (backends often attach long tracebacks)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def as_adapter_error(e: Exception) -> Exception:
    """Any backend exception as the AdapterError that fills a failed request's slot."""
    from vdmbench.core.errors import AdapterError

    if isinstance(e, AdapterError):
        return e
    err = AdapterError(f"{type(e).__name__}: {first_line(e)}")
    err.__cause__ = e
    return err


CACHE_FORMAT = 1  # bump when the meaning of a cached file changes
_HASHED_ADAPTER_KEYS = ("adapter", "params")  # name/description do not change the pixels


def adapter_cache_config(adapter_config: dict[str, Any]) -> dict[str, Any]:
    """The part of a model config that can change the pixels. Secrets never enter a hash or the
    database; they cannot change the pixels anyway."""
    return redact_config({k: adapter_config.get(k) for k in _HASHED_ADAPTER_KEYS})


def cache_key(adapter_config: dict[str, Any], request: GenerationRequest) -> str:
    """The content address of one clip: a hash of (model config, request). A clip stored under
    its key is never generated twice; the http adapter keys its job journal by it too."""
    return config_hash(
        {"format": CACHE_FORMAT, "adapter": adapter_cache_config(adapter_config), "request": request.cache_fields()}
    )

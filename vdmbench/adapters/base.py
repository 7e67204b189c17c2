"""The adapter contract: a backend turns GenerationRequests into Videos.

An adapter is one class in `vdmbench/adapters/<type>.py` exposing `ADAPTER = TheClass` (or any
class named in a YAML as "package.module:Class", or one added through the `vdmbench.adapters`
entry points), plus a YAML in the top-level `adapters/` folder naming the type and its `params`.
The class is constructed as `TheClass(name=..., **params)`, with `context=` where it accepts one.

`Adapter` is the protocol the runner relies on: any duck-typed class with `name`, `capabilities`
and `generate` works. `BaseAdapter` implements `generate` once for the built-in adapters: each
request is checked against the capabilities, served by `generate_one` (or the batched hook
`generate_batch`), and any exception (SystemExit included: a backend calling sys.exit() ends its
request, not the run) becomes an AdapterError naming the adapter in that request's slot, so one
request's failure never takes the others with it. What a backend returns is bounded by the request
before it is copied and flagged when its shape differs (vdmbench/adapters/outputs.py). `AdapterParams` is the schema of
a YAML `params` mapping, for adapters with many options.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import torch

from vdmbench.adapters.outputs import bounded_video, to_video
from vdmbench.config.schema import Schema
from vdmbench.config.suite import TASKS
from vdmbench.core.errors import AdapterError, VdmbenchError
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.core.provenance import redact_config
from vdmbench.core.video import Video

__all__ = [
    "TASKS",
    "Adapter",
    "AdapterContext",
    "AdapterParams",
    "BaseAdapter",
    "Capabilities",
    "GenerationRequest",
    "cache_key",
    "check_request",
    "config_hash",
]


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
        # A shallow copy, not dataclasses.asdict: that deep-copies the conditioning tensor and
        # recurses into every value (13 s for 20,000 requests); the JSON of the key is the same.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
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


def backend_exit_text(e: BaseException) -> str:
    """What a failed request says when its backend raised SystemExit (sys.exit(), exit()) or a
    KeyboardInterrupt from its own thread: the process is not ended for it, only its requests."""
    if isinstance(e, SystemExit):
        return (f"the backend called sys.exit({e.code!r}) (SystemExit); vdmbench ended only this "
                "request, not the run")
    return "the backend raised KeyboardInterrupt from its generation thread; vdmbench ended only this request"


# --- the run context -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AdapterContext:
    """What a run lends its adapter: the device and where the adapter may keep files.

    The default is what an adapter built without a run gets: device auto, files under ./results.
    Locations left unset follow `results_dir`."""

    device: str = "auto"  # the run's device; an adapter's own `device: auto` resolves to it
    results_dir: Path = DEFAULT_RESULTS_DIR
    cache_dir: Path | None = None  # the adapter's own caches; default results_dir/cache/adapters
    journal_dir: Path | None = None  # hosted-API job journals; default results_dir/http-jobs

    def __post_init__(self) -> None:
        root = Path(self.results_dir)
        object.__setattr__(self, "results_dir", root)
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", root / "cache" / "adapters")
        if self.journal_dir is None:
            object.__setattr__(self, "journal_dir", root / "http-jobs")


# --- typed params ------------------------------------------------------------------------------

P = TypeVar("P", bound="AdapterParams")


class AdapterParams(Schema):
    """Base of an adapter's params: a schema (vdmbench.config.schema) whose fields are the YAML
    `params` keys, so a bad key or value is a one-line error naming it and what is expected."""

    what: ClassVar[str] = "params"

    @classmethod
    def parse(cls: type[P], data: Mapping[str, Any], where: str) -> P:
        """The validated params; `where` starts every error ("model 'cogvideox-2b'")."""
        return cls.check(dict(data), where)


# --- the base class ----------------------------------------------------------------------------

class BaseAdapter:
    """`generate` implemented once: capability checks, per-request error wrapping, batching.

    Subclasses set `capabilities` and implement `generate_one(request)` (anything `to_video`
    accepts: a Video, frames [T, H, W, 3] as uint8 or floats in [0, 1]), or `generate_batch`
    where the backend serves several requests in one call. `check(request)` may add checks that
    run before any generation."""

    name: str
    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, *, context: AdapterContext | None = None) -> None:
        self.name = name
        self.context = context or AdapterContext()

    def bind(self, context: AdapterContext) -> BaseAdapter:
        """Use a run's context (results, caches, journals) from now on. The device is read where
        the adapter loads its model, so pass the context to the constructor when it matters."""
        self.context = context
        return self

    # -- hooks ------------------------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        """Raise if this adapter cannot serve the request; runs before anything is generated."""
        check_request(self.capabilities, request, self.name)

    def generate_one(self, request: GenerationRequest) -> Any:
        raise NotImplementedError(f"{type(self).__name__} implements neither generate_one nor generate_batch")

    def generate_batch(self, requests: list[GenerationRequest]) -> Sequence[Any]:
        """One output (or exception) per request, in order. An exception raised from here fails
        every request of the batch."""
        out: list[Any] = []
        for r in requests:
            try:
                out.append(self.generate_one(r))
            except (Exception, SystemExit) as e:  # one request's failure stays in its slot
                out.append(e)
        return out

    # -- the contract -----------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest]) -> list[Video | Exception]:
        results: list[Video | Exception | None] = [None] * len(requests)
        todo: list[int] = []
        for i, r in enumerate(requests):
            try:
                self.check(r)
            except (Exception, SystemExit) as e:
                results[i] = self.error(e)
            else:
                todo.append(i)
        if todo:
            for i, out in zip(todo, self._serve([requests[i] for i in todo])):
                results[i] = out
        return [r if r is not None else self.error(AdapterError("no output")) for r in results]

    def _serve(self, batch: list[GenerationRequest]) -> list[Video | Exception]:
        try:
            outs = list(self.generate_batch(batch))
        except (Exception, SystemExit) as e:  # sys.exit() in a backend ends its requests, not the run
            return [self.error(e)] * len(batch)
        if len(outs) != len(batch):
            err = self.error(AdapterError(f"returned {len(outs)} videos for {len(batch)} requests"))
            return [err] * len(batch)
        return [self._video(o, r) for o, r in zip(outs, batch)]

    def _video(self, out: Any, req: GenerationRequest) -> Video | Exception:
        if isinstance(out, BaseException):
            return self.error(out)
        try:
            if isinstance(out, Video):
                return bounded_video(out, req)
            return to_video(out, req.fps, req)  # bounded before anything is copied
        except Exception as e:
            return self.error(e)

    def error(self, e: BaseException) -> AdapterError:
        """Any exception as the one-line AdapterError, naming this adapter, that fills a failed
        request's slot. vdmbench's own errors keep their message (written for users); others
        are shown as `Type: first line`; a SystemExit says the backend tried to end the process."""
        if isinstance(e, (SystemExit, KeyboardInterrupt)):
            text = backend_exit_text(e)
        else:
            text = str(e).strip() if isinstance(e, VdmbenchError) else f"{type(e).__name__}: {first_line(e)}"
        if not (text.startswith(f"{self.name}: ") or f"adapter {self.name!r}" in text):
            text = f"{self.name}: {text}"
        if isinstance(e, AdapterError) and str(e) == text:
            return e
        err = AdapterError(text)
        err.__cause__ = e
        return err


CACHE_FORMAT = 1  # bump when the meaning of a cached file changes
_HASHED_ADAPTER_KEYS = ("adapter", "params")  # name/description do not change the pixels


def model_cache_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """The part of a model config that can change the pixels. Secrets never enter a hash or the
    database; they cannot change the pixels anyway."""
    return redact_config({k: model_config.get(k) for k in _HASHED_ADAPTER_KEYS})


def cache_key(model_config: dict[str, Any], request: GenerationRequest) -> str:
    """The content address of one clip: a hash of (model config, request). A clip stored under
    its key is never generated twice; the http adapter keys its job journal by it too."""
    return request_cache_key(model_cache_config(model_config), request)


def request_cache_key(cache_config: dict[str, Any], request: GenerationRequest) -> str:
    """cache_key with `model_cache_config(model_config)` computed once by the caller (a plan of
    many requests: redacting the config per request cost seconds for 20,000 samples)."""
    return config_hash({"format": CACHE_FORMAT, "adapter": cache_config, "request": request.cache_fields()})

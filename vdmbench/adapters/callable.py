"""Any Python callable as a model: `target: "package.module:function"` (or a class).

The function receives one GenerationRequest and returns a Video, or frames [T,H,W,3] as uint8 or
floats in [0, 1]. With `batched: true` it receives the list of requests and returns a list.
A class target is instantiated once with `init_kwargs` and then called like a function.

    # adapters/my-model.yaml
    name: my-model
    adapter: callable
    params: {target: "my_package.gen:generate", batched: false}
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from vdmbench.adapters.base import (
    TASKS,
    Capabilities,
    GenerationRequest,
    as_adapter_error,
    check_request,
)
from vdmbench.adapters.outputs import to_video
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.video import Video


def import_target(target: str) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"target must look like 'package.module:function', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {module_name!r} for target {target!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r} (target {target!r})") from e
    return obj


class CallableAdapter:
    def __init__(
        self,
        name: str,
        target: str | Callable[..., Any],
        batched: bool = False,
        batch_size: int = 1,
        tasks: list[str] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        fn = import_target(target) if isinstance(target, str) else target
        if inspect.isclass(fn):
            fn = fn(**(init_kwargs or {}))
        if not callable(fn):
            raise ConfigError(f"model {name!r}: target {target!r} is not callable")
        bad = set(tasks or []) - set(TASKS)
        if bad:
            raise ConfigError(f"model {name!r}: unknown tasks {sorted(bad)}; known: {list(TASKS)}")
        self.fn = fn
        self.batched = batched
        self.capabilities = Capabilities(tasks=tuple(tasks or ("t2v",)), batch_size=batch_size if batched else 1)

    def generate(self, requests: list[GenerationRequest]) -> list[Video | Exception]:
        if self.batched:
            try:
                for r in requests:
                    check_request(self.capabilities, r, self.name)
                outs = list(self.fn(requests))
            except Exception as e:
                return [as_adapter_error(e)] * len(requests)
            if len(outs) != len(requests):
                err = AdapterError(f"{self.name}: returned {len(outs)} videos for {len(requests)} requests")
                return [err] * len(requests)
            return [_convert(o, r) for o, r in zip(outs, requests)]
        results: list[Video | Exception] = []
        for r in requests:
            try:
                check_request(self.capabilities, r, self.name)
                results.append(_convert(self.fn(r), r))
            except Exception as e:
                results.append(as_adapter_error(e))
        return results


def _convert(out: Any, req: GenerationRequest) -> Video | Exception:
    try:
        return to_video(out, req.fps)
    except Exception as e:
        return as_adapter_error(e)


ADAPTER = CallableAdapter

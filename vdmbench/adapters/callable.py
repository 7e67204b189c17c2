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

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from vdmbench.adapters.base import (
    TASKS,
    AdapterContext,
    BaseAdapter,
    Capabilities,
    GenerationRequest,
)
from vdmbench.core.errors import ConfigError
from vdmbench.core.registry import import_target as _import


def import_target(target: str) -> Any:
    """The object a `"package.module:function"` target names."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"target must look like 'package.module:function', got {target!r}")
    return _import(target, f"target {target!r}")


class CallableAdapter(BaseAdapter):
    def __init__(
        self,
        name: str,
        target: str | Callable[..., Any],
        batched: bool = False,
        batch_size: int = 1,
        tasks: list[str] | None = None,
        init_kwargs: dict[str, Any] | None = None,
        *,
        context: AdapterContext | None = None,
    ) -> None:
        super().__init__(name, context=context)
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

    def generate_one(self, request: GenerationRequest) -> Any:
        return self.fn(request)

    def generate_batch(self, requests: list[GenerationRequest]) -> Sequence[Any]:
        if self.batched:
            return list(self.fn(requests))
        return super().generate_batch(requests)


ADAPTER = CallableAdapter

"""Import `torchmetrics.Metric` without torchmetrics' whole package (7 s of start-up to ~0.3 s).

`torchmetrics/__init__.py` imports every domain it has: its image metrics import torchvision
(which imports torch._dynamo, ~2 s), its text metrics import transformers (~1.4 s), and it patches
scipy.signal (~1.2 s): 7-7.4 s on this machine before any vdmbench metric exists, paid by every
`vdmbench score` and `vdmbench run`. The metric contract needs one class, `torchmetrics.metric.Metric`,
whose module imports only torchmetrics.utilities.

Python runs a package's `__init__` before any of its submodules. `import_metric_class()` therefore
registers `torchmetrics` as a *deferred* package first: a module with the real package's `__spec__`
and `__path__` (so `torchmetrics.metric`, `torchmetrics.utilities...` import as usual, from the
same files) whose `__init__` runs the first time anything asks it for a name it does not have yet
(`torchmetrics.MeanMetric`, `from torchmetrics import Metric`, `torchmetrics.__version__`). Then
the real `__init__` runs in that same module object, completely, and everything it defines is
there from then on: code that uses torchmetrics' package namespace sees no difference, it only
pays the import when it first does. `from torchmetrics.functional... import x` imports that
subpackage (and its own `__init__`) as it always would.

Nothing happens when torchmetrics is already imported (its package is then simply used), and
`import_metric_class(defer=False)` is the plain import.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_PACKAGE = "torchmetrics"


class DeferredPackage(ModuleType):
    """A package whose `__init__` runs on the first lookup of a name it lacks (see the module doc)."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__file__ = spec.origin
        self.__path__ = list(spec.submodule_search_locations or [])
        self.__package__ = spec.name
        self.__loader__ = spec.loader
        self.__dict__["_deferred_lock"] = threading.RLock()
        self.__dict__["_deferred_state"] = "waiting"  # -> "running" -> "done"
        # The one name torchmetrics' submodules import from the package itself
        # (utilities/prints.py: `from torchmetrics import _logger`), set up as its __init__ does;
        # the handler is taken off again before the real __init__ adds its own.
        handler = logging.StreamHandler()
        self._logger = logging.getLogger(spec.name)
        self._logger.addHandler(handler)
        self._logger.setLevel(logging.INFO)
        self.__dict__["_deferred_handler"] = handler
        self.__dict__["_deferred_loader"] = spec.loader

    def __getattr__(self, name: str) -> Any:  # only called for names the module does not hold
        if name.startswith("_deferred_"):
            raise AttributeError(name)
        with self.__dict__["_deferred_lock"]:
            if self.__dict__["_deferred_state"] == "waiting":
                self.__dict__["_deferred_state"] = "running"
                self._logger.removeHandler(self.__dict__["_deferred_handler"])
                try:
                    self.__dict__["_deferred_loader"].exec_module(self)  # the real __init__, in this module
                finally:
                    self.__dict__["_deferred_state"] = "done"
        try:
            return self.__dict__[name]
        except KeyError:
            # While the __init__ runs, its `from torchmetrics import functional` asks for a
            # submodule not imported yet: AttributeError makes Python import it, as usual.
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None

    @property
    def loaded(self) -> bool:
        """Whether the real `__init__` has run (or is running)."""
        return self.__dict__["_deferred_state"] != "waiting"


def defer_package_init() -> bool:
    """Register torchmetrics as a DeferredPackage unless it is imported already (or absent).
    Returns whether the registered package is deferred."""
    if _PACKAGE in sys.modules:
        return isinstance(sys.modules[_PACKAGE], DeferredPackage)
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False  # not installed: the plain import below reports that
    sys.modules[_PACKAGE] = DeferredPackage(spec)
    return True


def import_metric_class(defer: bool = True) -> type:
    """`torchmetrics.metric.Metric`, the metric contract's base class."""
    if defer:
        defer_package_init()
    # In the package's own order: torchmetrics.utilities imports torchmetrics.metric halfway
    # through (utilities.checks), which needs utilities' submodules; the other way round is a cycle.
    importlib.import_module(f"{_PACKAGE}.utilities")
    return importlib.import_module(f"{_PACKAGE}.metric").Metric

"""One registry for the pluggable parts: adapters, metrics and gate policies.

An entry maps a name to a lazy target, `"package.module:object"`, imported only when the name is
used, so one plugin with a missing dependency never breaks the others. Entries come from

- the built-in table of the layer that owns the registry (vdmbench.adapters, vdmbench.metrics, ...);
- Python entry points of the registry's group, so an installed package adds a metric or an
  adapter without touching vdmbench:

      # the plugin's pyproject.toml
      [project.entry-points."vdmbench.metrics"]
      mean_brightness = "my_plugin.brightness:MeanBrightness"

- `Registry.register(name, target)`, for code that builds its own parts in-process.

A target without an attribute (`"package.module"`) is a *provider*: for registries with a
`collection` (metrics: `METRICS = [...]`) its objects are found when the module is imported;
for registries with a `module_attr` (adapters: `ADAPTER`) that attribute is the object.

Errors are one-line ConfigErrors: an unknown name lists the known ones; a target whose module
needs a package that is not installed says which one to install.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vdmbench.core.errors import ConfigError

__all__ = ["Entry", "Registry", "import_target", "install_hint"]

log = logging.getLogger(__name__)

# Import names whose distribution is not named like them, or comes with one of vdmbench's extras.
_INSTALL = {
    "httpx": "'vdmbench[api]'",
    "diffusers": "'vdmbench[diffusers]'",
    "transformers": "'vdmbench[diffusers]'",
    "accelerate": "'vdmbench[diffusers]'",
    "streamlit": "'vdmbench[dashboard]'",
    "altair": "'vdmbench[dashboard]'",
    "submitit": "'vdmbench[cluster]'",
    "open_clip": "open-clip-torch",
    "cv2": "opencv-python-headless",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
}


def install_hint(missing: str) -> str:
    """What to `pip install` for a missing top-level module."""
    top = missing.partition(".")[0]
    return _INSTALL.get(top, top)


def import_target(target: str, what: str) -> Any:
    """Import `"package.module:attr.sub"` (or a bare module). `what` starts every error message."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise ConfigError(f"{what}: {target!r} is not of the form 'package.module:object'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ConfigError(f"{what}: cannot import {module_name!r} (no module named {missing!r}); "
                              "check the spelling, or install the package that provides it") from e
        raise ConfigError(f"{what} needs the package {missing!r}, which is not installed; "
                          f"install it: pip install {install_hint(missing)}") from e
    except ImportError as e:
        lines = str(e).strip().splitlines()
        raise ConfigError(f"{what}: cannot import {module_name!r} ({lines[0] if lines else type(e).__name__})") from e
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise ConfigError(f"{what}: module {module_name!r} has no attribute {attr!r}") from e
    return obj


@dataclass(frozen=True)
class Entry:
    """One name: where its object comes from, not yet imported."""

    name: str
    target: Any  # "package.module:object", "package.module" (a provider), or the object itself
    origin: str = "built-in"  # shown in errors and listings: built-in | entry point of <dist> | registered


@dataclass
class _Table:
    named: dict[str, Entry]
    providers: list[Entry]
    conflicts: dict[str, list[Entry]]


class Registry:
    """Names -> objects, resolved lazily (see the module docstring)."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtin: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        *,
        providers: Callable[[], Iterable[str]] | None = None,
        collection: str | None = None,
        module_attr: str | None = None,
        fallback: Callable[[str], str | None] | None = None,
        hint: str = "",
        check: Callable[[str, Any], None] | None = None,
    ) -> None:
        """kind: what the names are, in messages ("metric"); group: the entry-point group.
        builtin: name -> target (or a function giving them, for tables read from disk).
        providers: built-in provider modules (their names are learned on import); collection:
        the list a provider exposes; module_attr: what a bare-module target stands for.
        fallback: a target for a name no entry has (e.g. a module named like it).
        hint: appended to the unknown-name error; check(name, obj): validates a loaded object."""
        self.kind, self.group = kind, group
        self._builtin = builtin
        self._providers = providers
        self.collection, self.module_attr = collection, module_attr
        self._fallback, self.hint, self._check = fallback, hint, check
        self._registered: dict[str, Any] = {}
        self._loaded: dict[tuple[str, Any], Any] = {}  # (name, target) -> object
        self._provided: dict[str, dict[str, Any]] = {}  # provider module -> {name: object}

    # -- entries (nothing imported) ----------------------------------------------------------------
    def register(self, name: str, target: Any) -> None:
        """Add (or replace) an entry in this process: a "module:object" string or the object."""
        self._registered[name] = target

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def _entry_points(self) -> list[Any]:
        # Read on every lookup (no cache): cheap, and a package installed meanwhile is seen.
        try:
            return list(importlib.metadata.entry_points(group=self.group))
        except Exception as e:  # a broken distribution's metadata must not stop vdmbench
            log.warning("cannot read the %s entry points: %s", self.group, e)
            return []

    def _table(self) -> _Table:
        builtin = self._builtin() if callable(self._builtin) else (self._builtin or {})
        providers = [Entry("", m) for m in (self._providers() if self._providers else ())]
        candidates = [Entry(n, t) for n, t in builtin.items()]
        for ep in self._entry_points():
            dist = getattr(getattr(ep, "dist", None), "name", None)
            entry = Entry(ep.name, ep.value, f"entry point of {dist}" if dist else "entry point")
            if ":" not in ep.value and self.collection:
                providers.append(entry)
            else:
                candidates.append(entry)
        named: dict[str, Entry] = {}
        conflicts: dict[str, list[Entry]] = {}
        for e in candidates:
            if e.name in named and named[e.name].target != e.target:
                conflicts.setdefault(e.name, [named[e.name]]).append(e)
            named[e.name] = e
        # Registered in-process entries replace anything else on purpose.
        named.update({n: Entry(n, t, "registered") for n, t in self._registered.items()})
        for n in self._registered:
            conflicts.pop(n, None)
        return _Table(named, providers, conflicts)

    # -- lookup ------------------------------------------------------------------------------------
    def _what(self, entry: Entry) -> str:
        what = f"{self.kind} {entry.name!r}" if entry.name else f"{self.kind} module {entry.target!r}"
        return what if entry.origin == "built-in" else f"{what} ({entry.origin})"

    def _load(self, entry: Entry) -> Any:
        target = entry.target
        if self.module_attr and isinstance(target, str) and ":" not in target:
            target = f"{target}:{self.module_attr}"
        key = (entry.name, target if isinstance(target, str) else id(target))
        if key not in self._loaded:
            obj = import_target(target, self._what(entry)) if isinstance(target, str) else target
            if self._check:
                self._check(entry.name, obj)
            self._loaded[key] = obj
        return self._loaded[key]

    def _provide(self, entry: Entry) -> dict[str, Any]:
        module_name = str(entry.target)
        if module_name not in self._provided:
            module = import_target(module_name, self._what(entry))
            found = {}
            for obj in getattr(module, self.collection or "", None) or ():
                name = getattr(obj, "name", None)
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"{self._what(entry)}: every object in {self.collection} needs a string 'name'")
                found[name] = obj
            self._provided[module_name] = found
        return self._provided[module_name]

    def get(self, name: str) -> Any:
        """The object for `name`; a one-line ConfigError when unknown or when it cannot load."""
        return self._get(name, self._table())

    def _get(self, name: str, table: _Table) -> Any:
        if name in table.conflicts:
            where = " and ".join(f"{e.target!r} ({e.origin})" for e in table.conflicts[name])
            raise ConfigError(f"{self.kind} {name!r} is defined twice: by {where}; uninstall one of them")
        if name in table.named:
            return self._load(table.named[name])
        broken: list[ConfigError] = []
        for p in table.providers:
            try:
                found = self._provide(p)
            except ConfigError as e:  # another plugin's problem, unless the name is nowhere else
                broken.append(e)
                continue
            if name in found:
                if self._check:
                    self._check(name, found[name])
                return found[name]
        target = self._fallback(name) if self._fallback else None
        if target is not None:
            return self._load(Entry(name, target))
        if broken:  # the name may be in the provider that could not be imported
            raise broken[0]
        raise self.unknown(name)

    def unknown(self, name: str) -> ConfigError:
        known = self.names(strict=False)
        close = difflib.get_close_matches(name, known, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return ConfigError(f"unknown {self.kind} {name!r}{guess}; known: {', '.join(known) or 'none'}{self.hint}")

    def names(self, *, load_providers: bool = True, strict: bool = True) -> list[str]:
        """Every known name, sorted. Provider modules are imported to learn theirs
        (load_providers=False skips them); strict=False skips providers that cannot load."""
        table = self._table()
        out = set(table.named)
        for p in table.providers if load_providers else ():
            try:
                out |= set(self._provide(p))
            except ConfigError as e:
                if strict:
                    raise
                log.warning("%s", e)
        return sorted(out)

    def items(self, names: Iterable[str] | None = None, *, strict: bool = True) -> Iterator[tuple[str, Any]]:
        """(name, object) for `names` (default: every name), importing each only when reached.
        strict=False skips, with a logged warning, the entries that cannot load."""
        table = self._table()
        for name in self.names(strict=strict) if names is None else names:
            try:
                obj = self._get(name, table)
            except ConfigError as e:
                if strict:
                    raise
                log.warning("%s", e)
                continue
            yield name, obj

    def load_all(self, *, strict: bool = True) -> dict[str, Any]:
        """Every object by name (imports everything: for listings)."""
        return dict(self.items(strict=strict))

    def entries(self) -> dict[str, Entry]:
        """The named entries, nothing imported (the names inside provider modules are not included)."""
        return self._table().named

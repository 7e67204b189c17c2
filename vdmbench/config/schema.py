"""How a user's file is read and checked: YAML with one-line syntax errors, then a pydantic model
whose validation errors become one-line ConfigErrors that name the file, the key and what is
expected:

    suites/mine.yaml: key 'fps' must be a finite number > 0, got nan
    suites/mine.yaml: prompts[3]: 'text' must be a non-empty string, got ''
    suites/mine.yaml: unknown keys ['bogus']; allowed: [...]
    suites/mine.yaml: missing key 'height' (an integer >= 1)

A schema says what each key must be once, in its field (`expected("an integer >= 1", ge=1)`); that
text is the error message, whatever pydantic's own wording would be.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from vdmbench.core.errors import ConfigError

S = TypeVar("S", bound="Schema")


def read_yaml_file(path: str | Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column (one line)."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error_message(path, e)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the file ({e})") from e


# OmegaConf's YAML rules (omegaconf/_utils.py get_yaml_loader): YAML 1.2 floats (`1e-3` is a
# float, not the string YAML 1.1 makes of it), no timestamps, duplicate keys refused.
_FLOAT = re.compile(r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: ~6x faster


class _HydraYamlLoader(_CLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        keys: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                if key_node.value in keys:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value}", key_node.start_mark)
                keys.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


class _HydraYamlDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Quotes every string that Hydra's loader would read as something else (`'1e3'`)."""


for _cls in (_HydraYamlLoader, _HydraYamlDumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    _cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _cls.yaml_implicit_resolvers.items()
    }


def read_yaml_as_hydra(path: str | Path) -> Any:
    """A config file's content as Hydra's YAML loader (OmegaConf's) reads it, without building
    OmegaConf nodes: 1.7 s instead of 20 s for a suite of 10,000 prompts. Errors as read_yaml_file."""
    try:
        return yaml.load(Path(path).read_bytes(), Loader=_HydraYamlLoader)  # a safe loader (SafeLoader rules)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error_message(path, e)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the file ({e})") from e


def dump_yaml_as_hydra(data: Any) -> str:
    """YAML text that read_yaml_as_hydra (and Hydra) read back as `data`."""
    return yaml.dump(data, Dumper=_HydraYamlDumper, sort_keys=False, allow_unicode=True)


def config_file(name_or_path: str | Path, known: dict[str, Path], kind: str, hint: str) -> Path:
    """A config YAML by path, or by its shipped name among `known`; else the one-line error that
    lists the names (`kind`: "suite", "model"; `hint`: what else the user can do)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    if str(name_or_path) not in known:
        raise ConfigError(f"unknown {kind} {str(name_or_path)!r}; known: {', '.join(sorted(known)) or 'none'} ({hint})")
    return known[str(name_or_path)]


def yaml_error_message(path: str | Path, error: yaml.YAMLError) -> str:
    """`PATH: not valid YAML at line L, column C (problem); ...`, one line from a yaml error (whose
    own text spans several lines and repeats the file name)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    what = ", ".join(x for x in (context, problem) if x) if problem else str(error).splitlines()[0]
    return f"{path}: not valid YAML{where} ({what}); fix the syntax there"


def expected(what: str, default: Any = ..., **constraints: Any) -> Any:
    """A schema field whose errors read `key 'x' must be <what>, got <value>`."""
    return Field(default, json_schema_extra={"expected": what}, **constraints)


def not_as_expected() -> NoReturn:
    """Raised by a validator: the value is not what the field's `expected` text says."""
    raise PydanticCustomError("expected", "not as expected")


class Problem(ValueError):
    """Raised by a validator with its own words: `<source>: <where or key>: <message>`."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message, self.where = message, where


class Schema(BaseModel):
    """A mapping a user writes. Strict: no type is converted into another (a quoted "8" is not a
    number, `true` is not 1); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # What it is and what it must look like: "<what> must be <shape>, got list".
    what: ClassVar[str] = "a config"
    shape: ClassVar[str] = "a mapping"
    # After "unknown keys [...]; " (None: list the allowed keys).
    unknown_keys_hint: ClassVar[str | None] = None
    # Keys whose null means "not given": the default applies (or "missing key" if there is none).
    none_means_default: ClassVar[frozenset[str]] = frozenset()
    # Fields that hold a list of another schema (key -> schema), so errors inside an entry name it.
    nested: ClassVar[dict[str, type[Schema]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.none_means_default:
            return {k: v for k, v in data.items() if not (v is None and k in cls.none_means_default)}
        return data

    @classmethod
    def check(cls: type[S], data: Any, source: str) -> S:
        """The validated model, or a one-line ConfigError that starts with `source`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {cls.what} must be {cls.shape}, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(f"{source}: {error_text(cls, e, data)}") from None

    @classmethod
    def expected_of(cls, key: str) -> str:
        extra = cls.model_fields[key].json_schema_extra
        what = extra.get("expected") if isinstance(extra, dict) else None
        return str(what) if what else "valid"


def error_text(schema: type[Schema], error: ValidationError, data: Any) -> str:
    """One line for a validation error (the first problem; unknown keys come first, as a user who
    misspelt a key wants to hear about that rather than about the key now missing)."""
    located = [_locate(schema, detail, data) for detail in error.errors()]
    unknown = [loc for loc in located if loc.detail["type"] == "extra_forbidden"]
    if unknown:
        first = unknown[0]
        keys = sorted({str(loc.detail["loc"][-1]) for loc in unknown if loc.where == first.where})
        hint = first.schema.unknown_keys_hint or f"allowed: {sorted(first.schema.model_fields)}"
        return first.prefix(f"unknown keys {keys}; {hint}")
    return located[0].message()


class _Located:
    """A pydantic error detail placed in the user's file: in which entry (`where`: `prompts[3]`),
    which key, and the value the user wrote there."""

    def __init__(self, schema: type[Schema], detail: ErrorDetails, where: list[str], key: str | None = None,
                 value: Any = None, bad_entry: type[Schema] | None = None) -> None:
        self.schema, self.detail, self.where, self.key, self.value = schema, detail, where, key, value
        self.bad_entry = bad_entry  # the last entry of `where` is not a mapping: its schema

    def prefix(self, text: str) -> str:
        return ": ".join([*self.where, text])

    def message(self) -> str:
        if self.bad_entry is not None:  # `prompts[3] must be a mapping with ...`
            return ": ".join([*self.where[:-1], f"{self.where[-1]} must be {self.bad_entry.shape}"])
        problem = (self.detail.get("ctx") or {}).get("error")
        if self.key is None:  # about the mapping as a whole (a model-level check)
            return self.prefix(problem.message if isinstance(problem, Problem) else self.detail["msg"])
        name = f"key {self.key!r}" if not self.where else repr(self.key)
        if self.detail["type"] == "missing":
            return self.prefix(f"missing key {self.key!r} ({self.schema.expected_of(self.key)})")
        if isinstance(problem, Problem):
            return self.prefix(f"{problem.where}: {problem.message}" if problem.where else f"{name}: {problem.message}")
        return self.prefix(f"{name} must be {self.schema.expected_of(self.key)}, got {_short(self.value)}")


def _short(value: Any, limit: int = 160) -> str:
    """repr(value), cut short: an error stays one readable line even for a long list."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]} ...{text[-1]}"


def _locate(schema: type[Schema], detail: ErrorDetails, data: Any) -> _Located:
    """Walk an error's location (`('prompts', 3, 'text')`) through the schema and the raw data."""
    loc = list(detail["loc"])
    where: list[str] = []
    value = data
    i = 0
    while i < len(loc):
        part = loc[i]
        index = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(part, str) and part in schema.nested and isinstance(index, int):
            entries = value.get(part) if isinstance(value, dict) else None
            value = entries[index] if isinstance(entries, list) and index < len(entries) else None
            where.append(f"{part}[{index}]")
            if i + 2 == len(loc):  # the entry itself is not a mapping
                return _Located(schema, detail, where, bad_entry=schema.nested[part])
            schema, i = schema.nested[part], i + 2
            continue
        if isinstance(part, str) and (part in schema.model_fields or detail["type"] == "extra_forbidden"):
            if i == len(loc) - 1:  # about the value itself: the input as written
                return _Located(schema, detail, where, part, detail["input"])
            # about something inside it (a list's element): show the whole value
            return _Located(schema, detail, where, part, value.get(part) if isinstance(value, dict) else None)
        break
    return _Located(schema, detail, where, value=value)

"""Prompt suites: schema, validation, loading and a stable content hash.

A suite is a YAML file in the top-level `suites/` folder (a Hydra config group):

    name: smoke                  # required
    version: 1                   # bump when prompts or settings change meaning
    task: t2v                    # t2v | i2v | prediction | interpolation | editing
    num_frames: 8
    height: 32
    width: 32
    fps: 8
    seeds: [0, 1]                # seeds per prompt: a list, or a count n meaning 0..n-1
    steps: null                  # sampling steps / guidance passed to adapters that take them
    guidance: null
    metrics: [flicker, {name: fvd, features: random-i3d}]
    reference: {source: shapes, n: 64, seed: 10_000}   # optional real set for FVD/KVD
    context_frames: 4            # prediction: frames given; editing: strength etc. under params
    prompts:
      - {id: red-circle-left, text: "a red circle moving left", tags: [color, motion]}

One schema, `SuiteSchema` (vdmbench/config/schema.py), checks a suite; its errors name the file,
the key and what is expected. `parse_suite` turns the checked mapping into the frozen `Suite`,
whose content hash keys resumable runs: it depends on the values only, not on how they were
checked. (`read_yaml_file` and `yaml_error_message` live in config/schema.py; they are importable
from here too.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, PlainValidator, field_validator

from vdmbench.config.schema import (
    Problem,
    Schema,
    config_file,
    expected,
    not_as_expected,
    read_yaml_file,
    yaml_error_message,
)
from vdmbench.core.paths import suites_dir

__all__ = ["TASKS", "Prompt", "Suite", "SuiteSchema", "list_suites", "load_suite", "parse_suite", "read_yaml_file",
           "yaml_error_message"]

Task = Literal["t2v", "i2v", "prediction", "interpolation", "editing"]  # what a suite can ask a model to do
TASKS: tuple[str, ...] = get_args(Task)
MAX_SEED = 2**63 - 1  # seeds are stored as BIGINT and seed torch generators (int64)
MAX_SEED_COUNT = 100_000  # `seeds: n` means 0..n-1; more per prompt is a typo, not a benchmark
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
IDENTIFIER = "a short identifier (letters, digits, . _ -)"


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    tags: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # task-specific (e.g. shapes scene)
    source_video: str | None = None  # i2v / editing from a file


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    task: str
    num_frames: int
    height: int
    width: int
    fps: float
    prompts: tuple[Prompt, ...]
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[Any, ...] = ("flicker",)
    steps: int | None = None
    guidance: float | None = None
    reference: dict[str, Any] | None = None
    context_frames: int | None = None
    strength: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def hash(self) -> str:
        """Content hash over everything that changes results (not the description)."""
        d = asdict(self)
        d.pop("description")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def samples(self) -> list[tuple[Prompt, int]]:
        """Every (prompt, seed) pair of the suite, in a stable order."""
        return [(p, s) for p in self.prompts for s in (p.seeds or self.seeds)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prompts"] = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(p).items() if v not in ((), {}, None)}
            for p in self.prompts
        ]
        d["seeds"] = list(self.seeds)
        d["metrics"] = list(self.metrics)
        return {k: v for k, v in d.items() if v is not None}


def _seeds(value: Any) -> tuple[int, ...]:
    """`seeds`: a non-empty list of distinct integers in 0..2**63-1, or a count n meaning 0..n-1."""
    if isinstance(value, bool):
        raise Problem(f"seeds must be a list of integers or a count, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise Problem(f"a seed count must be >= 1, got {value}")
        if value > MAX_SEED_COUNT:
            raise Problem(f"a seed count must be <= {MAX_SEED_COUNT} (seeds 0..n-1), got {value}")
        return tuple(range(value))
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value
    ):
        if len(set(value)) != len(value):
            raise Problem(f"seeds must be distinct, got {list(value)}")
        return tuple(value)
    raise Problem(f"seeds must be a non-empty list of integers in 0..2**63-1 or a count, got {value!r}")


def _non_blank(text: str) -> str:
    if not text.strip():
        not_as_expected()
    return text


def _metric_entry(entry: Any) -> Any:
    if not (isinstance(entry, str) or (isinstance(entry, dict) and isinstance(entry.get("name"), str))):
        raise Problem(f"each entry must be a metric name or {{name: ..., option: ...}}, got {entry!r}")
    return entry


def _with_source(reference: dict[str, Any]) -> dict[str, Any]:
    if "source" not in reference:
        not_as_expected()
    return reference


def _as_text(value: Any) -> Any:
    """A description written as a number is still a description."""
    return str(value) if isinstance(value, (int, float)) else value


Seeds = Annotated[tuple[int, ...], PlainValidator(_seeds)]


class PromptSchema(Schema):
    """One entry of a suite's `prompts` (a plain string is a prompt with that text)."""

    what: ClassVar[str] = "a prompt"
    shape: ClassVar[str] = "a mapping with 'id' and 'text' or a plain string"
    none_means_default: ClassVar[frozenset[str]] = frozenset({"tags", "seeds", "params", "source_video"})

    id: str = expected(IDENTIFIER, pattern=_ID)
    text: Annotated[str, AfterValidator(_non_blank)] = expected("a non-empty string")
    tags: list[str] = expected("a list of strings", default=[])
    seeds: Seeds = expected("a list of seeds or a count", default=())  # empty: the suite's seeds
    params: dict[str, Any] = expected("a mapping", default={})  # task-specific (e.g. a shapes scene)
    source_video: str | None = expected("a path to a video file or null", default=None)


class SuiteSchema(Schema):
    """A suite file (see the module docstring)."""

    what: ClassVar[str] = "a suite"
    nested: ClassVar[dict[str, type[Schema]]] = {"prompts": PromptSchema}
    none_means_default: ClassVar[frozenset[str]] = frozenset({
        "version", "num_frames", "height", "width", "steps", "guidance", "strength", "reference",
        "context_frames", "params", "description",
    })

    name: str = expected(IDENTIFIER, pattern=_ID)
    version: int = expected("an integer >= 1", default=1, ge=1)
    task: Task = expected(f"one of {list(TASKS)}", default="t2v")
    description: Annotated[str, BeforeValidator(_as_text)] = expected("a string", default="")
    num_frames: int = expected("an integer >= 1", ge=1)
    height: int = expected("an integer >= 1", ge=1)
    width: int = expected("an integer >= 1", ge=1)
    fps: float = expected("a finite number > 0", default=8.0, gt=0, allow_inf_nan=False)
    seeds: Seeds = expected("a list of seeds or a count", default=(0,))
    steps: int | None = expected("an integer >= 1", default=None, ge=1)
    guidance: float | None = expected("a finite number or null", default=None, allow_inf_nan=False)
    metrics: list[Annotated[Any, AfterValidator(_metric_entry)]] = expected(
        "a non-empty list of metric names", default=["flicker"], min_length=1)
    reference: Annotated[dict[str, Any], AfterValidator(_with_source)] | None = expected(
        "a mapping with 'source' (shapes or folder)", default=None)
    context_frames: int | None = expected("an integer >= 1", default=None, ge=1)
    strength: float | None = expected("a number in (0, 1]", default=None, gt=0, le=1)
    params: dict[str, Any] = expected("a mapping", default={})
    prompts: list[PromptSchema] = expected("a non-empty list", min_length=1)

    @field_validator("prompts", mode="before")
    @classmethod
    def _plain_prompts(cls, prompts: Any) -> Any:
        """A plain string is a prompt; a prompt without an id gets `p0007` from its position."""
        if not isinstance(prompts, list):
            return prompts
        out = []
        for i, p in enumerate(prompts):
            if isinstance(p, str):
                p = {"id": f"p{i:04d}", "text": p}
            elif isinstance(p, dict) and "id" not in p:
                p = {"id": f"p{i:04d}", **p}
            out.append(p)
        return out

    @field_validator("prompts")
    @classmethod
    def _distinct_ids(cls, prompts: list[PromptSchema]) -> list[PromptSchema]:
        seen: set[str] = set()
        for i, p in enumerate(prompts):
            if p.id in seen:
                raise Problem(f"duplicate prompt id {p.id!r}", where=f"prompts[{i}]")
            seen.add(p.id)
        return prompts

    def to_suite(self) -> Suite:
        return Suite(
            name=self.name,
            version=self.version,
            task=self.task,
            num_frames=self.num_frames,
            height=self.height,
            width=self.width,
            fps=float(self.fps),
            prompts=tuple(
                Prompt(p.id, p.text, tuple(p.tags), p.seeds, dict(p.params), p.source_video) for p in self.prompts
            ),
            seeds=self.seeds,
            metrics=tuple(self.metrics),
            steps=self.steps,
            guidance=float(self.guidance) if self.guidance is not None else None,
            reference=dict(self.reference) if self.reference else None,
            context_frames=self.context_frames,
            strength=float(self.strength) if self.strength is not None else None,
            params=dict(self.params),
            description=self.description,
        )


def list_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(suites_dir().glob("*.yaml"))}


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name, or any suite YAML by path."""
    path = config_file(name_or_path, list_suites(), "suite", "or pass a path to a suite YAML")
    return parse_suite(read_yaml_file(path), source=str(path))


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    """Validate a suite mapping; every error names the source, the key and what is expected."""
    return SuiteSchema.check(data, source).to_suite()

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

Errors name the file, the key and what is expected.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import suites_dir

TASKS = ("t2v", "i2v", "prediction", "interpolation", "editing")  # what a suite can ask a model to do
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TOP_KEYS = {
    "name", "version", "task", "description", "num_frames", "height", "width", "fps", "seeds",
    "steps", "guidance", "metrics", "reference", "prompts", "context_frames", "strength", "params",
}
_PROMPT_KEYS = {"id", "text", "tags", "seeds", "params", "source_video"}


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


def list_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(suites_dir().glob("*.yaml"))}


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name, or any suite YAML by path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = list_suites()
        if str(name_or_path) not in known:
            raise ConfigError(
                f"unknown suite {str(name_or_path)!r}; known: {', '.join(sorted(known)) or 'none'} "
                "(or pass a path to a suite YAML)"
            )
        path = known[str(name_or_path)]
    return parse_suite(read_yaml_file(path), source=str(path))


def read_yaml_file(path: Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column (one line)."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error_message(path, e)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the file ({e})") from e


def yaml_error_message(path: str | Path, error: yaml.YAMLError) -> str:
    """`PATH: not valid YAML at line L, column C (problem); ...`, one line from a yaml error (whose
    own text spans several lines and repeats the file name)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    what = ", ".join(x for x in (context, problem) if x) if problem else str(error).splitlines()[0]
    return f"{path}: not valid YAML{where} ({what}); fix the syntax there"


def _int(data: dict, key: str, source: str, *, minimum: int = 1, default: Any = ...) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise ConfigError(f"{source}: missing key {key!r} (an integer >= {minimum})")
        return default
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{source}: key {key!r} must be an integer >= {minimum}, got {v!r}")
    return v


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: seeds must be a list of integers or a count, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{where}: a seed count must be >= 1, got {value}")
        return tuple(range(value))
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
    ):
        if len(set(value)) != len(value):
            raise ConfigError(f"{where}: seeds must be distinct, got {list(value)}")
        return tuple(value)
    raise ConfigError(f"{where}: seeds must be a non-empty list of integers >= 0 or a count, got {value!r}")


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    """Validate a suite mapping; every error names the source, the key and what is expected."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a suite must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _ID_RE.match(name):
        raise ConfigError(f"{source}: key 'name' must be a short identifier (letters, digits, . _ -), got {name!r}")
    task = data.get("task", "t2v")
    if task not in TASKS:
        raise ConfigError(f"{source}: key 'task' must be one of {list(TASKS)}, got {task!r}")
    fps = data.get("fps", 8)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
        raise ConfigError(f"{source}: key 'fps' must be a positive number, got {fps!r}")
    guidance = data.get("guidance")
    if guidance is not None and (isinstance(guidance, bool) or not isinstance(guidance, (int, float))):
        raise ConfigError(f"{source}: key 'guidance' must be a number or null, got {guidance!r}")
    strength = data.get("strength")
    if strength is not None and not (isinstance(strength, (int, float)) and 0 < strength <= 1):
        raise ConfigError(f"{source}: key 'strength' must be a number in (0, 1], got {strength!r}")
    metrics = data.get("metrics", ["flicker"])
    if not isinstance(metrics, list) or not metrics:
        raise ConfigError(f"{source}: key 'metrics' must be a non-empty list of metric names")
    for m in metrics:
        if not (isinstance(m, str) or (isinstance(m, dict) and isinstance(m.get("name"), str))):
            raise ConfigError(f"{source}: each entry of 'metrics' must be a name or {{name: ..., option: ...}}, got {m!r}")
    reference = data.get("reference")
    if reference is not None and not (isinstance(reference, dict) and "source" in reference):
        raise ConfigError(f"{source}: key 'reference' must be a mapping with 'source' (shapes or folder)")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: key 'params' must be a mapping")
    seeds = _seeds(data.get("seeds", [0]), f"{source}: key 'seeds'")

    raw_prompts = data.get("prompts")
    if not isinstance(raw_prompts, list) or not raw_prompts:
        raise ConfigError(f"{source}: key 'prompts' must be a non-empty list")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for i, p in enumerate(raw_prompts):
        where = f"{source}: prompts[{i}]"
        if isinstance(p, str):
            p = {"id": f"p{i:04d}", "text": p}
        if not isinstance(p, dict):
            raise ConfigError(f"{where} must be a mapping with 'id' and 'text' or a plain string")
        bad = set(p) - _PROMPT_KEYS
        if bad:
            raise ConfigError(f"{where}: unknown keys {sorted(bad)}; allowed: {sorted(_PROMPT_KEYS)}")
        pid = p.get("id", f"p{i:04d}")
        if not isinstance(pid, str) or not _ID_RE.match(pid):
            raise ConfigError(f"{where}: 'id' must be a short identifier (letters, digits, . _ -), got {pid!r}")
        if pid in seen:
            raise ConfigError(f"{where}: duplicate prompt id {pid!r}")
        seen.add(pid)
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: 'text' must be a non-empty string")
        tags = p.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: 'tags' must be a list of strings")
        pparams = p.get("params") or {}
        if not isinstance(pparams, dict):
            raise ConfigError(f"{where}: 'params' must be a mapping")
        pseeds = _seeds(p["seeds"], f"{where}: 'seeds'") if p.get("seeds") is not None else ()
        prompts.append(
            Prompt(pid, text, tuple(tags), pseeds, dict(pparams), p.get("source_video"))
        )

    return Suite(
        name=name,
        version=_int(data, "version", source, default=1),
        task=task,
        num_frames=_int(data, "num_frames", source),
        height=_int(data, "height", source),
        width=_int(data, "width", source),
        fps=float(fps),
        prompts=tuple(prompts),
        seeds=seeds,
        metrics=tuple(metrics),
        steps=_int(data, "steps", source, default=None),
        guidance=float(guidance) if guidance is not None else None,
        reference=dict(reference) if reference else None,
        context_frames=_int(data, "context_frames", source, default=None),
        strength=float(strength) if strength is not None else None,
        params=dict(params),
        description=str(data.get("description", "")),
    )

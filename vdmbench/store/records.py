"""What the store takes and gives: typed records, with JSON columns as Python values.

The JSON columns (`runs.model_config`, `runs.env`, `runs.suite_config`, `run_metrics.details`,
`samples.tags`, `samples.notes`, `generations.notes`) are encoded when written and decoded when
read here, once; no caller of the store sees their JSON text (only the file exports keep it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)


def notes_json(notes: Mapping[str, Any] | None) -> str | None:
    """An adapter's notes as stored: NULL when there are none."""
    return json.dumps(notes, sort_keys=True, default=str) if notes else None


def from_json(raw: str | None) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def json_object(raw: str | None) -> dict[str, Any]:
    """A JSON object column; {} for NULL (or any other JSON value)."""
    value = from_json(raw)
    return dict(value) if isinstance(value, dict) else {}


def json_tags(raw: str | None) -> tuple[str, ...]:
    value = from_json(raw)
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def json_notes(raw: str | None) -> dict[str, Any] | None:
    value = from_json(raw)
    return dict(value) if isinstance(value, dict) and value else None


@dataclass(frozen=True)
class SampleRecord:
    """One sample to write (record_samples)."""

    sample_id: str
    prompt_id: str
    prompt: str
    seed: int
    task: str
    status: str  # "ok" | "failed"
    path: str | None = None
    sha256: str | None = None
    gen_seconds: float | None = None
    error: str | None = None
    cache_key: str | None = None
    preview_path: str | None = None
    tags: tuple[str, ...] = ()
    notes: dict[str, Any] | None = None  # the adapter's notes on this clip (Video.notes)


@dataclass(frozen=True)
class RunRecord(Mapping[str, Any]):
    """One `runs` row. Also reads as a mapping (`run["suite"]`, `run.get("shard")`), like the
    dict that get_run returned before; `as_dict()` gives a plain dict (e.g. for a JSON document)."""

    run_id: str
    suite: str
    suite_version: int | None
    suite_hash: str
    model: str
    model_config: dict[str, Any]
    config_hash: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    git_sha: str | None
    env: dict[str, Any]
    shard: str | None
    suite_config: dict[str, Any]

    # The row as SELECTed by the store: these columns, in this order.
    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRecord:
        values = dict(zip(cls.columns(), row))
        for key in ("model_config", "env", "suite_config"):
            values[key] = json_object(values[key])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        if key not in _RUN_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_RUN_FIELDS)

    def __len__(self) -> int:
        return len(_RUN_FIELDS)


_RUN_FIELDS = RunRecord.columns()


@dataclass(frozen=True)
class SampleRow:
    """One `samples` row as read back."""

    run_id: str
    sample_id: str
    prompt_id: str
    prompt: str
    seed: int
    task: str | None
    path: str | None
    sha256: str | None
    gen_seconds: float | None
    status: str
    error: str | None
    cache_key: str | None
    preview_path: str | None
    tags: tuple[str, ...]
    created_at: datetime | None
    notes: dict[str, Any] | None

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> SampleRow:
        values = dict(zip(cls.columns(), row))
        values["tags"] = json_tags(values["tags"])
        values["notes"] = json_notes(values["notes"])
        return cls(**values)


@dataclass(frozen=True)
class SampleValue:
    """One per-sample metric value (`sample_metrics` row)."""

    run_id: str
    sample_id: str
    metric: str
    value: float | None


@dataclass(frozen=True)
class MetricRow:
    """One run-level metric (`run_metrics` row): value, bootstrap CI, n, and how it was made."""

    run_id: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> MetricRow:
        return cls(**_with_details(cls, row))


@dataclass(frozen=True)
class LeaderboardRow:
    """One metric of the latest finished run of a (suite, model)."""

    suite: str
    suite_version: int | None
    model: str
    run_id: str
    finished_at: datetime | None
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> LeaderboardRow:
        return cls(**_with_details(cls, row))


def _with_details(cls: type, row: tuple[Any, ...]) -> dict[str, Any]:
    """A run-metric row's fields by name, its `details` JSON decoded."""
    values = dict(zip((f.name for f in fields(cls)), row))
    values["details"] = json_object(values["details"])
    return values

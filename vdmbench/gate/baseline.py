"""Portable baseline files: one run's results as a JSON document, so a CI job needs no database.

A baseline file holds everything the gate compares and everything that decides whether two runs
may be compared at all:

    {"format": "vdmbench-baseline", "format_version": 1, "created_at": ..., "vdmbench_version": ...,
     "run": {run_id, suite, suite_version, suite_hash, model, model_config, config_hash, status,
             started_at, finished_at, git_sha, env, suite_config},
     "run_metrics": {metric: {value, ci_low, ci_high, n, details}},   # details: direction, config
     "samples": [{sample_id, prompt_id, seed, status, sha256, values: {metric: value}}]}

Per-sample values are keyed by prompt id and seed, which is what the paired bootstrap matches.
Set-level metrics (FVD, KVD) carry only their value and bootstrap CI: the per-clip I3D features
behind them are not in the database, so the gate compares them through those CIs.

Written with a `.gz` suffix the file is gzip-compressed; reading detects gzip by its magic bytes.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vdmbench.core import atomic
from vdmbench.core.errors import ConfigError
from vdmbench.store.database import Store

FORMAT = "vdmbench-baseline"
FORMAT_VERSION = 1
_RUN_KEYS = ("run_id", "suite", "suite_version", "suite_hash", "model", "model_config", "config_hash",
             "status", "started_at", "finished_at", "git_sha", "env", "suite_config")


@dataclass
class RunData:
    """One run as the gate sees it, whether it came from the database or from a baseline file."""

    run: dict[str, Any]
    run_metrics: dict[str, dict[str, Any]]
    samples: pd.DataFrame  # long: sample_id, prompt_id, seed, metric, value (ok samples only)
    source: str  # where it was read from, for messages

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id"))

    def metric_names(self) -> set[str]:
        return set(self.run_metrics) | set(self.samples.metric.unique())


def _clean(value: Any) -> Any:
    """JSON-safe scalars: timestamps as ISO text, NaN as null (JSON has no NaN)."""
    if isinstance(value, datetime):  # pd.Timestamp too
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (dict, list, str)):
        return _clean(value.item())
    return value


def _details(raw: Any) -> dict[str, Any]:
    """A baseline file's metric details: a JSON object (or text holding one)."""
    if isinstance(raw, str):
        return json.loads(raw)
    return dict(raw or {})


def from_store(store: Store, run_id: str) -> RunData:
    """Read a run (id or unique prefix) from the database."""
    run = store.get_run(run_id)
    rid = run["run_id"]
    run_metrics = {
        r.metric: {"value": _clean(r.value), "ci_low": _clean(r.ci_low), "ci_high": _clean(r.ci_high),
                   "n": _clean(r.n), "details": dict(r.details)}
        for r in store.run_metrics(rid)
    }
    samples = store.sample_values(rid)
    info = {k: _clean(run.get(k)) for k in _RUN_KEYS}
    return RunData(info, run_metrics, samples, f"run {rid} in {store.path}")


def to_document(data: RunData, store: Store | None = None) -> dict[str, Any]:
    """The baseline document of a run (sample status and sha256 come from the store when given)."""
    extra: dict[str, dict[str, Any]] = {}
    if store is not None:
        extra = {r.sample_id: {"prompt_id": r.prompt_id, "seed": int(r.seed), "status": r.status,
                               "sha256": _clean(r.sha256)} for r in store.samples(data.run_id)}
    samples: dict[str, dict[str, Any]] = {}
    for r in data.samples.itertuples(index=False):
        s = samples.setdefault(r.sample_id, {"sample_id": r.sample_id, "prompt_id": r.prompt_id,
                                             "seed": int(r.seed), "status": "ok", "values": {}})
        s["values"][r.metric] = _clean(float(r.value))
    for sid, e in extra.items():  # failed samples too, so a reader sees what the baseline lacked
        samples.setdefault(sid, {"sample_id": sid, **e, "values": {}}).update(
            {"status": e["status"], "sha256": e["sha256"]})
    from vdmbench import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "vdmbench_version": __version__,
        "run": data.run,
        "run_metrics": data.run_metrics,
        "samples": sorted(samples.values(), key=lambda s: s["sample_id"]),
    }


def export_baseline(store: Store, run_id: str, path: str | Path) -> Path:
    """Write run `run_id` as a baseline file (gzip when the name ends in .gz); returns the path."""
    data = from_store(store, run_id)
    if data.run.get("status") != "finished":
        raise ConfigError(f"run {data.run_id} is {data.run.get('status')!r}, not finished; "
                          "a baseline must be a complete run (run it again to resume it)")
    doc = to_document(data, store)
    text = json.dumps(doc, indent=1, sort_keys=True, default=str, allow_nan=False)
    path = Path(path)
    if path.suffix == ".gz":
        # mtime=0: the same run gives a byte-identical file, so a committed baseline diffs cleanly.
        atomic.write_bytes(path, gzip.compress(text.encode(), mtime=0))
    else:
        atomic.write_text(path, text + "\n")
    return path


def load_baseline(path: str | Path) -> RunData:
    """Read a baseline file written by `export_baseline` (plain or gzip JSON)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the baseline file ({e.strerror or e})") from e
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a vdmbench baseline file (not JSON or gzip JSON: {e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a vdmbench baseline file (missing \"format\": \"{FORMAT}\"); "
                          "write one with `vdmbench gate export-baseline RUN -o FILE`")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(f"{path}: baseline format version {version!r} is newer than this vdmbench reads "
                          f"({FORMAT_VERSION}); upgrade vdmbench")
    for key in ("run", "run_metrics", "samples"):
        if key not in doc:
            raise ConfigError(f"{path}: baseline file lacks {key!r}")
    rows = []
    for s in doc["samples"]:
        if s.get("status", "ok") != "ok":
            continue
        for metric, value in (s.get("values") or {}).items():
            if value is not None:
                rows.append((s["sample_id"], s["prompt_id"], int(s["seed"]), metric, float(value)))
    samples = pd.DataFrame(rows, columns=["sample_id", "prompt_id", "seed", "metric", "value"])
    run_metrics = {m: {**r, "details": _details(r.get("details"))} for m, r in doc["run_metrics"].items()}
    run = dict(doc["run"])
    if "adapter_config" in run:  # written before the key's rename (schema 4): the same thing
        run.setdefault("model_config", run.pop("adapter_config"))
    return RunData(run, run_metrics, samples, f"baseline file {path}")


def resolve_run(ref: str, db: str | Path | None) -> RunData:
    """A run reference from the command line: an existing file is a baseline file, else a run id."""
    p = Path(ref)
    if p.is_file():
        return load_baseline(p)
    if p.suffix in (".json", ".gz") or "/" in ref:
        raise ConfigError(f"{ref}: no such baseline file")
    if db is None or not Path(db).is_file():
        raise ConfigError(f"{ref!r} is not a file, and there is no results database at {db} to look the run id up in "
                          "(pass --db PATH, or a baseline file)")
    return from_store(Store(db, read_only=True), ref)

"""Export one run to Parquet, CSV or JSON: what produced it, every sample, every value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from vdmbench.core import atomic
from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import DEFAULT_RESULTS_DIR
from vdmbench.store.database import Store


def run_tables(store: Store, run_id: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """(run row, samples wide with one column per metric, run metrics) of one run; the tables keep
    the JSON columns as their JSON text, as stored (a file column holds one type)."""
    run = store.get_run(run_id).as_dict()
    samples, values, run_metrics = store.stored_tables(run["run_id"])
    if not values.empty:
        wide = values.pivot(index="sample_id", columns="metric", values="value").reset_index()
        wide.columns.name = None
        samples = samples.merge(wide, on="sample_id", how="left")
    return run, samples, run_metrics


def export_run(store: Store, run_id: str, fmt: str, out: Path | None = None) -> Path:
    """Write the run; parquet/csv give `<out>/<run>.samples.<ext>` and `<run>.run_metrics.<ext>`,
    json one document `<out>/<run>.json`. Returns the file (json) or folder written."""
    run, samples, run_metrics = run_tables(store, run_id)
    rid = run["run_id"]
    folder = Path(out) if out else DEFAULT_RESULTS_DIR / "exports"
    if fmt == "json":
        path = folder if folder.suffix == ".json" else folder / f"{rid}.json"
        doc = {
            "run": run,
            "run_metrics": json.loads(run_metrics.to_json(orient="records", date_format="iso")),
            "samples": json.loads(samples.to_json(orient="records", date_format="iso")),
        }
        atomic.write_text(path, json.dumps(doc, indent=2, default=str))
        return path
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"export format must be parquet, csv or json, got {fmt!r}")
    for name, df in (("samples", samples), ("run_metrics", run_metrics)):
        df = df.assign(suite=run["suite"], model=run["model"]) if name == "run_metrics" else df
        target = folder / f"{rid}.{name}.{fmt}"
        if fmt == "parquet":
            with atomic.atomic_path(target) as tmp:
                df.to_parquet(tmp, index=False)
        else:
            with atomic.atomic_path(target) as tmp:
                df.to_csv(tmp, index=False)
    return folder

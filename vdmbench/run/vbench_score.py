"""`vdmbench vbench score DIR`: VBench's dimensions and scores of a folder of VBench-named videos
made elsewhere (`{prompt}-{index}.mp4`).

Two modes, as VBench's own `evaluate`:
- with VBench's prompt file (`full_info`, e.g. VBench_full_info.json; its "standard" mode): each
  dimension is computed over the videos of the prompts listed for it, indices 0..4 only (what
  VBench reads); other files are reported as ignored, missing ones as missing;
- without it (its "custom_input" mode): every video of the folder counts for every dimension, the
  prompt read from the file name.
Each dimension's run value follows VBench's aggregation (the mean over videos, or the frame-pair
weighted mean for dimensions declaring `aggregate_weight`) with a bootstrap CI over prompts; then
the Quality/Semantic/Total scores of the dimensions present (vdmbench.metrics.vbench_scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vdmbench.core.errors import ConfigError
from vdmbench.core.naming import vbench_filename
from vdmbench.core.video import VIDEO_EXTENSIONS
from vdmbench.metrics import MetricContext, build_metric, metric_spec
from vdmbench.metrics.vbench_scores import NORMALIZE, VBenchScores, dimension_sources, normalized
from vdmbench.run.score import prompt_from_filename, score_files
from vdmbench.run.scoring import table_statistics

STANDARD_INDICES = range(5)  # VBench's standard mode reads `{prompt}-0` .. `{prompt}-4`


def _videos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder of videos")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        raise ConfigError(f"{folder}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    return files


@dataclass(frozen=True)
class _Entry:
    """One video as VBench's standard mode reads it: a file under one prompt entry."""

    file: str
    prompt_id: str  # the entry's position in the prompt file (vb0000, ...)
    dimensions: frozenset[str]


def _standard_selection(files: list[Path], full_info: Sequence[Mapping[str, Any]]) -> tuple[
        list[_Entry], list[str], list[str]]:
    """The videos VBench's standard mode reads (entry by entry, indices 0..4), the files it ignores
    and the expected files that are missing. A text listed in two entries (VBench's file has two)
    is read once per entry, as VBench does: a dimension both entries name counts its videos twice."""
    present = {f.name for f in files}
    suffixes = sorted({f.suffix for f in files})
    chosen: list[_Entry] = []
    missing: list[str] = []
    for i, entry in enumerate(full_info):
        text = entry.get("prompt_en") if isinstance(entry, Mapping) else None
        if not isinstance(text, str):
            raise ConfigError(f"VBench prompt file: entry {i} needs a string 'prompt_en'")
        dims = entry.get("dimension", [])
        dims = frozenset([dims] if isinstance(dims, str) else dims)
        for k in STANDARD_INDICES:
            name = next((n for n in (vbench_filename(text, k, sfx) for sfx in suffixes) if n in present), None)
            if name is None:
                missing.append(vbench_filename(text, k, suffixes[0] if suffixes else ".mp4"))
            else:
                chosen.append(_Entry(name, f"vb{i:04d}", dims))
    ignored = sorted(present - {e.file for e in chosen})
    return chosen, ignored, sorted(set(missing))


def score_vbench_folder(folder: Path, metrics: Sequence[str | dict[str, Any]], *, context: MetricContext,
                        full_info: Sequence[Mapping[str, Any]] | None = None, batch_size: int = 8, workers: int = 2,
                        num_frames: int | None = None) -> dict[str, Any]:
    """Score a folder of VBench-named videos with VBench dimension metrics (`vbench_scores` need not
    be listed: the scores are always computed). Returns {"files", "scored", "failed" {name: error},
    "ignored" [names], "missing" [names], "dimensions" {dimension: {output, value, ci_low, ci_high,
    n, normalized, aggregation, comparable}}, "scores" {vbench_quality_score, ...: {value, ci_low,
    ci_high, n, comparable, details}}, "per_sample" {file: {output: value}}}."""
    specs = [s for s in metrics if metric_spec(s)[0] != "vbench_scores"]
    if not specs:
        raise ConfigError("name at least one VBench dimension metric to score (e.g. aesthetic_quality)")
    files = _videos(Path(folder))
    ignored: list[str] = []
    missing: list[str] = []
    selection: list[_Entry] | None = None
    if full_info is not None:
        selection, ignored, missing = _standard_selection(files, full_info)
        read = {e.file for e in selection}
        files = [f for f in files if f.name in read]
        if not files:
            raise ConfigError(f"{folder}: none of its files is named as VBench's prompt file expects "
                              "('{prompt}-{0..4}.mp4'); pass no prompt file to score every file")
    # Every file is scored once by every metric; the instances built here only say how each output
    # aggregates (their models are built lazily and shared through context.shared).
    built = [build_metric(s, context) for s in specs]
    result = score_files(files, specs, context=context, batch_size=batch_size, workers=workers,
                         num_frames=num_frames, prompts_from_filenames=True)
    table = _long_table(result["per_sample"], selection)
    sources = dimension_sources(list(built))
    if selection is not None:  # each dimension over its own prompts only, as VBench's standard mode
        keep = pd.Series(True, index=table.index)
        for dim, src in sources.items():
            theirs = {_row_id(e) for e in selection if dim in e.dimensions}
            rows = table.metric.isin([src.output] + ([src.weight] if src.weight else []))
            keep &= ~rows | table.sample_id.isin(theirs)
        table = table[keep]
    stats = {r["metric"]: r for r in table_statistics(table, [*built, VBenchScores(context)])}
    dimensions = {}
    for dim, src in sources.items():
        r = stats.get(src.output)
        if r is None:
            continue
        dimensions[dim] = {"output": src.output, "value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                           "n": r["n"], "normalized": normalized(dim, r["value"]), "comparable": src.comparable,
                           "aggregation": (f"weighted by {src.weight}" if src.weight else "mean over videos")}
    scores = {name: {k: r[k] for k in ("value", "ci_low", "ci_high", "n")} | {
        "comparable": bool(r["details"].get("comparable")), "details": r["details"]}
        for name, r in stats.items() if r["details"].get("derived")}
    return {"files": result["files"], "scored": result["scored"], "failed": result["failed"], "ignored": ignored,
            "missing": missing, "dimensions": dimensions, "scores": scores, "per_sample": result["per_sample"],
            "mode": "standard (VBench prompt file)" if selection is not None else "custom input (prompts from names)"}


def _row_id(entry: _Entry) -> str:
    return f"{entry.file}#{entry.prompt_id}"


def _long_table(per_sample: Mapping[str, Mapping[str, float]], selection: Sequence[_Entry] | None) -> pd.DataFrame:
    """(sample_id, prompt_id, metric, value) rows: one sample per file, or, in standard mode, one per
    (file, prompt entry) that reads it."""
    rows = []
    if selection is None:
        for name, values in per_sample.items():
            prompt = prompt_from_filename(Path(name))
            rows += [(name, prompt, metric, float(v)) for metric, v in values.items()]
    else:
        for e in selection:
            rows += [(_row_id(e), e.prompt_id, metric, float(v)) for metric, v in per_sample.get(e.file, {}).items()]
    return pd.DataFrame(rows, columns=["sample_id", "prompt_id", "metric", "value"])


def dimension_table(result: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(dimension or score, raw value, normalized, 95% CI) rows for printing, in VBench's order."""
    out = []
    for dim in NORMALIZE:
        d = result["dimensions"].get(dim)
        if d is not None:
            out.append((dim, f"{d['value']:.6f}", f"{d['normalized']:.6f}", _ci(d)))
    for name, s in result["scores"].items():
        label = name + ("" if s["comparable"] else " (not comparable with the VBench leaderboard)")
        out.append((label, f"{s['value']:.6f}", "", _ci(s)))
    return out


def _ci(d: Mapping[str, Any]) -> str:
    lo, hi = d.get("ci_low"), d.get("ci_high")
    return f"[{lo:.6f}, {hi:.6f}]" if lo is not None and hi is not None else ""



def main(argv: list[str] | None = None) -> int:
    """`vdmbench vbench score DIR --metrics ... [--full-info VBench_full_info.json] [--json out.json]`."""
    import argparse
    import json

    from vdmbench.core import atomic
    from vdmbench.core.paths import DEFAULT_RESULTS_DIR
    from vdmbench.core.resources import resolve_device
    from vdmbench.run.score import parse_metric_list

    ap = argparse.ArgumentParser(prog="vdmbench vbench score", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="folder of VBench-named videos ('{prompt}-{index}.mp4')")
    ap.add_argument("--metrics", required=True,
                    help="VBench dimensions to compute: 'aesthetic_quality,subject_consistency' or a suite's YAML "
                         "list with options: '[{name: aesthetic_quality, weights: head.pth}]'")
    ap.add_argument("--full-info", type=Path,
                    help="VBench's prompt file (VBench_full_info.json): each dimension over its own prompts, "
                         "indices 0..4 (VBench's standard mode); without it every file counts for every dimension")
    ap.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="feature caches (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="decoder processes")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, help="write the result here")
    args = ap.parse_args(argv)
    full_info = None
    if args.full_info is not None:
        try:
            full_info = json.loads(args.full_info.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{args.full_info}: cannot read VBench's prompt file ({e})") from e
        if not isinstance(full_info, list):
            raise ConfigError(f"{args.full_info}: expected a JSON list of {{prompt_en, dimension}} entries")
    context = MetricContext(device=resolve_device(args.device), batch_size=args.batch_size,
                            cache_dir=args.results_dir / "cache" / "features")
    result = score_vbench_folder(args.folder, parse_metric_list(args.metrics), context=context, full_info=full_info,
                                 batch_size=args.batch_size, workers=args.workers)
    for name, error in result["failed"].items():
        print(f"failed {name}: {error}")
    if result["missing"]:
        print(f"{len(result['missing'])} videos VBench expects are missing, e.g. {result['missing'][0]}")
    if result["ignored"]:
        print(f"{len(result['ignored'])} files are not read by VBench's standard mode, e.g. {result['ignored'][0]}")
    for label, raw, norm, ci in dimension_table(result):
        print(f"{label:<40} {raw:>10} {norm:>10} {ci}")
    if args.json:
        atomic.write_text(args.json, json.dumps(result, indent=2, default=str))
    return 0 if result["scored"] else 1

"""VBench interop: its prompt file in, our generated clips out under its file naming.

    vdmbench vbench import VBench_full_info.json -o suites/vbench.yaml [--dimension color ...]
    vdmbench vbench export RUN_ID [-o DIR]     # default DIR: results/vbench/RUN_ID; then score it with VBench
    vdmbench vbench check SUITE FOLDER [--manifest FILE]     # which videos are missing / extra

Import: VBench's prompt file is a JSON list of {"prompt_en": ..., "dimension": [...],
"auxiliary_info": {...}}. Prompts are keyed by position (id `vb0000`, `vb0001`, ...), never by
text: the file has 946 entries but only 944 distinct texts (two texts appear under two dimension
lists). Each prompt is tagged with its dimensions; auxiliary info is kept under params.vbench.

VBench's standard sampling (prompts/README.md): 5 videos per prompt, `$prompt-$index.mp4` with
index 0..4, a different seed for every video, recorded so the sampling is reproducible. VBench seeds
one global generator per prompt file; vdmbench seeds every video by itself, so the import gives each
prompt seeds first_seed .. first_seed + 4 (default 0..4) and the export names seed k of a prompt
`-{k's position}`; VBench's standard mode reads exactly indices 0..4. `--dimension-metrics` lists
the imported dimensions that vdmbench computes as the suite's metrics, plus `vbench_scores`.

Export: VBench looks a clip up as `{prompt}-{i}.mp4`, i = 0..4 the sample index. The index is the
position of the sample's seed among its prompt's seeds (seeds 0..4 give i = seed). The prompt text
is used as is where the filesystem allows; `vbench_filename` says what is changed otherwise.
Prompts with the same text map to the same file, as in VBench; the first one is written and the
others are reported. A `vdmbench_manifest.csv` (prompt_id, prompt, seed, index, path) is written
next to the clips, so the folder adapter can read them back exactly.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vdmbench.core import atomic
from vdmbench.core.errors import ConfigError
from vdmbench.core.naming import vbench_filename
from vdmbench.core.paths import DEFAULT_DB

if TYPE_CHECKING:
    from vdmbench.store.records import SampleRow

MANIFEST_NAME = "vdmbench_manifest.csv"
VBENCH_SAMPLES_PER_PROMPT = 5  # prompts/README.md: "For each prompt, sample 5 videos", index 0..4


def dimension_metrics(dimensions: Sequence[str]) -> list[str]:
    """The VBench dimensions among `dimensions` that vdmbench has a metric for (registry name =
    dimension name), in VBench's order, then `vbench_scores`; [] when there is none."""
    from vdmbench.metrics import REGISTRY
    from vdmbench.metrics.vbench_scores import NORMALIZE

    known = set(REGISTRY.names(strict=False))
    wanted = set(dimensions)
    found = [d for d in NORMALIZE if d in wanted and d in known]
    return found + ["vbench_scores"] if found else []


# -- import ----------------------------------------------------------------------------------------
def import_prompts(
    entries: Any,
    *,
    name: str = "vbench",
    dimensions: list[str] | None = None,
    seeds: int = VBENCH_SAMPLES_PER_PROMPT,
    first_seed: int = 0,
    num_frames: int = 16,
    height: int = 320,
    width: int = 512,
    fps: float = 8.0,
    metrics: list[str] | None = None,
    score_dimensions: bool = False,
    source: str = "<vbench json>",
) -> dict[str, Any]:
    """VBench prompt entries -> a suite mapping (validated by vdmbench.config.suite.parse_suite).

    `seeds` samples per prompt with seeds first_seed .. first_seed + seeds - 1 (VBench: 5, exported
    as indices 0..4). `score_dimensions`: add the metrics of the imported dimensions that vdmbench
    computes (see dimension_metrics) to `metrics`."""
    from vdmbench.config.suite import parse_suite

    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: expected a non-empty JSON list of {{prompt_en, dimension}} entries")
    wanted = set(dimensions or [])
    prompts = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("prompt_en"), str) or not e["prompt_en"].strip():
            raise ConfigError(f"{source}: entry {i} needs a non-empty string 'prompt_en'")
        dims = e.get("dimension", [])
        dims = [dims] if isinstance(dims, str) else dims
        if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
            raise ConfigError(f"{source}: entry {i}: 'dimension' must be a list of names")
        if wanted and not wanted & set(dims):
            continue
        p: dict[str, Any] = {"id": f"vb{i:04d}", "text": e["prompt_en"], "tags": list(dims)}
        if isinstance(e.get("auxiliary_info"), dict) and e["auxiliary_info"]:
            p["params"] = {"vbench": e["auxiliary_info"]}
        prompts.append(p)
    if not prompts:
        raise ConfigError(f"{source}: no entry has any of the dimensions {sorted(wanted)}")
    if first_seed < 0:
        raise ConfigError(f"first seed must be >= 0, got {first_seed}")
    chosen = list(metrics or [])
    if score_dimensions:
        chosen += [m for m in dimension_metrics([d for p in prompts for d in p["tags"]]) if m not in chosen]
    if seeds != VBENCH_SAMPLES_PER_PROMPT:
        protocol = f"; {seeds} samples per prompt, not VBench's {VBENCH_SAMPLES_PER_PROMPT}"
    else:
        protocol = f"; VBench's {VBENCH_SAMPLES_PER_PROMPT} samples per prompt"
    suite = {
        "name": name, "version": 1, "task": "t2v",
        "description": f"VBench prompts imported from {Path(source).name} "
                       f"({len(prompts)} of {len(entries)} entries{'; dimensions ' + ', '.join(sorted(wanted)) if wanted else ''}"
                       f"{protocol}, seeds {first_seed}..{first_seed + seeds - 1}).",
        "num_frames": num_frames, "height": height, "width": width, "fps": fps,
        "seeds": seeds if first_seed == 0 else list(range(first_seed, first_seed + seeds)),
        "metrics": chosen or ["flicker"], "prompts": prompts,
    }
    parse_suite(suite, source=f"{source} (imported)")
    return suite


def write_suite_yaml(suite: dict[str, Any], path: Path) -> Path:
    import yaml

    header = "# Imported from VBench's prompt file by `vdmbench vbench import`; prompts keyed by position.\n"
    return atomic.write_text(path, header + yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=120))


# -- export ----------------------------------------------------------------------------------------
@dataclass
class ExportReport:
    out: Path
    written: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # samples whose name an earlier one took
    skipped: list[str] = field(default_factory=list)  # failed samples / missing files


def _seed_index(run: Mapping[str, Any], samples: Sequence[SampleRow]) -> dict[tuple[str, int], int]:
    """(prompt_id, seed) -> VBench sample index: the seed's position among its prompt's seeds."""
    cfg = run.get("suite_config") or {}
    default = list(cfg.get("seeds") or [])
    per_prompt = {p["id"]: list(p.get("seeds") or default) for p in cfg.get("prompts", []) if "id" in p}
    by_prompt: dict[str, list[int]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.prompt_id, []).append(int(sample.seed))
    out = {}
    for pid, group in by_prompt.items():
        seeds = per_prompt.get(pid) or sorted(group)
        for s in group:
            out[(pid, s)] = seeds.index(s) if s in seeds else s
    return out


def default_export_dir(db: Path, run_id: str) -> Path:
    """`vbench/<run_id>` in the database's results folder (results/vbench/<run_id> by default)."""
    return Path(db).parent / "vbench" / run_id


def export_run(db: Path, run_id: str, out: Path | None = None, mode: str = "copy") -> ExportReport:
    """Write a run's clips into `out` (default: `default_export_dir`) under VBench naming (copy,
    hardlink or symlink)."""
    from vdmbench.store.database import Store

    if mode not in ("copy", "hardlink", "symlink"):
        raise ConfigError(f"mode must be copy, hardlink or symlink, got {mode!r}")
    if not Path(db).is_file():
        raise ConfigError(f"no results database at {db}; run `vdmbench run` first or pass --db")
    store = Store(db, read_only=True)
    run = store.get_run(run_id)
    samples = store.samples(run["run_id"], order="prompt")
    index = _seed_index(run, samples)
    out = Path(out) if out is not None else default_export_dir(db, run["run_id"])
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out)
    taken: dict[str, str] = {}
    rows = []
    for r in samples:
        src = Path(r.path) if r.path and Path(r.path).is_absolute() else Path(db).resolve().parent / str(r.path)
        if r.status != "ok" or not r.path or not src.is_file():
            report.skipped.append(f"{r.sample_id} ({r.status if r.status != 'ok' else 'file missing'})")
            continue
        i = index[(r.prompt_id, int(r.seed))]
        name = vbench_filename(r.prompt, i, src.suffix or ".mp4")
        if name in taken:
            # VBench finds clips by text, so a second prompt with the same text cannot have its
            # name: it is written under its prompt id and listed in the manifest like the others.
            report.duplicates.append(f"{r.sample_id} (same text as {taken[name]})")
            name = vbench_filename(r.prompt_id, i, src.suffix or ".mp4")
        taken[name] = r.sample_id
        _place(src, out / name, mode)
        report.written.append(name)
        rows.append({"prompt_id": r.prompt_id, "prompt": r.prompt, "seed": int(r.seed), "index": i, "path": name})
    with atomic.atomic_path(out / MANIFEST_NAME) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["prompt_id", "prompt", "seed", "index", "path"])
        w.writeheader()
        w.writerows(rows)
    return report


def _place(src: Path, dst: Path, mode: str) -> None:
    with atomic.atomic_path(dst) as tmp:
        if mode == "copy":
            shutil.copyfile(src, tmp)
        elif mode == "hardlink":
            os.link(src, tmp)
        else:
            os.symlink(src.resolve(), tmp)


# -- check -----------------------------------------------------------------------------------------
def check_folder(suite_name: str, folder: str, manifest: str | None = None) -> Any:
    """Coverage of a suite by a folder of videos (see FolderAdapter.coverage)."""
    from vdmbench.adapters.base import GenerationRequest
    from vdmbench.adapters.folder import FolderAdapter
    from vdmbench.config.suite import load_suite

    suite = load_suite(suite_name)
    # A folder written by `vbench export` carries its manifest: (prompt id, seed) -> file, which
    # also holds when the suite's seeds are not 0..n-1 (VBench's names carry the seed's position).
    own = Path(folder) / MANIFEST_NAME
    if manifest is None and own.is_file():
        manifest = str(own)
    adapter = FolderAdapter("check", folder, manifest=manifest)
    requests = [
        GenerationRequest(prompt=p.text, seed=s, num_frames=suite.num_frames, height=suite.height,
                          width=suite.width, fps=suite.fps, task=suite.task, extra={"prompt_id": p.id})
        for p, s in suite.samples()
    ]
    return adapter.coverage(requests)


# -- CLI -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vdmbench vbench", description="VBench interop: import prompts, export clips, check a folder.",
        epilog="`vdmbench vbench score DIR --metrics ...` computes VBench's dimensions and Quality/Total scores of a "
               "folder of VBench-named videos (see `vdmbench vbench score --help`).")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="VBench prompt JSON -> a suite YAML")
    imp.add_argument("json", help="VBench's prompt file (e.g. VBench_full_info.json)")
    imp.add_argument("-o", "--out", required=True, help="suite YAML to write (e.g. suites/vbench.yaml)")
    imp.add_argument("--name", help="suite name (default: the output file's stem)")
    imp.add_argument("--dimension", action="append", help="keep only prompts of this dimension (repeatable)")
    imp.add_argument("--seeds", type=int, default=VBENCH_SAMPLES_PER_PROMPT,
                     help="samples per prompt (VBench: %(default)s, exported as indices 0..4)")
    imp.add_argument("--first-seed", type=int, default=0,
                     help="seeds are FIRST .. FIRST+SEEDS-1, one per video (default: %(default)s)")
    imp.add_argument("--dimension-metrics", action="store_true",
                     help="score the imported dimensions that vdmbench computes, plus vbench_scores")
    imp.add_argument("--num-frames", type=int, default=16)
    imp.add_argument("--height", type=int, default=320)
    imp.add_argument("--width", type=int, default=512)
    imp.add_argument("--fps", type=float, default=8.0)
    imp.add_argument("--metric", action="append", help="metric for the suite (repeatable; default flicker)")
    exp = sub.add_parser("export", help="a run's clips -> a folder with VBench names")
    exp.add_argument("run_id", help="run id (or a unique prefix)")
    exp.add_argument("-o", "--out", type=Path,
                     help="folder to write the clips to (default: vbench/RUN_ID next to the database, "
                          "i.e. results/vbench/RUN_ID)")
    exp.add_argument("--db", default=str(DEFAULT_DB), help="results database (default: %(default)s)")
    exp.add_argument("--mode", choices=["copy", "hardlink", "symlink"], default="copy")
    chk = sub.add_parser("check", help="which videos of a suite a folder has, lacks, or has extra")
    chk.add_argument("suite", help="suite name or YAML path")
    chk.add_argument("folder")
    chk.add_argument("--manifest", help="manifest CSV/JSON (prompt_id or prompt, seed, path)")
    args = parser.parse_args(argv)

    if args.command == "import":
        try:
            entries = json.loads(Path(args.json).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{args.json}: cannot read VBench prompt JSON ({e})") from e
        out = Path(args.out)
        suite = import_prompts(
            entries, name=args.name or out.stem, dimensions=args.dimension, seeds=args.seeds,
            first_seed=args.first_seed, num_frames=args.num_frames, height=args.height, width=args.width,
            fps=args.fps, metrics=args.metric, score_dimensions=args.dimension_metrics, source=args.json,
        )
        write_suite_yaml(suite, out)
        texts = [p["text"] for p in suite["prompts"]]
        print(f"wrote {out}: {len(texts)} prompts ({len(set(texts))} distinct texts) x {args.seeds} seeds")
        return 0
    if args.command == "export":
        rep = export_run(Path(args.db), args.run_id, args.out, args.mode)
        print(f"exported {len(rep.written)} clips to {rep.out} (VBench naming, {MANIFEST_NAME} alongside)")
        if rep.duplicates:
            print(f"  {len(rep.duplicates)} samples share a prompt text with an earlier one: written under "
                  f"their prompt id instead (VBench looks clips up by text; the manifest lists them): "
                  f"{', '.join(rep.duplicates[:5])}")
        if rep.skipped:
            print(f"  {len(rep.skipped)} samples skipped: {', '.join(rep.skipped[:5])}")
        return 0
    cov = check_folder(args.suite, args.folder, args.manifest)
    print(f"{args.folder}: {cov.summary()}")
    for line in cov.missing[:20]:
        print(f"  missing {line}")
    if len(cov.missing) > 20:
        print(f"  ... and {len(cov.missing) - 20} more missing")
    for name in cov.extra[:20]:
        print(f"  extra   {name}")
    if len(cov.extra) > 20:
        print(f"  ... and {len(cov.extra) - 20} more extra")
    return 1 if cov.missing else 0


if __name__ == "__main__":
    sys.exit(main())

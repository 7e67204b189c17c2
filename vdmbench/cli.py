"""The `vdmbench` command line.

`vdmbench run` is a Hydra application (config groups suite= and model=, overrides, -m multirun);
the other commands are plain argparse. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

from vdmbench.errors import ConfigError, VdmbenchError

DEFAULT_DB = "results/vdmbench.duckdb"

RUN_HELP = """\
usage: vdmbench run [suite=NAME] [model=NAME] [KEY=VALUE ...] [-m] [--dry-run]

Generate the suite's clips with the model, score them and store everything in the database,
then print the suite's leaderboard. A killed run resumes where it stopped when run again;
clips already generated for the same model config are reused from the cache.

  suite=NAME          a suite of `vdmbench list suites` (default: smoke)
  model=NAME          a model of `vdmbench list models` (default: reference-unet3d)
  results_dir=DIR     where videos, previews, caches and the database go (default: results)
  db=PATH             database file (default: RESULTS_DIR/vdmbench.duckdb)
  device=auto|cpu|cuda[:N]   batch_size=N   precision=fp32|bf16|fp16
  shard=I/N           only every N-th sample starting at I (combine with `vdmbench merge`)
  resume=false        start a new run even if an unfinished one exists
  cache=false         regenerate clips even when cached
  run_id=ID           force a run id (resumes that run if it exists)
  timeout=SECONDS     per request: a backend call that hangs longer is recorded as failed
  suite.seeds=[0,1,2] model.params.steps=10 ...   override any field of the suite or model
  --dry-run           print the plan (samples, cached clips, paid API calls); generate nothing
  -m, --multirun      sweep: e.g. -m model=reference-unet3d,reference-temporal-attention
                      (hydra/launcher=joblib for local parallel jobs, =submitit_slurm for SLURM)
  --cfg job           print the resolved config and exit (Hydra)

Your own suites/models: put them in DIR/suites/NAME.yaml or DIR/adapters/NAME.yaml and add
hydra.searchpath=[file://DIR].

examples:
  vdmbench run suite=smoke model=reference-unet3d
  vdmbench run suite=t2v-mini model=my-videos batch_size=4
  vdmbench run -m suite=smoke model=reference-unet3d,reference-unet3d-undertrained
"""


_HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                      "--config-dir", "-cd", "--experimental-rerun"}


def _search_dirs(argv: list[str]) -> list[Path]:
    """Folders the user added with hydra.searchpath=[file://DIR,...]."""
    dirs = []
    for arg in argv:
        if arg.startswith("hydra.searchpath="):
            for item in arg.partition("=")[2].strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(Path(item[len("file://"):]))
    return dirs


def translate_run_args(argv: list[str]) -> list[str]:
    """Map the user-facing `suite=`/`model=` onto the Hydra default-list entries, validate the
    names early (one-line errors), and merge the user's search path with the shipped configs."""
    from vdmbench.adapters import list_adapter_configs
    from vdmbench.resources import config_root
    from vdmbench.suites import list_suites

    extra = _search_dirs(argv)
    known = {"suite": set(list_suites()), "model": set(list_adapter_configs())}
    for d in extra:
        known["suite"] |= {p.stem for p in (d / "suites").glob("*.yaml")}
        known["model"] |= {p.stem for p in (d / "adapters").glob("*.yaml")}
    out: list[str] = []
    flags: list[str] = []  # Hydra's own options must precede the overrides
    args = iter(argv)
    for arg in args:
        key, sep, value = arg.partition("=")
        if arg in _HYDRA_VALUE_FLAGS:
            flags += [arg, next(args, "")]
        elif arg.startswith("-") and arg != "--dry-run":
            flags.append(arg)
        elif arg == "--dry-run":
            out.append("dry_run=true")
        elif arg.startswith("hydra.searchpath="):
            continue
        elif sep and key in ("suite", "model"):
            for name in value.split(","):
                if name not in known[key] and not _sweep_syntax(name):
                    raise ConfigError(
                        f"unknown {key} {name!r}; known: {', '.join(sorted(known[key]))} "
                        f"(`vdmbench list {key}s`; own files need hydra.searchpath=[file://DIR])"
                    )
            out.append(f"{'suites' if key == 'suite' else 'adapters'}@{key}={value}")
        else:
            out.append(arg)
    paths = ",".join(f"file://{d.resolve()}" for d in [*extra, config_root()])
    out.append(f"hydra.searchpath=[{paths}]")
    return flags + out


def _sweep_syntax(value: str) -> bool:
    return any(c in value for c in "()[]*$")


def cmd_run(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(RUN_HELP)
        return 0
    from vdmbench.hydra_app import hydra_run

    overrides = translate_run_args(argv)
    saved = sys.argv
    sys.argv = ["vdmbench run", *overrides]
    try:
        hydra_run()
    finally:
        sys.argv = saved
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from vdmbench.report import print_leaderboard
    from vdmbench.store import Store

    print_leaderboard(Store(args.db, read_only=True), args.suite)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from vdmbench.report import make_console

    console = make_console()
    if args.what == "suites":
        from vdmbench.suites import list_suites, load_suite

        table = Table("suite", "version", "task", "samples", "frames", "size", "metrics", title="suites")
        for name, path in list_suites().items():
            try:
                s = load_suite(path)
            except VdmbenchError as e:
                table.add_row(name, "-", "-", "-", "-", "-", f"[red]invalid: {e}[/red]")
                continue
            metrics = ", ".join(m if isinstance(m, str) else m["name"] for m in s.metrics)
            table.add_row(name, str(s.version), s.task, str(len(s.samples())), str(s.num_frames),
                          f"{s.width}x{s.height}", metrics)
        console.print(table)
    elif args.what == "models":
        from vdmbench.adapters import list_adapter_configs, load_adapter_config

        table = Table("model", "adapter", "tasks", "description", title="models")
        for name, path in list_adapter_configs().items():
            try:
                cfg = load_adapter_config(str(path))
            except VdmbenchError as e:
                table.add_row(name, "-", "-", f"[red]invalid: {e}[/red]")
                continue
            tasks = ", ".join(cfg.get("tasks") or ["t2v"])
            table.add_row(name, cfg["adapter"], tasks, str(cfg.get("description", "")).strip())
        console.print(table)
    elif args.what == "metrics":
        from vdmbench.metrics import available_metrics

        table = Table("metric", "outputs", "better", "kind", "needs", "description", title="metrics")
        for name, cls in sorted(available_metrics().items()):
            doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
            better = "higher" if cls.higher_is_better else "lower"
            table.add_row(name, ", ".join(cls.outputs), better, "per clip" if cls.per_sample else "per set",
                          ", ".join(sorted(cls.requires)) or "-", doc[0] if doc else "")
        console.print(table)
    else:  # runs
        import pandas as pd

        from vdmbench.store import Store

        df = Store(args.db, read_only=True).runs()
        if df.empty:
            console.print("No runs yet; start one with `vdmbench run suite=smoke model=reference-unet3d`.")
            return 0
        table = Table(title=f"runs in {args.db}")
        for col in df.columns:
            table.add_column(col, no_wrap=col == "run_id")
        for rec in df.itertuples(index=False):
            table.add_row(*("-" if pd.isna(x) else str(x)[:19] if isinstance(x, pd.Timestamp) else str(x) for x in rec))
        console.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vdmbench.export import export_run
    from vdmbench.store import Store

    path = export_run(Store(args.db, read_only=True), args.run, args.format, args.out)
    print(f"wrote {path}")
    return 0


# Commands whose code lives in its own module: name -> (module:function taking argv, help).
_DELEGATED: dict[str, tuple[str, str]] = {
    "train": ("vdmbench.reference.train:main", "train a bundled reference model"),
    "leaderboard": ("vdmbench.leaderboard_app:main", "start the Streamlit leaderboard"),
    "gate": ("vdmbench.gate:main", "pass/fail a candidate run against a baseline (CI)"),
    "merge": ("vdmbench.merge:main", "merge the shards of a sharded run"),
    "reproduce": ("vdmbench.reproduce:main", "re-run a stored run from its manifest and diff it"),
    "score": ("vdmbench.score:main", "score videos with metrics (distributed with torchrun)"),
    "vbench": ("vdmbench.vbench:main", "VBench interop: import prompts, export clips, check a folder"),
}


def _available_delegates() -> dict[str, tuple[str, str]]:
    import importlib.util

    out = {}
    for name, (target, help_text) in _DELEGATED.items():
        module = target.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            out[name] = (target, help_text)
    return out


def _delegate(target: str) -> Callable[[list[str]], int]:
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)


def build_parser(delegates: dict[str, tuple[str, str]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vdmbench",
        description="Benchmark video generators: run models on prompt suites, score, store, compare, gate.",
        epilog="Quick start: vdmbench run suite=smoke model=reference-unet3d  (then: vdmbench show)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="generate, score and store a suite on a model (Hydra overrides; see run --help)",
                   add_help=False)
    p = sub.add_parser("show", help="print the leaderboard of the stored runs")
    p.add_argument("--suite", help="only this suite")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    p = sub.add_parser("list", help="list suites, models, metrics or stored runs")
    p.add_argument("what", choices=["suites", "models", "metrics", "runs"])
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database for 'runs' (default: {DEFAULT_DB})")
    p = sub.add_parser("export", help="export one run (samples, per-sample and run metrics)")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--format", choices=["parquet", "csv", "json"], default="parquet")
    p.add_argument("--out", type=Path, help="output file or folder (default: results/exports/)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    for name, (_, help_text) in delegates.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    delegates = _available_delegates()
    try:
        if argv and argv[0] == "run":
            return cmd_run(argv[1:])
        if argv and argv[0] in delegates:
            return int(_delegate(delegates[argv[0]][0])(argv[1:]) or 0)
        parser = build_parser(delegates)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return {"show": cmd_show, "list": cmd_list, "export": cmd_export}[args.command](args)
    except VdmbenchError as e:
        print(f"vdmbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vdmbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

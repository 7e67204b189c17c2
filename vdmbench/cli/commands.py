"""The `vdmbench` command line.

`vdmbench run` is a Hydra application (config groups suite= and model=, overrides, -m multirun);
the other commands are plain argparse. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vdmbench.core.errors import ConfigError, VdmbenchError
from vdmbench.core.paths import DEFAULT_DB

if TYPE_CHECKING:
    from vdmbench.cli.held_prompts import HeldPrompts

_RUN_INTRO = """\
usage: vdmbench run [suite=NAME] [model=NAME] [KEY=VALUE ...] [-m] [--dry-run]

Generate the suite's clips with the model, score them and store everything in the database,
then print the suite's leaderboard. A killed run resumes where it stopped when run again;
clips already generated for the same model config are reused from the cache.
"""

_RUN_OUTRO = """\
Exit codes: 0 finished; 1 no sample succeeded, or more failed than max_failed; 2 a usage or
configuration error; 141 the output pipe was closed (e.g. `| head`).

Your own suites/models: put them in DIR/suites/NAME.yaml or DIR/adapters/NAME.yaml and add
hydra.searchpath=[file://DIR].

examples:
  vdmbench run suite=smoke model=reference-unet3d
  vdmbench run suite=t2v-mini model=my-videos batch_size=4
  vdmbench run -m suite=smoke model=reference-unet3d,reference-unet3d-undertrained
"""


def run_help() -> str:
    """`vdmbench run --help`: the option lines come from RunOptions (vdmbench/run/options.py)."""
    import textwrap

    from vdmbench.run.options import run_option_specs

    chosen = _default_choices()
    rows = [
        ("suite=NAME", f"a suite of `vdmbench list suites` (default: {chosen.get('suite', '-')})"),
        ("model=NAME", f"a model config of `vdmbench list models` (default: {chosen.get('model', '-')})"),
        *((f"{s.key}={s.usage}", f"{s.help} (default: {s.shown})") for s in run_option_specs()),
        ("suite.seeds=[0,1,2] model.params.steps=10 ...", "override any field of the suite or model config"),
        ("--dry-run", "the same as dry_run=true"),
        ("-m, --multirun", "sweep: e.g. -m model=reference-unet3d,reference-temporal-attention "
                           "(hydra/launcher=joblib for local parallel jobs, =submitit_slurm for SLURM)"),
        ("--cfg job", "print the resolved config and exit (Hydra)"),
    ]
    width, indent = 108, 2 + 30
    lines = []
    for left, text in rows:
        head = f"  {left}"
        if len(head) >= indent - 1:
            lines.append(head)
            head = ""
        lines += textwrap.wrap(text, width, initial_indent=head.ljust(indent), subsequent_indent=" " * indent)
    return "\n".join([_RUN_INTRO, *lines, "", _RUN_OUTRO])


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


def config_files(group: str, extra: list[Path]) -> dict[str, Path]:
    """name -> YAML file of a config group (`suites` or `adapters`), resolved the way Hydra does:
    the user's folders first, in the order given, then the shipped configs."""
    from vdmbench.core.paths import config_root

    found: dict[str, Path] = {}
    for root in [*extra, config_root()]:
        for path in sorted((root / group).glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


# `suite=NAME` and `model=NAME` pick a file of these config groups (the folders suites/ and
# adapters/, in the repository and in the user's search-path folders); the composed config holds
# it under the key `suite` / `model` (run.yaml: `- adapters@model: reference-unet3d`).
_GROUPS = {"suite": "suites", "model": "adapters"}


def hydra_group_override(key: str, value: str) -> str:
    """`model=X` as Hydra must be told it: `adapters@model=X` (and `suite=X`: `suites@suite=X`).

    The one translation Hydra 1.3 cannot do itself: it takes `KEY=VALUE` as the choice of a config
    group only where KEY is a group, i.e. a folder on the search path (hydra/_internal/
    defaults_list.py, `Overrides.__init__`: `repo.group_exists(override.key_or_group)`), and it
    matches a defaults-list entry by its override key `adapters@model`
    (`GroupDefault.get_override_key`), never by the package `model` alone. There are no aliases
    for config groups. So `model=X` reaches Hydra as a value override that silently replaces the
    composed model config with the string "X" (`--cfg job` prints `model: X`). Only a group folder
    named `model/` would make it native, and the folder is `adapters/`."""
    return f"{_GROUPS[key]}@{key}={value}"


def _group_key(key: str) -> str | None:
    """`model`, `adapters@model` -> `model`; `suite`, `suites@suite` -> `suite`; else None."""
    for short, group in _GROUPS.items():
        if key in (short, f"{group}@{short}"):
            return short
    return None


def translate_run_args(argv: list[str], held: HeldPrompts | None = None) -> list[str]:
    """The command line as Hydra takes it: `suite=`/`model=` as group overrides (see
    hydra_group_override), `--dry-run` as `dry_run=true` (Hydra's parser refuses unknown flags),
    and the user's search path followed by the shipped configs' folder (a `hydra.searchpath=`
    override replaces the list). The names given are checked early, and so are the files they
    pick (one-line errors that name the file). With `held`, large prompt lists of the chosen
    suites are held back from Hydra (cli/held_prompts.py) and their light copies come first."""
    from vdmbench.core.paths import config_root

    extra = _search_dirs(argv)
    known = {key: config_files(group, extra) for key, group in _GROUPS.items()}
    chosen = dict(_default_choices())
    out: list[str] = []
    flags: list[str] = []  # Hydra's own options must precede the overrides
    args = iter(argv)
    for arg in args:
        key, sep, value = arg.partition("=")
        group_key = _group_key(key) if sep else None
        if arg in _HYDRA_VALUE_FLAGS:
            flags += [arg, next(args, "")]
        elif arg.startswith("-") and arg != "--dry-run":
            flags.append(arg)
        elif arg == "--dry-run":
            out.append("dry_run=true")
        elif arg.startswith("hydra.searchpath="):
            continue
        elif group_key is not None:
            for name in value.split(","):
                if name not in known[group_key] and not _sweep_syntax(name):
                    raise ConfigError(
                        f"unknown {group_key} {name!r}; known: {', '.join(sorted(known[group_key]))} "
                        f"(`vdmbench list {group_key}s`; own files need hydra.searchpath=[file://DIR])"
                    )
            chosen[group_key] = value
            out.append(hydra_group_override(group_key, value))
        else:
            out.append(arg)
    for key, value in chosen.items():
        for name in value.split(","):
            if name in known[key]:
                data = check_config_file(key, known[key][name], overridden=_overrides_group(out, key))
                if held is not None and key == "suite" and not _overrides_prompts(out):
                    held.hold(name, known[key][name], data)
    first = [held.folder] if held is not None and held.active else []
    paths = ",".join(f"file://{d.resolve()}" for d in [*first, *extra, config_root()])
    out.append(f"hydra.searchpath=[{paths}]")
    return flags + out


def _sweep_syntax(value: str) -> bool:
    return any(c in value for c in "()[]*$")


def _default_choices() -> dict[str, str]:
    """The suite and model `vdmbench run` uses when none is given (conf/run.yaml's defaults)."""
    import yaml

    try:
        defaults = yaml.safe_load((Path(__file__).parent / "conf" / "run.yaml").read_text())["defaults"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    out = {}
    for entry in defaults:
        if isinstance(entry, dict):
            for k, v in entry.items():
                group, _, key = str(k).partition("@")
                if _GROUPS.get(key) == group and isinstance(v, str):
                    out[key] = v
    return out


def _overrides_prompts(overrides: list[str]) -> bool:
    """Whether the command line sets or edits the suite's prompt list (suite.prompts=..., +suite.prompts.0.x=...)."""
    keys = (o.lstrip("+~").partition("=")[0] for o in overrides)
    return any(k == "suite.prompts" or k.startswith(("suite.prompts.", "suite.prompts[")) for k in keys)


def _overrides_group(overrides: list[str], key: str) -> bool:
    """Whether the command line changes fields of the suite or model config (suite.seeds=..., +model.x=...)."""
    return any(o.lstrip("+~").startswith(f"{key}.") for o in overrides)


def check_config_file(key: str, path: Path, *, overridden: bool = False) -> Any:
    """Fail early, naming the file, on a suite or model config file that is not valid YAML or not
    a valid suite / model config; return its content (read as Hydra's YAML loader reads it). The
    content is checked as it is on disk, so it is skipped where Hydra would change it before use
    (command-line overrides of that group, interpolations, a defaults list, a @package directive):
    a file that is valid after composition is never refused here; the composed config is
    validated again anyway."""
    from vdmbench.config.model import validate_model_config
    from vdmbench.config.schema import read_yaml_as_hydra
    from vdmbench.config.suite import parse_suite

    data = read_yaml_as_hydra(path)
    if overridden or "@package" in path.read_text(encoding="utf-8", errors="replace"):
        return data
    if isinstance(data, dict) and ("defaults" in data or "${" in repr(data)):
        return data
    if key == "suite":
        parse_suite(data, source=str(path))
    else:
        validate_model_config(data, str(path))
    return data


def _one_line(error: BaseException) -> str:
    """A Hydra/OmegaConf/yaml error's text as one line (theirs span several: the message, a hint,
    then `full_key:`/`object_type=` details)."""
    import yaml

    from vdmbench.config.schema import yaml_error_message

    if isinstance(error, yaml.YAMLError):
        mark = getattr(error, "problem_mark", None)
        return yaml_error_message(mark.name if mark is not None else "config", error)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("full_key:", "object_type=", "reference_type="))]
    text = " ".join(lines) or type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text += f" ({_one_line(cause)})"
    return text


def check_results_dir(argv: list[str]) -> None:
    """Create results_dir and make sure files can be written there, before Hydra creates its own
    output folder in it (which fails with a long traceback)."""
    import tempfile

    from vdmbench.run.options import config_defaults

    values = [a.partition("=")[2] for a in argv if a.lstrip("+").startswith("results_dir=")]
    value = values[-1] if values else str(config_defaults()["results_dir"])
    if "${" in value or "," in value:  # an interpolation or a sweep: Hydra decides
        return
    folder = Path(value).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vdmbench-write-check-"):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"results_dir {value} is not writable ({reason}); choose another with results_dir=DIR"
        ) from e


_INFO_FLAGS = {"--cfg", "-c", "--info", "-i", "--hydra-help", "--shell-completion", "-sc"}


def cmd_run(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(run_help())
        return 0
    from vdmbench.cli.held_prompts import held_prompts
    from vdmbench.cli.run_app import make_hydra_run

    printing = bool(_INFO_FLAGS & set(argv))  # those only print the config; they create no folder
    with held_prompts() as held:
        overrides = translate_run_args(argv, held=None if printing else held)
        if not printing:
            check_results_dir(overrides)
        saved = sys.argv
        sys.argv = ["vdmbench run", *overrides]
        try:
            with _hydra_errors_raised():
                make_hydra_run(held)()
        finally:
            sys.argv = saved
    return 0


class _JobFailed(VdmbenchError):
    """A job's own error that vdmbench passes through Hydra (e.g. a multirun job whose samples all
    failed): its message is already written for the user; exit 1, as Hydra would."""

    exit_code = 1


@contextlib.contextmanager
def _hydra_errors_raised() -> Iterator[None]:
    """Turn Hydra's composition errors into one-line ConfigErrors. Hydra prints errors itself
    (often a long traceback) and exits 1; HYDRA_FULL_ERROR=1 makes it raise them to us instead.
    A user who set HYDRA_FULL_ERROR wants the full traceback and gets it."""
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if os.environ.get("HYDRA_FULL_ERROR"):
        yield
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as e:
        if type(e).__module__.startswith("vdmbench."):  # raised by the job, not by composition
            raise _JobFailed(_one_line(e).removeprefix("vdmbench: error: ")) from e
        raise ConfigError(_one_line(e)) from e
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


def _reader(db: str | Path) -> Any:
    """The database opened read-only for a command that shows it; a newer file's schema is said
    on stderr, once (`run` refuses such a file instead)."""
    from vdmbench.store.database import Store

    store = Store(db, read_only=True)
    warning = store.newer_schema_warning()
    if warning:
        print(f"vdmbench: warning: {warning}", file=sys.stderr)
    return store


def cmd_show(args: argparse.Namespace) -> int:
    from vdmbench.cli.terminal import make_console, print_leaderboard

    print_leaderboard(_reader(args.db), args.suite, make_console())
    return 0


def _list_dirs(searchpath: list[Path]) -> list[Path]:
    """The folders given to `vdmbench list` (--searchpath DIR or hydra.searchpath=[file://DIR])."""
    for d in searchpath:
        if not d.is_dir():
            raise ConfigError(f"search path {d} is not a folder; give a folder that holds suites/ or adapters/")
    return list(searchpath)


def _config_rows(table: Any, files: dict[str, Path], dirs: list[Path]) -> Iterator[tuple[str, Path, tuple[str, ...]]]:
    """(name, file, extra cells): with user folders on the search path, a last column says where
    each config comes from (a user's file shadows a shipped one of the same name, as in `run`)."""
    if dirs:
        table.add_column("from")
    for name, path in files.items():
        own = next((d for d in dirs if path.is_relative_to(d)), None)
        yield name, path, ((str(own) if own else "shipped"),) if dirs else ()


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from vdmbench.core.formatting import make_console

    console = make_console()
    dirs = _list_dirs(args.searchpath)
    if args.what == "suites":
        from vdmbench.config.suite import load_suite

        table = Table("suite", "version", "task", "samples", "frames", "size", "metrics", title="suites")
        for name, path, source in _config_rows(table, config_files("suites", dirs), dirs):
            try:
                s = load_suite(path)
            except VdmbenchError as e:
                table.add_row(name, "-", "-", "-", "-", "-", f"[red]invalid: {e}[/red]", *source)
                continue
            metrics = ", ".join(m if isinstance(m, str) else m["name"] for m in s.metrics)
            table.add_row(name, str(s.version), s.task, str(len(s.samples())), str(s.num_frames),
                          f"{s.width}x{s.height}", metrics, *source)
        console.print(table)
    elif args.what == "models":
        from vdmbench.config.model import load_model_config

        table = Table("model", "adapter", "tasks", "description", title="models")
        for name, path, source in _config_rows(table, config_files("adapters", dirs), dirs):
            try:
                cfg = load_model_config(path)
            except VdmbenchError as e:
                table.add_row(name, "-", "-", f"[red]invalid: {e}[/red]", *source)
                continue
            tasks = ", ".join(cfg.get("tasks") or ["t2v"])
            table.add_row(name, cfg["adapter"], tasks, str(cfg.get("description", "")).strip(), *source)
        console.print(table)
    elif args.what == "metrics":
        from vdmbench.cli.metric_listing import metric_rows

        table = Table("metric", "outputs (↑ higher / ↓ lower is better)", "kind", "needs", "description",
                      title="metrics")
        for row in metric_rows():
            table.add_row(*row)
        console.print(table)
    else:  # runs
        import pandas as pd

        df = _reader(args.db).runs()
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
    from vdmbench.store.export import export_run

    path = export_run(_reader(args.db), args.run, args.format, args.out)
    print(f"wrote {path}")
    return 0


# Commands whose code lives in its own module: name -> (module:function taking argv, help).
_DELEGATED: dict[str, tuple[str, str]] = {
    "train": ("vdmbench.reference.train:main", "train a bundled reference model"),
    "leaderboard": ("vdmbench.cli.leaderboard:main", "start the Streamlit leaderboard"),
    "gate": ("vdmbench.cli.gate:main", "pass/fail a candidate run against a baseline (CI)"),
    "merge": ("vdmbench.cli.merge:main", "merge the shards of a sharded run"),
    "reproduce": ("vdmbench.cli.reproduce:main", "re-run a stored run from its manifest and diff it"),
    "score": ("vdmbench.run.score:main", "score videos with metrics (distributed with torchrun)"),
    "judge": ("vdmbench.cli.judge:main", "a VLM judge's verdicts between stored runs, ratings, agreement with people"),
    "vbench": ("vdmbench.cli.vbench:main", "VBench: import prompts, export clips, check a folder, score a folder"),
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
        epilog="Quick start: vdmbench run suite=smoke model=reference-unet3d  (then: vdmbench show). "
               "Exit codes: 0 ok, 1 a check failed, 2 bad input (a one-line error), 130 interrupted, "
               "141 the output pipe was closed (e.g. `| head`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="generate, score and store a suite on a model (Hydra overrides; see run --help)",
                   add_help=False)
    p = sub.add_parser("show", help="print the leaderboard of the stored runs")
    p.add_argument("--suite", help="only this suite")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    p = sub.add_parser("list", help="list suites, models, metrics or stored runs")
    p.add_argument("what", choices=["suites", "models", "metrics", "runs"])
    p.add_argument("--searchpath", metavar="DIR", type=Path, action="append", default=[],
                   help="also list DIR/suites/*.yaml and DIR/adapters/*.yaml (repeatable; "
                        "hydra.searchpath=[file://DIR] works too, as for run)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database for 'runs' (default: {DEFAULT_DB})")
    p = sub.add_parser("export", help="export one run (samples, per-sample and run metrics)")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--format", choices=["parquet", "csv", "json"], default="parquet")
    p.add_argument("--out", type=Path, help="output file or folder (default: results/exports/)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    for name, (_, help_text) in delegates.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


def _searchpath_as_flags(argv: list[str]) -> list[str]:
    """`list` takes hydra.searchpath=[file://DIR] like `run` does: rewrite it as --searchpath DIR."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("hydra.searchpath="):
            for d in _search_dirs([arg]):
                out += ["--searchpath", str(d)]
        else:
            out.append(arg)
    return out


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null, so the interpreter's final flush of what is still
    buffered does not raise a second BrokenPipeError (Python's documented recipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _dispatch(argv: list[str]) -> int:
    delegates = _available_delegates()
    if argv and argv[0] == "run":
        return cmd_run(argv[1:])
    if argv and argv[0] in delegates:
        return int(_delegate(delegates[argv[0]][0])(argv[1:]) or 0)
    if argv and argv[0] == "list":
        argv = _searchpath_as_flags(argv)
    parser = build_parser(delegates)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return {"show": cmd_show, "list": cmd_list, "export": cmd_export}[args.command](args)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 ok; 1 a check failed (gate, vbench check, score with nothing scored);
    2 bad input (one line on stderr); 130 interrupted; 141 stdout was closed by its reader
    (`vdmbench list runs | head -1`): the output is cut short quietly, like any Unix tool."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # a pipe buffers stdout: a closed reader shows up here, not at exit
        return code
    except VdmbenchError as e:
        print(f"vdmbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vdmbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())

"""`vdmbench gate`: pass or fail a candidate run against a baseline run, for CI.

    vdmbench gate --baseline BASE --candidate CAND [--policy NAME|FILE] [--db DB]
    vdmbench gate --baseline BASE --suite smoke --model reference-unet3d [KEY=VALUE ...]
    vdmbench gate export-baseline RUN -o baseline.json[.gz] [--db DB]

BASE and CAND are run ids (or unique prefixes) in the database, or baseline files; with --suite
and --model the candidate is run first (Hydra overrides as for `vdmbench run`) and then compared.
Exit status: 0 pass, 1 regression (or a verdict the policy's fail_on lists), 2 usage or config
error, including runs that cannot be compared (different suite or metric configuration; --force
compares them anyway). The statistics are in gate_compare.py, the outputs in gate_report.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vdmbench.core.errors import ConfigError, VdmbenchError
from vdmbench.core.paths import DEFAULT_DB
from vdmbench.gate.baseline import RunData, export_baseline, from_store, resolve_run
from vdmbench.gate.compare import GateResult, compare_runs
from vdmbench.gate.policy import Policy, list_policies, load_policy
from vdmbench.gate.report import (
    append_step_summary,
    print_table,
    to_json,
    to_junit,
    to_markdown,
    write_text,
)

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors, which is already the gate's usage exit status; this
    only keeps the message on one line in the vdmbench style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"vdmbench gate: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    policies = ", ".join(list_policies()) or "none"
    p = _Parser(
        prog="vdmbench gate",
        description="Compare a candidate run with a baseline run metric by metric (paired bootstrap over "
                    "prompt x seed, false-alarm control across metrics) and exit 1 on a regression.",
        epilog="Exit status: 0 pass, 1 regression, 2 usage/config error (e.g. runs of different suites). "
               "Export a baseline file: vdmbench gate export-baseline RUN -o baseline.json. "
               "See docs/ci.md for GitHub Actions and GitLab CI examples.",
    )
    p.add_argument("--baseline", required=True, metavar="BASE", help="run id in --db, or a baseline file")
    p.add_argument("--candidate", metavar="CAND", help="run id in --db, or a baseline file")
    p.add_argument("--suite", help="run the candidate on this suite first (with --model)")
    p.add_argument("--model", help="run this model as the candidate first (with --suite)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="with --suite/--model: overrides as for `vdmbench run` (results_dir=..., device=...)")
    p.add_argument("--db", default=None, help=f"results database for run ids (default: {DEFAULT_DB})")
    p.add_argument("--policy", help=f"policy name ({policies}) or YAML file (default: the suite's own policy "
                                    "in suites/gates/, else every shared metric with zero tolerance)")
    p.add_argument("--alpha", type=float, help="override the policy's false-alarm level")
    p.add_argument("--fail-on-inconclusive", action="store_true",
                   help="also exit 1 when a metric is inconclusive (a regression cannot be ruled out)")
    p.add_argument("--force", action="store_true", help="compare runs of different suites or metric configurations")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown summary")
    p.add_argument("--junit", type=Path, metavar="PATH", help="write JUnit XML (one test case per metric)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the full result as JSON")
    p.add_argument("--quiet", action="store_true", help="no terminal table")
    return p


def build_export_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vdmbench gate export-baseline",
                description="Write a finished run as a portable baseline file (JSON; gzip if the name ends in .gz) "
                            "to commit next to the CI job that gates on it.")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output file, e.g. ci/baseline-smoke.json")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default: {DEFAULT_DB})")
    return p


def run_candidate(suite: str, model: str, overrides: list[str]) -> RunData:
    """Run `model` on `suite` exactly as `vdmbench run` would, and return the finished run."""
    from hydra import compose, initialize_config_module

    from vdmbench.cli.commands import translate_run_args
    from vdmbench.cli.run_app import runner_from_config
    from vdmbench.cli.terminal import print_run_summary

    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    if bad:
        raise ConfigError(f"candidate overrides must look like KEY=VALUE, got {bad}")
    translated = translate_run_args([f"suite={suite}", f"model={model}", *overrides])
    with initialize_config_module("vdmbench.cli.conf", version_base="1.3"):
        cfg = compose("run", overrides=translated)
    runner = runner_from_config(cfg, overrides)
    summary = runner.run()
    if cfg.progress:
        print_run_summary(runner, summary)
    return from_store(runner.store, summary.run_id)


def _effective_policy(args: argparse.Namespace, suite: str | None) -> Policy:
    from dataclasses import replace

    policy = load_policy(args.policy, suite)
    if args.alpha is not None:
        if not 0 < args.alpha <= 0.5:
            raise ConfigError(f"--alpha must be in (0, 0.5], got {args.alpha}")
        policy = replace(policy, alpha=args.alpha)
    if args.fail_on_inconclusive and "inconclusive" not in policy.fail_on:
        policy = replace(policy, fail_on=(*policy.fail_on, "inconclusive"))
    return policy


def gate(args: argparse.Namespace) -> tuple[GateResult, int]:
    """Load both runs and the policy, compare, write every requested output; (result, exit code)."""
    db = args.db or DEFAULT_DB
    if args.candidate and (args.suite or args.model):
        raise ConfigError("give either --candidate or --suite/--model (to run the candidate), not both")
    if not args.candidate and not (args.suite and args.model):
        raise ConfigError("give --candidate RUN|FILE, or --suite and --model to run the candidate first")
    if args.overrides and args.candidate:
        raise ConfigError(f"unexpected arguments {args.overrides}; KEY=VALUE overrides go with --suite/--model")
    base = resolve_run(args.baseline, db)
    if args.candidate:
        cand = resolve_run(args.candidate, db)
    else:
        overrides = list(args.overrides)
        if args.db and not any(o.startswith("db=") for o in overrides):
            overrides.append(f"db={args.db}")
        cand = run_candidate(args.suite, args.model, overrides)
    policy = _effective_policy(args, base.run.get("suite"))
    result = compare_runs(base, cand, policy, force=args.force)
    failed = result.failed(policy.fail_on)
    code = EXIT_REGRESSION if failed else EXIT_PASS
    if not args.quiet:
        print_table(result, failed)
    markdown = to_markdown(result, failed)
    if args.markdown:
        write_text(args.markdown, markdown)
    if args.junit:
        write_text(args.junit, to_junit(result, failed))
    if args.json:
        write_text(args.json, to_json(result, failed, code))
    append_step_summary(markdown)
    return result, code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "export-baseline":
            args = build_export_parser().parse_args(argv[1:])
            from vdmbench.store.database import Store

            path = export_baseline(Store(args.db, read_only=True), args.run, args.out)
            print(f"wrote {path}")
            return EXIT_PASS
        args = build_parser().parse_args(argv)
        return gate(args)[1]
    except VdmbenchError as e:
        print(f"vdmbench gate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # argparse: --help (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())

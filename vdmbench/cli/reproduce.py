"""`vdmbench reproduce`: run a stored run again from its manifest and report any difference. The work is in vdmbench/run/reproduce.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from vdmbench.core.formatting import make_console
from vdmbench.core.paths import DEFAULT_DB
from vdmbench.run.reproduce import reproduce
from vdmbench.store.database import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vdmbench reproduce", description="Run a stored run again from its manifest and report any difference.")
    parser.add_argument("run", help="run id (or a unique prefix)")
    parser.add_argument("--db", default=str(DEFAULT_DB), help="results database (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="results folder of the reproduction (default: results/reproduce/RUN)")
    args = parser.parse_args(argv)
    store = Store(args.db, read_only=True)
    run_id = store.get_run(args.run)["run_id"]
    out = args.out or Path(args.db).resolve().parent / "reproduce" / run_id
    report = reproduce(store, run_id, out)
    console = make_console()
    console.print(f"reproduced run {run_id} as {report['reproduction']} in {report['db']} "
                  f"({report['threads']} CPU threads, as the original)")
    for k, (old, new) in report["package_differences"].items():
        console.print(f"  package {k}: {old} -> {new}")
    if report["differences"]:
        console.print(f"[red]{len(report['differences'])} differences[/red]:")
        for d in report["differences"][:50]:
            console.print("  " + d, markup=False)
        return 1
    console.print("[green]bit-identical: every clip (sha256) and every metric value match[/green]")
    return 0

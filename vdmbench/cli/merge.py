"""`vdmbench merge`: combine the finished shards of a sharded run into one run. The work is in vdmbench/run/merge.py."""

from __future__ import annotations

import argparse

from vdmbench.cli.terminal import print_leaderboard
from vdmbench.core.formatting import make_console
from vdmbench.core.paths import DEFAULT_DB, DEFAULT_RESULTS_DIR
from vdmbench.run.merge import find_shard_set, merge
from vdmbench.store.database import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vdmbench merge", description="Combine the finished shards of a sharded run into one run.")
    parser.add_argument("runs", nargs="*", help="shard run ids (default: the newest complete set)")
    parser.add_argument("--db", default=str(DEFAULT_DB), help="results database (default: %(default)s)")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR), help="default: %(default)s")
    args = parser.parse_args(argv)
    store = Store(args.db)
    shards = find_shard_set(store, args.runs)
    merged = merge(store, shards, args.results_dir)
    console = make_console()
    console.print(f"merged {len(shards)} shards ({', '.join(s['run_id'] for s in shards)}) into run {merged}")
    print_leaderboard(store, shards[0]["suite"], console)
    return 0

"""`vdmbench judge compare RUN RUN ...`: a VLM judge's verdicts between the clips of stored runs
(same prompt and seed, asked in both orders), Bradley-Terry ratings like the arena's, and, when
people voted on the same suite, the judge's agreement with them (docs/judge.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vdmbench.core.errors import ConfigError
from vdmbench.core.paths import DEFAULT_DB


def _judge_config(path: str, settings: list[str]) -> dict[str, Any]:
    """The judge mapping of a YAML file (or a shipped name: cli/conf/judge/NAME.yaml), with KEY=VALUE settings."""
    import yaml

    from vdmbench.config.schema import read_yaml_file

    shipped = Path(__file__).parent / "conf" / "judge" / f"{path}.yaml"
    data = read_yaml_file(shipped if not Path(path).is_file() and shipped.is_file() else path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a judge mapping (backend, base_url, model, ...)")
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        data[key] = yaml.safe_load(value)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vdmbench judge", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="judge the clips of two or more runs against each other")
    cmp.add_argument("runs", nargs="+", help="run ids (or unique prefixes) of one suite")
    cmp.add_argument("--judge", required=True,
                     help="judge YAML (backend, base_url, model, api_key_env, ...) or a shipped name: openai, "
                          "vllm-qwen2.5-vl-7b")
    cmp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key of the judge config (repeatable), e.g. --set base_url=http://host:8000/v1")
    cmp.add_argument("--criterion", required=True, help="what 'better' means, e.g. 'visual quality'")
    cmp.add_argument("--db", default=str(DEFAULT_DB), help="results database (default: %(default)s)")
    cmp.add_argument("--cache-dir", type=Path,
                     help="where every call is cached (default: cache/judge next to the database)")
    cmp.add_argument("--out", type=Path, help="also write the votes here (CSV)")
    args = ap.parse_args(argv)

    from vdmbench.core import atomic
    from vdmbench.dashboard.arena import bradley_terry
    from vdmbench.judges import build_judge
    from vdmbench.metrics.judge_pairwise import compare_runs
    from vdmbench.store import Store

    store = Store(args.db)  # writable: the votes are stored next to the arena's human votes
    runs = [store.get_run(r)["run_id"] for r in args.runs]
    cache = args.cache_dir or Path(args.db).parent / "cache" / "judge"
    judge = build_judge(_judge_config(args.judge, args.set), cache)
    votes = compare_runs(store, runs, judge, args.criterion)
    suites = {store.get_run(r)["suite"] for r in runs}  # compare_runs refuses runs of different suites
    if votes.empty:
        print("no (prompt, seed) was generated successfully by both runs of a pair: nothing to judge")
    else:
        stored = store.record_judge_votes(votes, suite=next(iter(suites)), judge=judge.label(),
                                          criterion=args.criterion)
        print(f"stored {stored} judge votes ({judge.label()}) in {args.db} (table judge_votes)")
    if args.out is not None:
        atomic.write_text(args.out, votes.to_csv(index=False))
        print(f"wrote {len(votes)} votes to {args.out}")
    decided = votes[votes.winner.notna()]
    print(f"{len(votes)} pairs judged on '{args.criterion}'; {int((decided.winner == 'tie').sum())} ties "
          "(a verdict that follows the position is a tie)")
    if not decided.empty:
        print(bradley_terry(decided).to_string(index=False))
    suite = next(iter(suites))
    human = store.votes(suite)
    if not human.empty:
        from vdmbench.core.errors import MetricInputError
        from vdmbench.core.vote_agreement import calibration

        # Every stored vote of this judge and criterion on the suite (earlier comparisons too).
        stored_votes = store.judge_votes(suite, args.criterion)
        mine = stored_votes[stored_votes.judge == judge.label()] if not stored_votes.empty else votes
        try:
            agreement = calibration(human, mine)
        except MetricInputError as e:
            print(f"agreement with the arena's human votes: {e}")
        else:
            print(f"agreement with the arena's {len(human)} human votes on {suite} ({len(mine)} stored votes of this "
                  f"judge on '{args.criterion}', {agreement['matched_votes']} matched, {agreement['ci']}): " + "; ".join(
                      f"{k} {_fmt(agreement[k])} {_fmt_ci(agreement.get(f'{k}_ci'))}"
                      for k in ("accuracy", "accuracy_decisive", "spearman", "kendall")))
    return 0


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def _fmt_ci(ci: Any) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""

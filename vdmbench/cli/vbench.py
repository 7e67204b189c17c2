"""`vdmbench vbench ...`: VBench's formats (import, export, check: interop/vbench.py) and `score`,
which computes VBench's dimensions and scores of a folder of VBench-named videos (run/vbench_score.py)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    args = list(argv or [])
    if args[:1] == ["score"]:
        from vdmbench.run.vbench_score import main as score_main

        return score_main(args[1:])
    from vdmbench.interop.vbench import main as formats_main

    return formats_main(args)

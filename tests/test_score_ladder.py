"""`vdmbench score` reports each set metric's sample-size ladder (core/ladder.py) like a run does:
in its JSON, and as a warning line (plus the rule) when the value has not settled."""

from __future__ import annotations

import json

from tests._clips import moving_squares, write_folder
from vdmbench.core.ladder import ladder_sizes
from vdmbench.run import score


def test_score_reports_the_ladder_and_warns_when_not_settled(tmp_path, capsys):
    real = write_folder(tmp_path / "real", moving_squares(8, 16, 32, 32, seed=1))
    fake = write_folder(tmp_path / "fake", moving_squares(8, 16, 32, 32, seed=2, speed=6.0))
    out = tmp_path / "out.json"
    args = [str(fake), "--reference", str(real), "--metrics", "[{name: fvd, features: random-i3d, resize: 32, ci: false}]",
            "--results-dir", str(tmp_path / "results"), "--workers", "0", "--batch-size", "4", "--threads", "1",
            "--json", str(out)]
    assert score.main(args) == 0
    result = json.loads(out.read_text())
    ladder = result["ladders"]["fvd"]
    assert [r["n"] for r in ladder["ladder"]] == ladder_sizes(8)
    assert ladder["ladder"][-1]["value"] == result["metrics"]["fvd"]  # the full-n rung is the headline
    # 8 clips, no CI: FVD's 1/n bias moves the value by more than 5% at the last doubling
    assert ladder["settled"] is False
    printed = capsys.readouterr().out
    assert f"warning: {ladder['ladder_warning']}" in printed
    assert ladder["ladder_rule"] in printed

"""A run stores the ladder of every set metric in run_metrics.details, and its summary warns about
the ones that have not settled (the contract the dashboard's ladder plot reads)."""

from __future__ import annotations

import math

from rich.console import Console

from vdmbench.cli.terminal import print_run_summary
from vdmbench.config.suite import parse_suite
from vdmbench.core.ladder import RULE, judge_ladder
from vdmbench.run.runner import Runner, RunOptions

SQUARE = {"name": "square", "adapter": "callable", "params": {"target": "tests.fixtures.generators:moving_square"}}
SUITE = {
    "name": "ladder", "num_frames": 6, "height": 16, "width": 16, "fps": 8, "seeds": [0, 1, 2],
    "prompts": [{"id": c, "text": f"prompt {c}"} for c in "abcd"],  # 12 clips: ladder 3, 6, 12
    "reference": {"source": "shapes", "n": 12, "seed": 5},
    "metrics": [
        {"name": "fvd", "features": "random-i3d", "resize": 32, "repeat_frames": 2, "n_boot": 20},
        {"name": "kvd", "features": "random-i3d", "resize": 32, "repeat_frames": 2, "n_boot": 20, "subsets": 3},
        {"name": "jedi", "features": "random-vjepa", "n_boot": 20},
        "flicker",
    ],
}


def test_run_stores_each_set_metrics_ladder_and_warns_when_not_settled(tmp_path):
    runner = Runner(parse_suite(SUITE), SQUARE, RunOptions(results_dir=tmp_path, progress=False, batch_size=4))
    summary = runner.run()
    assert summary.ok == 12
    rows = {r.metric: r for r in runner.store.run_metrics(summary.run_id)}
    for name in ("fvd", "kvd", "jedi"):
        row = rows[name]
        d = row.details
        assert [r["n"] for r in d["ladder"]] == [3, 6, 12] and d["ladder_rule"] == RULE
        last = d["ladder"][-1]  # the stored headline, through the database's JSON
        assert math.isclose(last["value"], row.value, rel_tol=1e-12) and last["ci_low"] == row.ci_low
        assert last["ci_high"] == row.ci_high and all(r["ci_low"] <= r["ci_high"] for r in d["ladder"])
        assert d["settled"] is judge_ladder(d["ladder"])[0] and ("ladder_warning" in d) is (not d["settled"])
    assert "ladder" not in rows["flicker"].details  # per-sample metrics have no ladder
    console = Console(record=True, width=300)
    print_run_summary(runner, summary, console)
    text = console.export_text()
    unsettled = [rows[n].details["ladder_warning"] for n in ("fvd", "kvd", "jedi") if not rows[n].details["settled"]]
    assert unsettled, "12 clips of one moving square against shapes clips: something has not settled"
    for line in unsettled:
        assert line in text
    assert text.count("(rule: ") == 1

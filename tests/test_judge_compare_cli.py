"""`vdmbench judge compare RUN RUN --judge ... --criterion ...`: a judge's verdicts between stored
runs through the command line, ratings printed, votes written, every call cached."""

import csv

from tests.dashboard_db import fill
from tests.test_judge_fakeserver import FakeServer, Out, images
from tests.test_judge_pairwise import steadiness
from vdmbench.cli.commands import main


def test_judge_compare_rates_the_steadier_model_first(tmp_path, capsys):
    runs = fill(tmp_path, models=[("toy-noise", "noise"), ("toy-square", "moving_square")])
    db = tmp_path / "vdmbench.duckdb"

    def steadier(body, n):
        frames = images(body)
        half = len(frames) // 2
        return Out("A" if steadiness(frames[:half]) > steadiness(frames[half:]) else "B")

    with FakeServer(steadier) as srv:
        argv = ["judge", "compare", runs["toy-noise"][:-2], runs["toy-square"], "--judge", "openai",
                "--set", f"base_url={srv.base_url}", "--set", "model=fake-vlm", "--set", "frames=3",
                "--criterion", "temporal consistency", "--db", str(db), "--out", str(tmp_path / "votes.csv")]
        assert main(argv) == 0
        asked = len(srv.requests)
        out = capsys.readouterr().out
        assert main(argv) == 0 and len(srv.requests) == asked  # the second time: all from the cache
    assert "8 pairs judged on 'temporal consistency'; 0 ties" in out
    table = [line.split()[0] for line in out.splitlines() if line.startswith(("toy-", " toy-"))]
    assert table == ["toy-square", "toy-noise"], out
    with open(tmp_path / "votes.csv") as f:
        votes = list(csv.DictReader(f))
    assert len(votes) == 8 and {v["winner"] for v in votes} == {"b"}


def test_judge_compare_needs_two_runs_and_a_criterion(tmp_path, capsys):
    runs = fill(tmp_path, models=[("toy-square", "moving_square")])
    code = main(["judge", "compare", runs["toy-square"], "--judge", "openai", "--set", "base_url=http://127.0.0.1:9",
                 "--set", "model=x", "--criterion", "quality", "--db", str(tmp_path / "vdmbench.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "at least two runs" in err and "Traceback" not in err

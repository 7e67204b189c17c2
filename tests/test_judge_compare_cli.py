"""`vdmbench judge compare RUN RUN --judge ... --criterion ...`: a judge's verdicts between stored
runs through the command line, ratings printed, votes written, every call cached."""

import csv

from tests.dashboard_db import fill
from tests.test_judge_fakeserver import FakeServer, Out, images
from tests.test_judge_pairwise import steadiness
from vdmbench.cli.commands import main
from vdmbench.store import Store


def steadier(body, n):
    frames = images(body)
    half = len(frames) // 2
    return Out("A" if steadiness(frames[:half]) > steadiness(frames[half:]) else "B")


def test_judge_compare_rates_the_steadier_model_first(tmp_path, capsys, monkeypatch):
    runs = fill(tmp_path, models=[("toy-noise", "noise"), ("toy-square", "moving_square")])
    db = tmp_path / "vdmbench.duckdb"
    secret = "sk-compare-SECRET-3"
    monkeypatch.setenv("JUDGE_CMP_KEY", secret)

    with FakeServer(steadier) as srv:
        argv = ["judge", "compare", runs["toy-noise"][:-2], runs["toy-square"], "--judge", "openai",
                "--set", f"base_url={srv.base_url}", "--set", "model=fake-vlm", "--set", "frames=3",
                "--set", "api_key_env=JUDGE_CMP_KEY",
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
    # Stored next to the human votes, once however often the command runs.
    label = "openai/fake-vlm@-/pairwise-v1"
    assert f"stored 8 judge votes ({label})" in out
    stored = Store(db, read_only=True).judge_votes("dash", "temporal consistency")
    assert len(stored) == 8 and set(stored.judge) == {label} and set(stored.criterion) == {"temporal consistency"}
    assert set(stored.model_b if stored.run_a.iloc[0] == runs["toy-noise"] else stored.model_a) == {"toy-square"}
    assert stored.winner.isin(["a", "b"]).all() and stored.forward.notna().all()
    assert sorted(zip(stored.prompt_id, stored.seed)) == sorted((v["prompt_id"], int(v["seed"])) for v in votes)
    # The key went only into the Authorization header: not into the votes, the database, the cache or the output.
    assert {h.get("Authorization") for h in srv.headers} == {f"Bearer {secret}"}
    assert secret not in out and secret not in stored.to_csv()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_judge_compare_prints_its_agreement_with_the_arenas_human_votes(tmp_path, capsys):
    runs = fill(tmp_path, models=[("toy-noise", "noise"), ("toy-square", "moving_square")])
    db = tmp_path / "vdmbench.duckdb"
    store = Store(db)
    noise = {(s.prompt_id, s.seed): s for s in store.samples(runs["toy-noise"])}
    square = {(s.prompt_id, s.seed): s for s in store.samples(runs["toy-square"])}
    # People preferred the square on 4 pairs and the noise on 1 (the judge, below, always the square).
    for i, key in enumerate(sorted(noise)[:5]):
        store.record_vote(vote_id=f"h{i}", suite="dash", prompt_id=key[0], seed=key[1], run_a=runs["toy-square"],
                          sample_a=square[key].sample_id, model_a="toy-square", run_b=runs["toy-noise"],
                          sample_b=noise[key].sample_id, model_b="toy-noise", winner="b" if i == 4 else "a")
    with FakeServer(steadier) as srv:  # the judge always picks the (steadier) square
        assert main(["judge", "compare", runs["toy-noise"], runs["toy-square"], "--judge", "openai",
                     "--set", f"base_url={srv.base_url}", "--set", "model=fake-vlm", "--set", "frames=3",
                     "--criterion", "overall", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("agreement with the arena's"))
    assert "5 human votes on dash (8 stored votes of this judge on 'overall', 5 matched" in line
    assert "accuracy 0.800 [" in line, line


def test_judge_compare_needs_two_runs_and_a_criterion(tmp_path, capsys):
    runs = fill(tmp_path, models=[("toy-square", "moving_square")])
    code = main(["judge", "compare", runs["toy-square"], "--judge", "openai", "--set", "base_url=http://127.0.0.1:9",
                 "--set", "model=x", "--criterion", "quality", "--db", str(tmp_path / "vdmbench.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "at least two runs" in err and "Traceback" not in err

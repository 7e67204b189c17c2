"""`vdmbench run ... +judge=openai judge.base_url=... judge.model=...`: the judge group of
cli/conf/judge/ becomes the judge of every suite metric that takes one and names none."""

import json

import duckdb

from tests.test_judge_fakeserver import FakeServer, no, user_text, yes


def test_plus_judge_points_the_suites_judge_metrics_at_a_server(vdmbench_cli, tmp_path):
    def respond(body, n):
        return yes(0.75) if "red circle" in user_text(body) else no(0.2)

    with FakeServer(respond) as srv:
        args = ("run", "suite=tiny", "model=toy-moving-square", "suite.metrics=[flicker, judge_vqascore]",
                "+judge=openai", f"judge.base_url={srv.base_url}", "judge.model=fake-vlm", "judge.frames=2")
        dry = vdmbench_cli(*args, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert not srv.requests  # a dry run asks nothing
        p = vdmbench_cli(*args)
        assert p.returncode == 0, p.stdout + p.stderr
        asked = len(srv.requests)
        assert asked >= 1
        again = vdmbench_cli(*args)  # the same run again: finished, and every call cached
        assert again.returncode == 0 and len(srv.requests) == asked
    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    values = dict(con.execute("SELECT s.prompt_id, avg(m.value) FROM sample_metrics m JOIN samples s "
                              "USING (run_id, sample_id) WHERE m.metric = 'judge_vqascore' GROUP BY 1").fetchall())
    notes = [json.loads(n) for (n,) in con.execute("SELECT notes FROM samples WHERE prompt_id = 'b'").fetchall()]
    con.close()
    assert values["a"] == 0.75 and values["b"] == 0.2  # a: "a red circle moving right"
    # What the judge was asked and answered is in the sample's notes, for the drill-down.
    assert notes and all(n["judge_vqascore"]["answer"]["answer"] is False for n in notes), notes


def test_a_judge_metric_without_a_judge_is_refused_in_one_line(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-moving-square", "suite.metrics=[judge_vqascore]", "--dry-run")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("vdmbench: error:")], p.stderr

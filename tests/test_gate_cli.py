"""`vdmbench gate` end to end on toy models: exit codes, baseline files, outputs, running the candidate."""

import gzip
import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.fixtures import FIXTURE_CONFIGS
from vdmbench.config.suite import load_suite, parse_suite
from vdmbench.gate.baseline import from_store, load_baseline
from vdmbench.run.runner import Runner, RunOptions
from vdmbench.store.database import Store

TINY = FIXTURE_CONFIGS / "suites" / "tiny.yaml"  # 6 prompts x 2 seeds, flicker
POLICY = {"name": "toy", "alpha": 0.05, "defaults": {"min_samples": 8},
          "metrics": {"flicker": {"abs": 0.005}, "flicker_mean_abs_diff": {"rel": 0.05}}}


def model(name: str) -> dict:
    return {"name": f"toy-gate-{name}", "adapter": "callable",
            "params": {"target": f"tests.fixtures.gate_generators:{name}"}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One database with runs of known relative quality, plus a policy file."""
    root = tmp_path_factory.mktemp("gate")
    results = root / "results"
    suite = load_suite(TINY)

    def run(name: str, suite=suite) -> str:
        opts = RunOptions(results_dir=results, progress=False, preview=False, resume=False)
        return Runner(suite, model(name), opts).run().run_id

    ids = {"base": run("steady"), "same": run("steady"), "worse": run("jittery"), "better": run("calm"),
           "other_suite": run("steady", parse_suite({**suite.to_dict(), "seeds": [7, 8]}))}
    policy = root / "toy-policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    return {"ids": ids, "db": str(results / "vdmbench.duckdb"), "policy": str(policy), "root": root}


@pytest.fixture(autouse=True)
def _no_real_step_summary(monkeypatch):
    """Tests running inside GitHub Actions must not write into the job's own summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def gate(cli, runs, base, cand, *extra, **kw):
    return cli("gate", "--baseline", runs["ids"].get(base, base), "--candidate", runs["ids"].get(cand, cand),
               "--db", runs["db"], "--policy", runs["policy"], *extra, **kw)


def test_pass_writes_every_output_and_appends_the_step_summary(vdmbench_cli, runs, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    r = gate(vdmbench_cli, runs, "base", "same", "--markdown", "out/gate.md", "--junit", "out/gate.xml",
             "--json", "out/gate.json", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.returncode == 0, r.stderr
    assert "PASS" in r.stdout and "flicker" in r.stdout
    md = (tmp_path / "out/gate.md").read_text()
    assert md.startswith("### ✅ vdmbench gate: PASS") and "| ✅ pass | flicker ↑ |" in md
    assert summary.read_text() == "# earlier step\n" + md + "\n"
    root = ET.parse(tmp_path / "out/gate.xml").getroot()
    cases = root.findall("testsuite/testcase")
    assert root.tag == "testsuites" and root.get("failures") == "0"
    assert sorted(c.get("name") for c in cases) == ["flicker", "flicker_mean_abs_diff"]
    doc = json.loads((tmp_path / "out/gate.json").read_text())
    assert doc["verdict"] == "pass" and doc["exit_code"] == 0 and doc["policy"]["name"] == "toy"
    assert {m["metric"]: m["verdict"] for m in doc["metrics"]} == {"flicker": "pass", "flicker_mean_abs_diff": "pass"}


def test_regression_exits_1_with_a_junit_failure(vdmbench_cli, runs, tmp_path):
    r = gate(vdmbench_cli, runs, "base", "worse", "--junit", "gate.xml", "--json", "gate.json")
    assert r.returncode == 1, r.stderr
    assert "FAIL" in r.stdout and "regression" in r.stdout
    root = ET.parse(tmp_path / "gate.xml").getroot()
    assert root.get("failures") == "2"
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message").startswith("regression: ")
    doc = json.loads((tmp_path / "gate.json").read_text())
    m = {x["metric"]: x for x in doc["metrics"]}["flicker"]
    assert doc["exit_code"] == 1 and m["verdict"] == "regression" and m["p_value"] < 0.05
    assert m["ci_high"] < 0 and m["effect_size"] < 0 and m["n"] == 12


def test_improvement_exits_0(vdmbench_cli, runs, tmp_path):
    r = gate(vdmbench_cli, runs, "base", "better", "--json", "gate.json", "--quiet")
    assert r.returncode == 0, r.stderr
    assert {m["verdict"] for m in json.loads((tmp_path / "gate.json").read_text())["metrics"]} == {"improvement"}


def test_inconclusive_exits_0_unless_asked_to_fail(vdmbench_cli, runs, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({**POLICY, "defaults": {"min_samples": 50}}))
    args = ("--baseline", runs["ids"]["base"], "--candidate", runs["ids"]["same"], "--db", runs["db"],
            "--policy", str(strict))
    r = vdmbench_cli("gate", *args, "--markdown", "g.md")
    assert r.returncode == 0 and "inconclusive" in (tmp_path / "g.md").read_text()
    assert vdmbench_cli("gate", *args, "--fail-on-inconclusive").returncode == 1


def test_mismatched_suites_exit_2_unless_forced(vdmbench_cli, runs):
    r = gate(vdmbench_cli, runs, "base", "other_suite")
    assert r.returncode == 2
    assert "different suites" in r.stderr and "seeds: [0, 1] vs [7, 8]" in r.stderr and "--force" in r.stderr
    r = gate(vdmbench_cli, runs, "base", "other_suite", "--force")
    # The toy square wraps around at seed-dependent frames, so other seeds really do score differently.
    assert r.returncode in (0, 1), r.stderr
    assert "paired by seed position" in r.stdout and "forced" in r.stdout


@pytest.mark.parametrize("args, message", [
    (("--candidate", "x"), "--baseline"),
    (("--baseline", "nope.json", "--candidate", "x"), "no such baseline file"),
    (("--baseline", "zzz-no-run", "--candidate", "zzz"), "no run"),
    (("--baseline", "base", "--candidate", "same", "--policy", "no-such-policy"), "unknown gate policy"),
    (("--baseline", "base", "--candidate", "same", "--suite", "tiny"), "not both"),
    (("--baseline", "base"), "--suite and --model"),
])
def test_usage_and_config_errors_exit_2(vdmbench_cli, runs, args, message):
    args = [runs["ids"].get(a, a) for a in args]
    r = vdmbench_cli("gate", *args, "--db", runs["db"])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr


def test_missing_required_metric_exits_2(vdmbench_cli, runs, tmp_path):
    p = tmp_path / "needs-fvd.yaml"
    p.write_text(yaml.safe_dump({"metrics": {"flicker": {}, "fvd": {}}}))
    r = vdmbench_cli("gate", "--baseline", runs["ids"]["base"], "--candidate", runs["ids"]["same"],
                     "--db", runs["db"], "--policy", str(p))
    assert r.returncode == 2 and "fvd (missing in the baseline and candidate" in r.stderr


@pytest.mark.parametrize("name", ["baseline.json", "baseline.json.gz"])
def test_baseline_file_round_trip(vdmbench_cli, runs, tmp_path, name):
    r = vdmbench_cli("gate", "export-baseline", runs["ids"]["base"], "-o", name, "--db", runs["db"])
    assert r.returncode == 0, r.stderr
    raw = (tmp_path / name).read_bytes()
    doc = json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)
    assert doc["format"] == "vdmbench-baseline" and len(doc["samples"]) == 12
    assert {"prompt_id", "seed", "values", "sha256"} <= set(doc["samples"][0])
    loaded = load_baseline(tmp_path / name)
    stored = from_store(Store(runs["db"], read_only=True), runs["ids"]["base"])
    assert loaded.run["suite_hash"] == stored.run["suite_hash"] and loaded.run_metrics == stored.run_metrics
    key = ["sample_id", "metric"]
    assert loaded.samples.sort_values(key).reset_index(drop=True).equals(
        stored.samples.sort_values(key).reset_index(drop=True))
    # A baseline file on one side, a run id on the other; and two files.
    assert gate(vdmbench_cli, runs, str(tmp_path / name), "worse").returncode == 1
    assert gate(vdmbench_cli, runs, str(tmp_path / name), str(tmp_path / name)).returncode == 0


def test_not_a_baseline_file_exits_2(vdmbench_cli, runs, tmp_path):
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    r = gate(vdmbench_cli, runs, str(tmp_path / "junk.json"), "same")
    assert r.returncode == 2 and "not a vdmbench baseline file" in r.stderr


def test_gate_runs_the_candidate_itself(vdmbench_cli, runs, tmp_path):
    configs = tmp_path / "configs"
    (configs / "adapters").mkdir(parents=True)
    (configs / "adapters" / "toy-gate-jittery.yaml").write_text(yaml.safe_dump(model("jittery")))
    r = vdmbench_cli("gate", "--baseline", runs["ids"]["base"], "--db", runs["db"], "--policy", runs["policy"],
                     "--suite", "tiny", "--model", "toy-gate-jittery", f"results_dir={tmp_path / 'cand'}",
                     "progress=false", f"hydra.searchpath=[file://{FIXTURE_CONFIGS},file://{configs}]",
                     "--json", "gate.json")
    assert r.returncode == 1, r.stderr
    doc = json.loads((tmp_path / "gate.json").read_text())
    assert doc["candidate"]["model"] == "toy-gate-jittery" and doc["verdict"] == "regression"
    assert doc["candidate"]["run_id"] not in runs["ids"].values()  # a new run, stored in --db


def test_help_lists_the_gate(vdmbench_cli):
    assert "gate" in vdmbench_cli("--help").stdout
    r = vdmbench_cli("gate", "--help")
    assert r.returncode == 0 and "export-baseline" in r.stdout

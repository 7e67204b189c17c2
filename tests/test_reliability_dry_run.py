"""Issue #15 item 9: `--dry-run` checks what a real run would refuse (metric names, every metric
option, the reference set) in one line, and a real run refuses them before generating anything."""

import pytest

from vdmbench.core.errors import ConfigError
from vdmbench.run.checks import check_metric_spec

RUN = ("run", "suite=tiny", "model=toy-moving-square")


def refused(p, words):
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("vdmbench: error:")]
    assert len(lines) == 1 and words in lines[0], p.stderr


@pytest.mark.parametrize("metrics, words", [
    ("[{name: flicker, bogus: 1}]", "metric 'flicker': unknown option 'bogus'"),
    ("[{name: flicker, compute_on_cpu: maybe}]", "'compute_on_cpu' must be true or false"),
    ("[{name: fvd, features: random-i3d, covarience: unbiased}]", "unknown option 'covarience'"),
    ("[{name: fvd, features: random-i3d, covariance: nope}]", "covariance must be one of"),
    ("[flicker, nope]", "nope"),
])
def test_dry_run_refuses_what_a_run_would(vdmbench_cli, tmp_path, metrics, words):
    refused(vdmbench_cli(*RUN, f"suite.metrics={metrics}", "--dry-run"), words)
    refused(vdmbench_cli(*RUN, f"suite.metrics={metrics}"), words)
    assert not (tmp_path / "results" / "videos").exists(), "nothing may be generated"


def test_dry_run_checks_the_reference_folder(vdmbench_cli, tmp_path):
    ref = tmp_path / "real"
    args = (*RUN, "suite.metrics=[{name: fvd, features: random-i3d}]", f"+suite.reference={{source: folder, path: {ref}}}")
    refused(vdmbench_cli(*args, "--dry-run"), "does not exist")
    ref.mkdir()
    refused(vdmbench_cli(*args, "--dry-run"), "has no videos")
    refused(vdmbench_cli(*args), "has no videos")
    assert not (tmp_path / "results" / "videos").exists(), "nothing may be generated"


def test_dry_run_of_a_good_suite_passes(vdmbench_cli):
    p = vdmbench_cli(*RUN, "suite.metrics=[flicker, {name: fvd, features: random-i3d, covariance: stylegan-v}]",
                     "+suite.reference={source: shapes, n: 4}", "--dry-run")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "to generate: 12" in p.stdout


def test_metric_options_are_read_from_the_whole_signature():
    check_metric_spec({"name": "fvd", "features": "random-i3d", "covariance": "stylegan-v", "compute_on_cpu": True})
    check_metric_spec({"name": "kvd", "subsets": 10, "subset_size": 4})
    check_metric_spec({"name": "motion", "flow": "dis"})
    with pytest.raises(ConfigError, match="unknown option 'flows'"):
        check_metric_spec({"name": "motion", "flows": "dis"})

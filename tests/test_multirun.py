"""Multirun over models and shards through Hydra launchers (joblib, Submitit's local executor)."""

import pytest

from tests.test_cli_run import db_rows


def test_multirun_over_models_and_shards_with_submitit_local(vdmbench_cli, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    p = vdmbench_cli("run", "-m", "hydra/launcher=submitit_local", "suite=tiny",
                     "model=toy-noise,toy-moving-square", "shard=0/2,1/2")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = db_rows(tmp_path, "SELECT model, shard, status FROM runs ORDER BY model, shard")
    assert rows == [(m, s, "finished") for m in ("toy-moving-square", "toy-noise") for s in ("0/2", "1/2")]
    merged = vdmbench_cli("merge", check=True)
    assert "merged 2 shards" in merged.stdout


@pytest.mark.parametrize("launcher, plugin, target", [
    ("slurm", "hydra_plugins.hydra_submitit_launcher", "SlurmLauncher"),
    ("local", "hydra_plugins.hydra_joblib_launcher", "JoblibLauncher"),
])
def test_shipped_launcher_configs_compose(vdmbench_cli, launcher, plugin, target):
    pytest.importorskip(plugin)
    p = vdmbench_cli("run", "--cfg", "hydra", f"hydra/launcher={launcher}", "suite=tiny", "model=toy-noise")
    assert p.returncode == 0, p.stderr[-2000:]
    assert target in p.stdout

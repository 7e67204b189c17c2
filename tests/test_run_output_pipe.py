"""`vdmbench run ... | head -1`: the run's own output to a closed pipe exits 141 quietly, like
every other command (rich alone would exit 1)."""

import os
import subprocess
import sys

from tests.fixtures import FIXTURE_CONFIGS, REPO


def test_run_piped_into_head_exits_141_without_a_traceback(tmp_path):
    cmd = (f"{sys.executable} -m vdmbench run suite=tiny model=toy-noise progress=false "
           f"'hydra.searchpath=[file://{FIXTURE_CONFIGS}]' 2>err.txt | head -1; echo \"exit ${{PIPESTATUS[0]}}\"")
    p = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    first, status = p.stdout.strip().splitlines()
    assert first.startswith("run ") and "samples ok" in first
    assert status == "exit 141", (p.stdout, (tmp_path / "err.txt").read_text())
    assert "Traceback" not in (tmp_path / "err.txt").read_text()

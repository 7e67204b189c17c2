import os
import subprocess
import sys
from pathlib import Path

import pytest


from tests.fixtures import FIXTURE_CONFIGS, REPO


@pytest.fixture
def vdmbench_cli(tmp_path):
    """Run the real `vdmbench` CLI in a subprocess inside tmp_path, with the test configs on the
    Hydra search path and the repository importable (for tests.fixtures generators)."""

    def run(*args: str, env: dict | None = None, check: bool = False, timeout: float = 300):
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        cmd = [sys.executable, "-m", "vdmbench.cli", *args]
        if args and args[0] == "run":
            cmd.append(f"hydra.searchpath=[file://{FIXTURE_CONFIGS}]")
            cmd.append("progress=false")
        proc = subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.fixtures import FIXTURE_CONFIGS, REPO


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def vdmbench_cli(tmp_path, monkeypatch, capsys):
    """Run the real `vdmbench` CLI inside tmp_path, with the test configs on the Hydra search path.

    In-process by default (the same `main()` the console script calls; much faster than a new
    interpreter per call); `subprocess=True` runs a separate process, e.g. to kill it."""

    def run(*args: str, env: dict | None = None, check: bool = False, subprocess_: bool = False,
            timeout: float = 300) -> CliResult:
        argv = list(args)
        if argv and argv[0] == "run":
            argv += [f"hydra.searchpath=[file://{FIXTURE_CONFIGS}]", "progress=false"]
        if subprocess_:
            full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
            p = subprocess.run([sys.executable, "-m", "vdmbench", *argv], cwd=tmp_path, env=full_env,
                               capture_output=True, text=True, timeout=timeout)
            result = CliResult(p.returncode, p.stdout, p.stderr)
        else:
            from vdmbench.cli.commands import main

            monkeypatch.chdir(tmp_path)
            for k, v in (env or {}).items():
                monkeypatch.setenv(k, v)
            capsys.readouterr()
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            out = capsys.readouterr()
            result = CliResult(code, out.out, out.err)
        if check and result.returncode != 0:
            raise AssertionError(f"vdmbench {argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return run

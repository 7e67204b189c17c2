"""The README's quick start needs nothing from an extra: the bundled reference model runs the smoke
suite with only the base dependencies importable (what `pip install -e .` gives a new user)."""

import json
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import tomllib
from packaging.requirements import Requirement

from tests.fixtures import REPO


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _closure(names: set[str]) -> set[str]:
    """The installed distributions these need, transitively (markers and extras ignored: an
    over-approximation of what the base install brings, so nothing it brings is blocked)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def extras_only() -> set[str]:
    """Distributions that only an optional extra installs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = _closure({_name(r) for r in project["dependencies"]})
    extra = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs} - {"vdmbench"}
    return _closure(extra) - base


def extras_only_modules() -> list[str]:
    """Top-level modules whose distributions only an optional extra installs."""
    only_extra = extras_only()
    modules = {m for m, dists in metadata.packages_distributions().items()
               if all(_name(d) in only_extra for d in dists)}
    return sorted(m for m in modules if m.isidentifier())


# Replaces the path finder with one that sees neither the extras' modules nor their package
# metadata: to the program they are simply not installed (importlib.util.find_spec answers None,
# import raises ModuleNotFoundError, importlib.metadata finds no distribution).
BLOCKER = """
import re
import sys
from importlib.machinery import PathFinder
BLOCKED = set({blocked!r})
BLOCKED_DISTS = set({dists!r})

class BaseInstallOnly(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)

    @classmethod
    def find_distributions(cls, *args, **kwargs):
        for d in super().find_distributions(*args, **kwargs):
            if re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower() not in BLOCKED_DISTS:
                yield d

sys.meta_path[:] = [BaseInstallOnly if f is PathFinder else f for f in sys.meta_path]
sys.path_importer_cache.clear()
from vdmbench.cli.commands import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_extras_are_told_apart_from_the_base_install():
    blocked = extras_only_modules()
    assert "streamlit" in blocked and "transformers" in blocked  # [dashboard], [diffusers]
    assert "diffusers" not in blocked and "torch" not in blocked and "duckdb" not in blocked


def test_quick_start_runs_with_only_the_base_dependencies(tmp_path):
    script = tmp_path / "base_only.py"
    script.write_text(textwrap.dedent(BLOCKER.format(blocked=extras_only_modules(), dists=sorted(extras_only()))))
    # The README's command 1, cut to one prompt and 2 sampling steps to stay quick.
    cmd = [sys.executable, str(script), "run", "suite=smoke", "model=reference-unet3d", "suite.seeds=[0]",
           "suite.steps=2", "progress=false", "threads=1"]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 samples ok, 0 failed" in p.stdout, p.stdout
    assert "vdmbench leaderboard" in p.stdout
    summary = json.loads(subprocess.run(
        [sys.executable, "-c", "import duckdb, json; c = duckdb.connect('results/vdmbench.duckdb', read_only=True);"
         "print(json.dumps(c.execute('SELECT status, count(*) FROM samples GROUP BY ALL').fetchall()))"],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout)
    assert summary == [["ok", 4]]

"""Issue #15 item 9 (speed): large prompt lists are kept out of Hydra's composition and put back
after it, invisibly: the same suite (same hash), the same plan, overrides and `--cfg` unchanged.
And the early file check reads YAML exactly as Hydra's loader (OmegaConf's) does."""

import re

import pytest
from omegaconf import OmegaConf

from vdmbench.cli import held_prompts
from vdmbench.cli.held_prompts import HeldPrompts
from vdmbench.config.schema import dump_yaml_as_hydra, read_yaml_as_hydra
from vdmbench.core.errors import ConfigError

N = 300  # above held_prompts.MIN_PROMPTS


def write_suite(folder, n=N, extra=""):
    lines = ["name: big", "version: 1", "task: t2v", "num_frames: 4", "height: 16", "width: 16",
             "fps: 8", "seeds: [0, 1]", "metrics: [flicker]", "guidance: 1e-3", extra, "prompts:"]
    lines += [f"  - {{id: p{i}, text: 'a red circle moving right {i}', tags: [t{i % 3}]}}" for i in range(n)]
    (folder / "suites").mkdir(parents=True, exist_ok=True)
    path = folder / "suites" / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def plan_line(out):
    return re.search(r"plan: suite big v1 \(([0-9a-f]+)\)", out).group(1)


def dry_run(vdmbench_cli, folder, *args):
    p = vdmbench_cli("run", "suite=big", "model=toy-moving-square", f"hydra.searchpath=[file://{folder}]",
                     *args, "--dry-run")
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_held_prompts_give_the_same_suite_and_plan(vdmbench_cli, tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    write_suite(folder)
    held = dry_run(vdmbench_cli, folder)
    assert f"{N} prompts x seeds -> {2 * N} samples" in held
    monkeypatch.setattr(held_prompts, "MIN_PROMPTS", 10**9)  # the whole list through Hydra
    whole = dry_run(vdmbench_cli, folder)
    assert plan_line(held) == plan_line(whole)
    assert held.replace(plan_line(held), "") == whole.replace(plan_line(whole), "")


def test_a_prompt_override_or_cfg_sees_the_whole_list(vdmbench_cli, tmp_path):
    folder = tmp_path / "conf"
    write_suite(folder)
    out = dry_run(vdmbench_cli, folder, "suite.prompts=[{id: only, text: a blue square moving up}]")
    assert "1 prompts x seeds -> 2 samples" in out
    out = dry_run(vdmbench_cli, folder, "+suite.prompts.0.params={x: 1}")
    assert f"{N} prompts x seeds" in out
    p = vdmbench_cli("run", "suite=big", "model=toy-moving-square", f"hydra.searchpath=[file://{folder}]",
                     "--cfg", "job")
    assert p.returncode == 0, p.stderr
    assert f"a red circle moving right {N - 1}" in p.stdout and "held back" not in p.stdout


def test_hold_and_restore(tmp_path):
    path = write_suite(tmp_path / "src")
    data = read_yaml_as_hydra(path)
    held = HeldPrompts(tmp_path / "light")
    assert held.hold("big", path, data) and held.active
    light = OmegaConf.to_container(OmegaConf.load(tmp_path / "light" / "suites" / "big.yaml"))
    assert isinstance(light["prompts"], str) and str(path) in light["prompts"]
    assert held.restore(light) == data and list(held.restore(light)) == list(data)
    assert held.restore({"prompts": "something else"}) == {"prompts": "something else"}
    # Not held where Hydra would change the file before use, or where the list is small.
    for extra in ("description: ${suite.name}", "# @package _global_"):
        p = write_suite(tmp_path / f"x{len(extra)}", extra=extra)
        assert not HeldPrompts(tmp_path / "l2").hold("big", p, read_yaml_as_hydra(p))
    small = write_suite(tmp_path / "small", n=5)
    assert not HeldPrompts(tmp_path / "l3").hold("big", small, read_yaml_as_hydra(small))


TRICKY = ("a: 1e-3\nb: 2020-01-01\nc: .inf\nd: 1_000\ne: 0x1F\nf: yes\ng: ~\nh: '1e3'\ni: 1:20.5\n"
          "j: [1, 2.5, -3e2, +1.5e+2]\nk: {x: .nan}\nl: 'ünï ${x}'\nm: 1.\n")


def test_the_fast_reader_reads_as_omegaconf_does(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    ours, theirs = read_yaml_as_hydra(path), OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert repr(ours) == repr(theirs)  # repr: nan == nan, and 1 vs 1.0 vs '1' all differ
    again = tmp_path / "u.yaml"
    again.write_text(dump_yaml_as_hydra(ours), encoding="utf-8")
    assert repr(OmegaConf.to_container(OmegaConf.load(again), resolve=False)) == repr(theirs)
    assert repr(read_yaml_as_hydra(again)) == repr(theirs)


@pytest.mark.parametrize("text, words", [("a: 1\na: 2\n", "duplicate key a"), ("a: [\n", "line 2")])
def test_the_fast_reader_refuses_what_omegaconf_refuses(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(Exception):  # OmegaConf's own exception types vary
        OmegaConf.load(path)
    with pytest.raises(ConfigError, match=words):
        read_yaml_as_hydra(path)

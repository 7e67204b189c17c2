"""`vdmbench score` on one process equals `torchrun --nproc-per-node 2` on gloo/CPU."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.fixtures import REPO
from vdmbench.core.video import Video, write_video


@pytest.fixture
def clip_folder(tmp_path):
    folder = tmp_path / "clips"
    g = torch.Generator().manual_seed(3)
    for i in range(7):  # odd: ranks get unequal shares
        frames = torch.randint(0, 256, (5, 16, 16, 3), generator=g, dtype=torch.uint8)
        write_video(Video(frames, 8.0), folder / f"c{i}.mp4")
    return folder


def _run(cmd, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]


def test_two_processes_equal_one(tmp_path, clip_folder):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    _run([sys.executable, "-m", "vdmbench", "score", str(clip_folder), "--metrics", "flicker",
          "--workers", "0", "--json", "one.json"], tmp_path)
    _run(["torchrun", "--nproc-per-node", "2", "--master-port", "29517", "-m", "vdmbench", "score",
          str(clip_folder), "--metrics", "flicker", "--workers", "0", "--json", "two.json"], tmp_path)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["world_size"] == 2 and one["files"] == two["files"] == 7
    assert one["per_sample"] == two["per_sample"]
    for k, v in one["metrics"].items():
        assert two["metrics"][k] == pytest.approx(v, rel=1e-12, abs=0)

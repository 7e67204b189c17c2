"""`vdmbench score --metrics fvd --reference DIR` a second time with the same results dir runs no
I3D forward (issue #21: nothing computed twice): the reference set's features are cached by the
folder's fingerprint and the extractor, the scored clips' by their content; the FVD is the same."""

from __future__ import annotations

import json

import torch

from tests._clips import moving_squares, write_folder
from vdmbench.core.video import Video, write_video
from vdmbench.features import i3d
from vdmbench.run import score


def test_second_score_runs_no_forward_and_gives_the_same_fvd(tmp_path, monkeypatch):
    real = write_folder(tmp_path / "real", moving_squares(4, 16, 32, 32, seed=1))
    fake = write_folder(tmp_path / "fake", moving_squares(4, 16, 32, 32, seed=2, speed=6.0))
    seen: list[int] = []
    forward = i3d.InceptionI3d.forward

    def counting(self, x):
        seen.append(int(x.shape[0]))
        return forward(self, x)

    monkeypatch.setattr(i3d.InceptionI3d, "forward", counting)
    args = [str(fake), "--reference", str(real), "--metrics", "[{name: fvd, features: random-i3d, resize: 32, ci: false}]",
            "--results-dir", str(tmp_path / "results"), "--workers", "0", "--batch-size", "4", "--threads", "1"]
    values = []
    clips_through_i3d = []
    for run in range(2):
        seen.clear()
        out = tmp_path / f"run{run}.json"
        assert score.main([*args, "--json", str(out)]) == 0
        values.append(json.loads(out.read_text())["metrics"]["fvd"])
        clips_through_i3d.append(sum(seen))
    assert clips_through_i3d == [8, 0]  # 4 real + 4 generated the first time, none the second
    assert values[0] == values[1] and values[0] > 0
    # a changed reference folder is not served from the cache
    write_video(Video(torch.flip(moving_squares(1, 16, 32, 32, seed=9)[0], dims=[2]), 8.0), real / "c0.mp4")
    seen.clear()
    out = tmp_path / "run2.json"
    assert score.main([*args, "--json", str(out)]) == 0
    assert sum(seen) == 4 and json.loads(out.read_text())["metrics"]["fvd"] != values[0]
